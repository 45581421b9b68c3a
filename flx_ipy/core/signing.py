"""Signed plugins: one SSH signature over a manifest of every file's sha256.

What is signed (the *unit*): a package folder with every file under it, or a single ``.py``
file. The signature file sits inside the folder (``flx-ipy.sig``) or beside the file
(``NAME.py.flx-ipy.sig``) and reads like a ``SHA256SUMS`` with a signature under it::

    flx-ipy signature 1
    principal: alice@example.com
    sha256 9f86d08...  __init__.py
    sha256 60303ae...  util.py
    -----BEGIN SSH SIGNATURE-----
    ...

The signed message is everything above the ``BEGIN`` line, so ``ssh-keygen -Y verify -n
flx-ipy`` checks the same bytes. Like Grafana and OpenSSF model-signing, a file that is not in
the manifest is a modification (an added ``.py`` could be imported). ``__pycache__`` is not
part of the manifest — flx_ipy never executes bytecode for a plugin, it compiles the source
bytes it verified — but a ``.pyc`` there that is not a cache of a signed source (planted) is
reported, so nobody mistakes it for part of the signed plugin.
"""

from __future__ import annotations

import hashlib
import importlib.util
import marshal
import os
import struct
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .sshsig import NAMESPACE, AllowedSigners, SignatureError, key_fingerprint, verify

__all__ = [
    "SIGNATURE_NAME",
    "Manifest",
    "SignatureFile",
    "check_unit",
    "collect_files",
    "manifest_text",
    "signature_path",
    "unit_for_module",
    "unit_for_path",
]

SIGNATURE_NAME = "flx-ipy.sig"
_HEADER = "flx-ipy signature 1"
_BEGIN = "-----BEGIN SSH SIGNATURE-----"


# ----------------------------------------------------------------------------- the unit
def unit_for_path(path: str | Path) -> Path:
    """The signed unit of a load target given as a path: the package folder, or the file."""
    return Path(path).expanduser().resolve()


def unit_for_module(name: str) -> Path | None:
    """The unit of a module-name target (an entry point's ``module:Class``), found without
    importing it: its top-level package folder, or its one ``.py`` file."""
    top = name.partition(".")[0]
    mod = sys.modules.get(top)
    if mod is not None:
        paths = list(getattr(mod, "__path__", None) or [])
        if len(paths) == 1:
            return Path(paths[0]).resolve()
        f = getattr(mod, "__file__", None)
        return Path(f).resolve() if f and f.endswith(".py") else None
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    locs = list(spec.submodule_search_locations or [])
    if len(locs) == 1:
        return Path(locs[0]).resolve()
    if spec.origin and spec.origin.endswith(".py"):
        return Path(spec.origin).resolve()
    return None


def signature_path(unit: Path) -> Path:
    return unit / SIGNATURE_NAME if unit.is_dir() else unit.with_name(unit.name + "." + SIGNATURE_NAME)


def _rel(unit: Path, p: Path) -> str:
    return p.name if not unit.is_dir() else p.relative_to(unit).as_posix()


def collect_files(unit: Path) -> list[Path]:
    """Every file that belongs to the unit, sorted: ``__pycache__`` and the signature excluded."""
    if not unit.is_dir():
        return [unit] if unit.is_file() else []
    sig = unit / SIGNATURE_NAME
    out = []
    for dirpath, dirnames, filenames in os.walk(unit):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for f in filenames:
            p = Path(dirpath) / f
            if p != sig:
                out.append(p)
    return sorted(out)


def bytecode_files(unit: Path) -> list[Path]:
    """``.pyc`` files in the unit's ``__pycache__`` folders (for a file unit: its own caches)."""
    if not unit.is_dir():
        cache = unit.parent / "__pycache__"
        return sorted(cache.glob(unit.stem + ".*.pyc")) if cache.is_dir() else []
    return sorted(p for p in unit.rglob("__pycache__/*.pyc"))


def _pyc_source(pyc: Path) -> Path:
    """``pkg/__pycache__/mod.cpython-311.pyc`` -> ``pkg/mod.py``."""
    return pyc.parent.parent / (pyc.name.split(".", 1)[0] + ".py")


