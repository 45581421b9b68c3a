"""Signature policy: ``off`` | ``warn`` | ``require``, applied before a plugin's code runs.

The check is a *source check* in the manager's validator pipeline (``pm.validator``): it runs
on the bytes about to execute — at load before the import, at reload before the swap — and
those verified bytes are then pinned in the loader (``loader.pin``), so what was hashed is
what runs. A class check would be too late: by then the module's top-level code has run.

* ``off`` (default): nothing is read or checked; ``record.signature`` is None, and the crypto
  library is never imported.
* ``warn``: everything loads and reloads; ``record.signature`` tells the truth —
  ``"modified"`` with the files after a hot edit, never still ``"signed"``.
* ``require``: an unsigned, invalid or modified plugin is not loaded (``PluginLoadError``
  naming the files); a save that changes a signed plugin is rolled back with the way to
  re-sign. Files added under the plugin after the check are refused at import.

Every check is an event (``signature_checked``: status, signer, files) and so an audit record.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from . import loader
from .errors import FlxError, PluginLoadError
from .loader import split_target
from .origin import os_user
from .signing import (
    check_unit,
    describe,
    stale_bytecode,
    unit_for_module,
    unit_for_path,
    write_signature,
)
from .sshsig import NAMESPACE, AllowedSigners, SignatureError, key_is_encrypted, load_private_key, sign
from .validators import PluginSources, Problem, Validator

log = logging.getLogger("flx_ipy")

__all__ = ["POLICIES", "SignatureInfo", "SignatureStatus", "Trust"]

POLICIES = ("off", "warn", "require")


class SignatureStatus(str):
    """``"signed"``, ``"unsigned"``, ``"invalid"`` or ``"modified"`` (a str: compares equal)."""

    __slots__ = ()
    VALUES = ("signed", "unsigned", "invalid", "modified")

    def __new__(cls, value: str) -> SignatureStatus:
        if value not in cls.VALUES:
            raise ValueError(f"signature status must be one of {', '.join(cls.VALUES)}; got {value!r}")
        return super().__new__(cls, value)


@dataclass
class SignatureInfo:
    """``record.signature``: the verdict on the code that runs now.

    ``files`` lists what differs from the signed manifest (relative paths); ``changes`` says
    how each differs (``changed``, ``added``, ``missing``, ``bytecode``, or for the signature
    file itself ``invalid`` / ``untrusted key``)."""

    status: SignatureStatus
    signer: str | None = None
    files: list[str] = field(default_factory=list)
    changes: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    unit: str | None = None
    signature_file: str | None = None
    policy: str | None = None  # the policy it was checked under (None: `flx-ipy verify`)

    @property
    def ok(self) -> bool:
        return self.status == "signed"

    def summary(self) -> str:
        if self.status == "signed":
            return f"signed by {self.signer}"
        if self.status == "modified":
            return f"modified since signed by {self.signer} ({describe(self.changes)})"
        return f"{self.status}: {self.reason}" if self.reason else str(self.status)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        return {"status": str(self.status), "signer": self.signer, "files": list(self.files),
                "changes": dict(self.changes), "reason": self.reason, "unit": self.unit,
                "signature_file": self.signature_file, "policy": self.policy}


def check_path(unit: str | Path, allowed_signers: str | Path | AllowedSigners | None,
               contents: dict[str, bytes] | None = None) -> SignatureInfo:
    """Verify one plugin (file or package folder) against an ``allowed_signers`` file — what
    ``flx-ipy verify`` and every policy check run."""
    u = Path(unit).expanduser().resolve()
    allowed: AllowedSigners | None
    if allowed_signers is None or isinstance(allowed_signers, AllowedSigners):
        allowed = allowed_signers
    else:
        allowed = AllowedSigners.load(allowed_signers)
    try:
        v = check_unit(u, allowed, contents)
    except SignatureError as e:
        return SignatureInfo(SignatureStatus("invalid"), reason=str(e), unit=str(u))
    return SignatureInfo(SignatureStatus(v.status), v.signer, list(v.changes), dict(v.changes), v.reason,
                         str(u), v.signature_file)


class Trust:
    """The manager's signature policy and trust root; ``check`` is its source check."""

    def __init__(self, policy: str = "off", allowed_signers: str | Path | None = None) -> None:
        self._policy = "off"
        self.allowed_signers = allowed_signers
        self._allowed_cache: tuple[str, float, Any] | None = None
        self.validator: Any = None
        #: plugin -> (unit, its pins before the reload in progress), for ``undo_reload_pins``
        self.undo: dict[str, tuple[Path, tuple[dict[str, bytes], bool]]] = {}
        self.policy = policy

    # ------------------------------------------------------------------ settings
    @property
    def policy(self) -> str:
        return self._policy

    @policy.setter
    def policy(self, value: str) -> None:
        if value not in POLICIES:
            raise ValueError(f"signature_policy must be one of {', '.join(POLICIES)}; got {value!r}")
        self._policy = value
        if self.validator is not None:
            self._sync_pipeline()
        if value == "off":
            loader.unpin()

    def attach(self, validator: Any) -> None:
        self.validator = validator
        self._sync_pipeline()

    def _sync_pipeline(self) -> None:
        if self._policy == "off":
            self.validator.remove_source_check(self.check)
        elif self.check not in self.validator.source_checks:
            self.validator.add_source_check(self.check)

    def allowed(self) -> AllowedSigners | None:
        """The trust root, re-read when its file changes (adding a signer needs no restart)."""
        if self.allowed_signers is None:
            return None
        path = str(Path(self.allowed_signers).expanduser())
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            return AllowedSigners.load(path)  # raises the one-line error naming the file
        cached = self._allowed_cache
        if cached is None or cached[0] != path or cached[1] != mtime:
            cached = self._allowed_cache = (path, mtime, AllowedSigners.load(path))
        allowed: AllowedSigners = cached[2]
        return allowed

    # ------------------------------------------------------------------ the source check
    def check(self, src: PluginSources) -> Iterable[Problem]:
        """Verify ``src`` (a source check). Leaves ``findings["signature"]``; under ``require``
        anything but ``signed`` is a problem naming the files."""
        if self._policy == "off":
            return []
        if src.unit is None:
            info = SignatureInfo(SignatureStatus("unsigned"), reason=f"{src.target} has no source files on disk "
                                 "to verify", policy=self._policy)
        else:
            try:
                allowed = self.allowed()
            except SignatureError as e:
                info = SignatureInfo(SignatureStatus("invalid"), reason=str(e), unit=str(src.unit))
            else:
                info = check_path(src.unit, allowed, src.files)
            if self.allowed_signers is None and info.status == "invalid":
                info.reason += " (no allowed_signers file is configured: PluginManager(allowed_signers=PATH))"
        info.policy = self._policy
        src.findings["signature"] = info
        if self._policy != "require" or info.ok:
            return []
        where = str(src.unit or src.target)
        return [Problem("signature", f"{info.status}: {info.reason}" if info.reason else str(info.status),
                        f"sign it: `flx-ipy sign {where} --key KEYFILE`", where)]


