"""What an index says about one wheel, read from the zip alone: nothing is installed or run.

A wheel is a zip whose ``NAME-VERSION.dist-info/`` folder holds ``METADATA`` (RFC 822 headers)
and, for packages that declare entry points, ``entry_points.txt`` (INI). Those two files and the
file's sha256 are all an index needs; no build backend, no ``setup.py``, no import of the
plugin (npe2's ``fetch`` builds sdists, which runs their code — a wheel never needs that).

Signatures are written by flx_ipy's signing (``flx-ipy sign``) as a signed manifest file inside
the plugin. The index does not verify it (it holds no trust store, and a signature is checked
where the plugin is loaded, against that user's ``allowed_signers``); it reports whether the wheel
*carries* one: ``"signed (unverified)"`` with the member's path, or ``"unsigned"``. A member
counts as a signature when its file name is one of :data:`SIGNATURE_NAMES` (``flx-ipy sign``
writes ``flx-ipy.sig`` inside a package folder) or ends with :data:`SIGNATURE_SUFFIXES` (it writes
``NAME.py.flx-ipy.sig`` beside a single module).
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PLUGIN_GROUP", "SIGNATURE_NAMES", "SIGNATURE_SUFFIXES", "WheelError", "WheelInfo", "read_wheel"]

PLUGIN_GROUP = "flx_ipy.plugins"
#: file names (any folder of the wheel) that are a plugin's signature, compared case-insensitively
SIGNATURE_NAMES = ("flx-ipy.sig", "flx_ipy.sig", "flx-ipy-signature", "flx_ipy_signature", "signature.flx-ipy",
                   "flx-ipy.manifest.sig", "flx_ipy_manifest.sig")
SIGNATURE_SUFFIXES = (".flx-ipy.sig", ".sshsig")  # flx-ipy sign: FOLDER/flx-ipy.sig or FILE.py.flx-ipy.sig
#: METADATA and entry_points.txt larger than this are not metadata: refuse rather than read them
_MAX_MEMBER = 4 * 1024 * 1024


class WheelError(ValueError):
    """A file that is not a readable wheel; the message names the file and what is wrong."""


@dataclass(frozen=True)
class WheelInfo:
    file: str  # base name, relative to the index folder
    name: str  # the distribution's name as METADATA spells it
    version: str
    summary: str
    sha256: str
    size: int
    requires_python: str | None
    requires_dist: list[str]
    entry_points: dict[str, dict[str, str]]
    modules: list[str]  # top-level import names the wheel installs
    signature: dict[str, Any]
    tags: list[str] = field(default_factory=list)

    @property
    def plugins(self) -> list[str]:
        """Entry point names in group ``flx_ipy.plugins``: the names ``%plugin load`` takes."""
        return sorted(self.entry_points.get(PLUGIN_GROUP, {}))

    @property
    def is_plugin(self) -> bool:
        return bool(self.plugins)

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "wheel": self.file, "name": self.name, "summary": self.summary,
                "sha256": self.sha256, "size": self.size,
                "requires_python": self.requires_python, "requires_dist": list(self.requires_dist),
                "entry_points": {g: dict(sorted(e.items())) for g, e in sorted(self.entry_points.items())},
                "plugins": self.plugins, "modules": list(self.modules), "signature": dict(self.signature),
                "tags": list(self.tags)}


    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> WheelInfo:
        """The inverse of :meth:`to_dict` (a rebuild reuses what it read from an unchanged wheel)."""
        return cls(file=entry["wheel"], name=entry["name"], version=entry["version"], summary=entry["summary"],
                   sha256=entry["sha256"], size=entry["size"], requires_python=entry["requires_python"],
                   requires_dist=list(entry["requires_dist"]), entry_points=entry["entry_points"],
                   modules=list(entry["modules"]), signature=dict(entry["signature"]), tags=list(entry["tags"]))


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_wheel(path: str | Path) -> WheelInfo:
    """Read one wheel's metadata, entry points and signature status; raises :class:`WheelError`."""
    from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

    path = Path(path)
    try:
        fname_name, fname_version, _build, tags = parse_wheel_filename(path.name)
    except InvalidWheelFilename as e:
        raise WheelError(f"{path.name}: not a wheel file name ({e})") from None
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise WheelError(f"{path.name}: not a readable zip ({e})") from None
    with zf:
        names = zf.namelist()
        info_dirs = sorted({n.split("/", 1)[0] for n in names
                            if n.count("/") == 1 and n.split("/", 1)[0].endswith(".dist-info")
                            and n.endswith("/METADATA")})
        wanted = [d for d in info_dirs if canonicalize_name(d[:-10].rpartition("-")[0]) == fname_name]
        if len(wanted) != 1:
            found = ", ".join(info_dirs) or "none"
            raise WheelError(f"{path.name}: expected one {fname_name}-*.dist-info/METADATA, found {found}")
        info = wanted[0]
        headers = _headers(_member(zf, f"{info}/METADATA", path.name))
        ep_text = _member(zf, f"{info}/entry_points.txt", path.name, optional=True)
        top_level = _member(zf, f"{info}/top_level.txt", path.name, optional=True)
    name, version = _first(headers, "name"), _first(headers, "version")
    if not name or not version:
        raise WheelError(f"{path.name}: METADATA has no Name or Version")
    if canonicalize_name(name) != fname_name or _same_version(version, str(fname_version)) is False:
        raise WheelError(f"{path.name}: METADATA says {name} {version}, the file name says otherwise")
    return WheelInfo(
        file=path.name, name=name, version=version, summary=" ".join(_first(headers, "summary").split()),
        sha256=sha256_file(path), size=path.stat().st_size,
        requires_python=_first(headers, "requires-python") or None,
        requires_dist=sorted(" ".join(r.split()) for r in headers.get("requires-dist", [])),
        entry_points=_entry_points(ep_text, path.name), modules=_modules(names, info, top_level),
        signature=_signature(names), tags=sorted(str(t) for t in tags))