def pyc_matches(pyc: Path, source: bytes, source_path: Path) -> bool:
    """Is ``pyc`` a cache of exactly this source? Its header must pass the check Python itself
    makes (source mtime and size, or the source hash), and — since a header is easy to forge —
    its code must equal this source compiled. Never executed either way."""
    try:
        data = pyc.read_bytes()
        st = source_path.stat()
    except OSError:
        return False
    if len(data) < 16 or data[:4] != importlib.util.MAGIC_NUMBER:
        return False  # not bytecode for this Python: nothing that could be a cache of it
    (flags,) = struct.unpack_from("<I", data, 4)
    if flags & 1:
        if data[8:16] != importlib.util.source_hash(source):
            return False
    else:
        mtime, size = struct.unpack_from("<II", data, 8)
        if mtime != (int(st.st_mtime) & 0xFFFFFFFF) or size != (len(source) & 0xFFFFFFFF):
            return False
    opt = 2 if ".opt-2." in pyc.name else 1 if ".opt-1." in pyc.name else 0
    try:
        code = marshal.loads(data[16:])
        return bool(code == compile(source, str(source_path), "exec", dont_inherit=True, optimize=opt))
    except Exception:  # unreadable bytecode, or a source that does not compile
        return False


# ----------------------------------------------------------------------------- manifest
@dataclass
class Manifest:
    """relative path -> sha256 hex, and who signed it."""

    files: dict[str, str]
    principal: str | None = None

    def text(self) -> str:
        return manifest_text(self.files, self.principal)


def manifest_text(files: Mapping[str, str], principal: str | None) -> str:
    lines = [_HEADER]
    if principal:
        lines.append(f"principal: {principal}")
    lines += [f"sha256 {h}  {rel}" for rel, h in sorted(files.items())]
    return "\n".join(lines) + "\n"


def hash_files(unit: Path, contents: Mapping[str, bytes] | None = None) -> dict[str, str]:
    """sha256 of every file of the unit; ``contents`` (abs path -> bytes) overrides what is on
    disk, so the hashes are of the bytes that will run."""
    out = {}
    given = contents or {}
    for p in collect_files(unit):
        data = given.get(os.path.normcase(str(p)))
        if data is None:
            data = p.read_bytes()
        out[_rel(unit, p)] = hashlib.sha256(data).hexdigest()
    return out


@dataclass
class SignatureFile:
    manifest: Manifest
    signature: str  # armored
    message: bytes  # the exact bytes that were signed

    @classmethod
    def parse(cls, text: str, where: str = SIGNATURE_NAME) -> SignatureFile:
        head, sep, tail = text.partition(_BEGIN)
        if not sep:
            raise SignatureError(f"{where}: no SSH signature in the file")
        lines = head.splitlines()
        if not lines or lines[0].strip() != _HEADER:
            raise SignatureError(f"{where}: not a flx-ipy signature file (first line must be {_HEADER!r})")
        files: dict[str, str] = {}
        principal = None
        for n, line in enumerate(lines[1:], 2):
            if line.startswith("principal: "):
                principal = line[len("principal: "):].strip() or None
            elif line.startswith("sha256 "):
                digest, _, rel = line[len("sha256 "):].partition("  ")
                if len(digest) != 64 or not rel:
                    raise SignatureError(f"{where}:{n}: malformed manifest line")
                files[rel] = digest
            elif line.strip():
                raise SignatureError(f"{where}:{n}: unexpected line in the manifest")
        return cls(Manifest(files, principal), sep + tail, head.encode())


def write_signature(unit: Path, principal: str | None, signer: Any) -> tuple[Path, Manifest]:
    """Sign the unit's files as they are on disk: ``signer(message) -> armored signature``."""
    files = hash_files(unit)
    if not files:
        raise SignatureError(f"{unit}: nothing to sign (no files)")
    bad = [rel for rel in files if "\n" in rel or "  " in rel]
    if bad:
        raise SignatureError(f"{unit}: cannot sign file names with newlines or double spaces: {bad[0]!r}")
    manifest = Manifest(files, principal)
    message = manifest.text().encode()
    armored = signer(message)
    path = signature_path(unit)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(message.decode() + armored)
    os.replace(tmp, path)
    return path, manifest


def stale_bytecode(unit: Path) -> list[Path]:
    """``.pyc`` files that are not a cache of the unit's current sources (what ``sign`` removes)."""
    out = []
    for pyc in bytecode_files(unit):
        src = _pyc_source(pyc)
        try:
            ok = src.is_file() and pyc_matches(pyc, src.read_bytes(), src)
        except OSError:
            ok = False
        if not ok:
            out.append(pyc)
    return out