# ---------------------------------------------------------------------- manager gates
class Gated(Protocol):
    """What the gates need from the manager (``PluginManager`` and ``lifecycle.Host`` are)."""

    validator: Validator
    trust: Trust

    def emit(self, kind: str, plugin: str | None = None, *, now: bool = False, **details: Any) -> None: ...


def unit_for_record(rec: Any) -> Path | None:
    """``rec``: a ``registry.PluginRecord`` (its unit: the signed one, else its package or file)."""
    sig = getattr(rec, "signature", None)
    if sig is not None and sig.unit:
        return Path(sig.unit)
    if rec.package_dir:
        return Path(rec.package_dir)
    f = getattr(rec.module, "__file__", None)
    return Path(f).resolve() if f and f.endswith(".py") else None


def unit_for_target(spec: str) -> Path | None:
    where, _ = split_target(spec)
    path = Path(os.path.expanduser(where))
    if where.endswith(".py") or os.sep in where or "/" in where or path.exists():
        return unit_for_path(path) if path.exists() else None
    return unit_for_module(where)


def _emit(pm: Gated, plugin: str | None, info: SignatureInfo, phase: str, accepted: bool) -> None:
    pm.emit("signature_checked", plugin, status=str(info.status), signer=info.signer, files=list(info.files),
             reason=info.reason, policy=info.policy, phase=phase, accepted=accepted, unit=info.unit)
    if accepted and info.status != "signed":
        log.warning("flx_ipy: %s: signature %s", plugin or info.unit, info.summary())


def gate_load(pm: Gated, target: str, spec: str, plugin: str | None) -> SignatureInfo | None:
    """Before a load imports anything: run the source checks, pin the verified bytes."""
    if not pm.validator.source_checks:
        return None
    unit = unit_for_target(spec)
    src = PluginSources(target, unit, plugin, "load")
    result = pm.validator.validate_sources(src)
    info = src.findings.get("signature")
    name = plugin or _name_in(src) or target
    if info is not None:
        _emit(pm, name, info, "load", result.ok)
    if not result.ok:
        files = f" ({', '.join(info.files)})" if info is not None and info.files else ""
        what = f"signature {info.status}{files}" if info is not None else "source checks failed"
        err = PluginLoadError(f"{name}: not loaded under signature policy {pm.trust.policy!r}: {what} — "
                              + "; ".join(p.message for p in result.problems), name,
                              hint=result.problems[0].fix if result.problems else "")
        err.denied = True  # type: ignore[attr-defined]  # the audit record's outcome
        raise err
    if unit is not None:
        loader.pin(unit, src.files, strict=pm.trust.policy == "require")
    return info