def _member(zf: zipfile.ZipFile, name: str, file: str, optional: bool = False) -> bytes:
    try:
        zinfo = zf.getinfo(name)
    except KeyError:
        if optional:
            return b""
        raise WheelError(f"{file}: has no {name}") from None
    if zinfo.file_size > _MAX_MEMBER:
        raise WheelError(f"{file}: {name} is {zinfo.file_size} bytes; metadata that large is refused")
    try:
        return zf.read(zinfo)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise WheelError(f"{file}: {name} cannot be read ({e})") from None


def _same_version(a: str, b: str) -> bool | None:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return None


def _headers(data: bytes) -> dict[str, list[str]]:
    """METADATA's header block (RFC 822: ``Key: value``, indented continuation lines, the body
    after the first blank line is the long description and is not read). Keys lower-cased.

    ``email.parser`` does the same at ~4x the cost; an index build reads hundreds of these."""
    text = data.decode("utf-8", "replace").replace("\r\n", "\n")
    end = text.find("\n\n")
    out: dict[str, list[str]] = {}
    last: list[str] | None = None
    for line in (text if end < 0 else text[:end]).split("\n"):
        if line[:1] in (" ", "\t"):
            if last:
                last[-1] = f"{last[-1]} {line.strip()}".strip()
            continue
        key, sep, value = line.partition(":")
        if sep:
            last = out.setdefault(key.strip().lower(), [])
            last.append(value.strip())
    return out


def _first(headers: dict[str, list[str]], key: str) -> str:
    values = headers.get(key)
    return values[0] if values else ""


def _entry_points(data: bytes, file: str) -> dict[str, dict[str, str]]:
    """``entry_points.txt``: INI sections of ``name = module:attr``; names are case-sensitive."""
    out: dict[str, dict[str, str]] = {}
    section: dict[str, str] | None = None
    for n, raw in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line[0] == "[" and line[-1] == "]":
            section = out.setdefault(line[1:-1].strip(), {})
            continue
        key, sep, value = line.partition("=")
        if section is None or not sep or not key.strip():
            raise WheelError(f"{file}: entry_points.txt line {n} is not `name = value` in a [section]: {line[:60]!r}")
        section[key.strip()] = " ".join(value.split())
    return out


def _modules(names: list[str], info: str, top_level: bytes) -> list[str]:
    """Top-level import names: ``top_level.txt`` when the wheel has one, else its file list."""
    listed = {line.strip() for line in top_level.decode("utf-8", "replace").splitlines() if line.strip()}
    if listed:
        return sorted(listed)
    found: set[str] = set()
    for n in names:
        first, sep, _ = n.partition("/")
        if n.startswith(info) or first.endswith(".data"):
            continue
        if sep and first.isidentifier():
            found.add(first)
        elif not sep and n.endswith(".py") and n[:-3].isidentifier():
            found.add(n[:-3])
        elif not sep and n.endswith((".so", ".pyd")):
            found.add(n.split(".", 1)[0])
    return sorted(found)


def _signature(names: list[str]) -> dict[str, Any]:
    for n in sorted(names):
        base = n.rsplit("/", 1)[-1].lower()
        if base in SIGNATURE_NAMES or base.endswith(SIGNATURE_SUFFIXES):
            return {"status": "signed (unverified)", "file": n}
    return {"status": "unsigned", "file": None}