# ----------------------------------------------------------------------------- checking
@dataclass
class Verdict:
    """What ``check_unit`` found; ``trust.SignatureInfo`` is built from it."""

    status: str  # signed | unsigned | invalid | modified
    signer: str | None = None
    changes: dict[str, str] = field(default_factory=dict)  # rel path -> changed|added|missing|bytecode
    reason: str = ""
    signature_file: str | None = None


def check_unit(unit: Path, allowed: AllowedSigners | None, contents: Mapping[str, bytes] | None = None,
               namespace: str = NAMESPACE) -> Verdict:
    """Verify the unit's signature against ``allowed`` and its files against the manifest.

    ``contents`` (normcased absolute path -> bytes) are the bytes that will execute; every
    other file is read from disk. A signature by a key ``allowed`` does not list is
    ``invalid``; a valid signature over a manifest the files no longer match is ``modified``.
    """
    sig_path = signature_path(unit)
    try:
        text = sig_path.read_text()
    except FileNotFoundError:
        return Verdict("unsigned", reason=f"no signature ({sig_path.name} not found)")
    except OSError as e:
        return Verdict("invalid", reason=f"cannot read {sig_path}: {e.strerror or e}", signature_file=str(sig_path))
    try:
        sig = SignatureFile.parse(text, str(sig_path))
    except SignatureError as e:
        return Verdict("invalid", reason=str(e), signature_file=str(sig_path),
                       changes={sig_path.name: "invalid"})
    changes = _diff(unit, sig.manifest.files, contents)
    verdict = Verdict("signed", changes=changes, signature_file=str(sig_path))
    try:
        key_blob = verify(sig.message, sig.signature, namespace)
    except SignatureError as e:
        verdict.status, verdict.reason = "invalid", f"{sig_path.name}: {e}"
        verdict.changes = {sig_path.name: "invalid", **changes}
        return verdict
    signer = allowed.signer_for(key_blob, sig.manifest.principal, namespace) if allowed is not None else None
    if signer is None:
        who = f" as {sig.manifest.principal!r}" if sig.manifest.principal else ""
        where = f" ({allowed.source})" if allowed is not None and allowed.source else ""
        verdict.status = "invalid"
        verdict.reason = (f"{sig_path.name}: signed{who} by key {key_fingerprint(key_blob)}, which is not in "
                          f"allowed_signers{where} for namespace {namespace!r}")
        verdict.changes = {sig_path.name: "untrusted key", **changes}
        return verdict
    verdict.signer = signer
    if changes:
        verdict.status = "modified"
        verdict.reason = "files differ from the signed manifest: " + describe(changes)
    return verdict


def _diff(unit: Path, signed: Mapping[str, str], contents: Mapping[str, bytes] | None) -> dict[str, str]:
    given = contents or {}
    changes: dict[str, str] = {}
    seen: dict[str, bytes] = {}
    for p in collect_files(unit):
        rel = _rel(unit, p)
        data = given.get(os.path.normcase(str(p)))
        if data is None:
            try:
                data = p.read_bytes()
            except OSError:
                changes[rel] = "missing"
                continue
        seen[rel] = data
        want = signed.get(rel)
        if want is None:
            changes[rel] = "added"
        elif hashlib.sha256(data).hexdigest() != want:
            changes[rel] = "changed"
    for rel in signed:
        if rel not in seen and rel not in changes:
            changes[rel] = "missing"
    for pyc in bytecode_files(unit):
        src = _pyc_source(pyc)
        src_rel = _rel(unit, src) if unit.is_dir() else src.name
        data = seen.get(src_rel)
        if data is None or src_rel not in signed or not pyc_matches(pyc, data, src):
            changes[_rel(unit, pyc) if unit.is_dir() else f"__pycache__/{pyc.name}"] = "bytecode"
    return dict(sorted(changes.items()))


def describe(changes: Mapping[str, str]) -> str:
    """``changed: a.py, added: b.py`` — the files, grouped by what happened to them."""
    groups: dict[str, list[str]] = {}
    for rel, kind in changes.items():
        groups.setdefault(kind, []).append(rel)
    label = {"bytecode": "bytecode not from the signed source (never executed)"}
    return "; ".join(f"{label.get(k, k)}: {', '.join(v)}" for k, v in groups.items())