def gate_reload(pm: Gated, rec: Any, new_sources: dict[str, bytes]) -> SignatureInfo | None:
    """Before a reload executes new code: the same checks on the bytes the swap will run."""
    if not pm.validator.source_checks:
        if loader.pinned:
            stale = unit_for_record(rec)
            if stale is not None:
                loader.unpin(stale)
        return None
    unit = unit_for_record(rec)
    src = PluginSources(rec.target, unit, rec.name, "reload", given=new_sources)
    result = pm.validator.validate_sources(src)
    info = src.findings.get("signature")
    if info is not None:
        _emit(pm, rec.name, info, "reload", result.ok)
    if not result.ok:
        why = "; ".join(p.message for p in result.problems)
        if info is None or info.ok:  # another source check refused it (the blocking audit log)
            raise FlxError(f"{rec.name}: reload refused before any new code ran: {why}")
        where = unit or rec.source
        files = f" ({', '.join(info.files)})" if info.files else ""
        raise FlxError(f"{rec.name} is no longer signed{files}: {why}"
                       f" — re-sign with `flx-ipy sign {where}`, then `%plugin reload {rec.name}`")
    if unit is not None:
        pm.trust.undo[rec.name] = (unit, loader.pins_of(unit))
        loader.pin(unit, src.files, strict=pm.trust.policy == "require")
    return info


def undo_reload_pins(pm: Gated, rec: Any) -> None:
    """A reload that was rolled back: the bytes pinned for it go, the previous ones come back,
    so a module imported later runs the version that is running, not the one that failed."""
    saved = pm.trust.undo.pop(rec.name, None)
    if saved is not None:
        unit, (files, strict) = saved
        loader.unpin(unit)
        if files:
            loader.pin(unit, files, strict=strict)


_NAME_RE = re.compile(rb"PluginMetadata\(\s*name\s*=\s*[\"']([A-Za-z][\w.-]*)[\"']")


def _name_in(src: PluginSources) -> str | None:
    """The plugin's name as its source spells it (for events and errors, before any import):
    a text search in the bytes already read, not a parse."""
    for data in src.files.values():
        m = _NAME_RE.search(data)
        if m:
            return m.group(1).decode()
    return None


# ---------------------------------------------------------------------- signing (flx-ipy sign)
@dataclass
class SignResult:
    signature_file: Path
    principal: str | None
    files: list[str]
    removed_bytecode: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"signature_file": str(self.signature_file), "principal": self.principal,
                "files": self.files, "removed_bytecode": self.removed_bytecode}


def default_principal(key_file: str | Path) -> str:
    """The comment of ``KEYFILE.pub`` (``ssh-keygen -C``), else ``user@host``."""
    pub = Path(str(key_file) + ".pub")
    try:
        parts = pub.read_text().split(None, 2)
        if len(parts) == 3 and parts[2].strip():
            return parts[2].strip()
    except OSError:
        pass
    import socket

    return f"{os_user()}@{socket.gethostname()}"


def sign_plugin(path: str | Path, key_file: str | Path, principal: str | None = None, *,
                passphrase: bytes | None = None) -> SignResult:
    """Sign a plugin (a ``.py`` file or package folder) with an ed25519 SSH key.

    Stale ``__pycache__/*.pyc`` (not a cache of the current sources) is removed first: it is
    never executed, but ``verify`` would rightly report it. A passphrase-protected key without
    ``passphrase`` is handed to ``ssh-keygen -Y sign``, which asks for it (or uses the agent)."""
    unit = Path(path).expanduser().resolve()
    if not unit.exists():
        raise SignatureError(f"{unit}: no such file or folder")
    if unit.is_file() and unit.suffix != ".py":
        raise SignatureError(f"{unit}: sign a plugin's .py file or its package folder")
    key_path = Path(key_file).expanduser()
    if not key_path.is_file():
        raise SignatureError(f"{key_path}: no such key file (make one: `flx-ipy keygen {key_path}`)")
    who = principal or default_principal(key_path)
    removed = []
    for pyc in stale_bytecode(unit):
        try:
            pyc.unlink()
            removed.append(str(pyc))
        except OSError:
            pass
    if passphrase is None and key_is_encrypted(key_path):
        signer = _ssh_keygen_signer(key_path)
    else:
        key = load_private_key(key_path, passphrase)
        signer = lambda message: sign(message, key)  # noqa: E731
    sig_path, manifest = write_signature(unit, who, signer)
    return SignResult(sig_path, who, sorted(manifest.files), removed)


def _ssh_keygen_signer(key_path: Path) -> Any:
    import shutil
    import subprocess
    import tempfile

    exe = shutil.which("ssh-keygen")
    if exe is None:
        raise SignatureError(f"{key_path} is passphrase-protected and ssh-keygen is not installed to ask for it")

    def signer(message: bytes) -> str:
        with tempfile.TemporaryDirectory() as tmp:
            msg = Path(tmp) / "manifest"
            msg.write_bytes(message)
            proc = subprocess.run([exe, "-Y", "sign", "-f", str(key_path), "-n", NAMESPACE, str(msg)],
                                  capture_output=False, stdout=subprocess.DEVNULL, check=False)
            sig = Path(str(msg) + ".sig")
            if proc.returncode != 0 or not sig.is_file():
                raise SignatureError(f"ssh-keygen -Y sign failed for {key_path} (exit {proc.returncode})")
            return sig.read_text()

    return signer
