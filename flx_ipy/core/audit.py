"""The audit log: one JSON line per operation outcome, hash-chained, written off the hot path.

Each record has ``time`` (RFC 3339, UTC), ``operation``, ``plugin``, ``outcome`` (``ok``,
``failed``, ``rolled_back``, ``denied``), ``actor`` (OS user), ``origin`` (``api``, ``magic``,
``widget``, ``labextension``, ``watcher``, ``cli``, ``http`` — see ``core/origin.py``),
``error``, ``code_sha256`` and ``prev``: the sha256 hex of the previous line's bytes (without
its newline; null for the very first record), so ``flx-ipy audit verify`` finds the first line
that was edited, deleted or inserted.

What the chain proves, honestly: that the file is the one the writer wrote, *unless* whoever
changed it recomputed the chain from that point on — anyone who can write the file can. It
catches careless edits and truncation in the middle, not a deliberate forger (ship the lines to
a host the user cannot write to for that; journald's sealing had CVE-2023-31439 all the same).

Modes (as Kubernetes' audit backends): ``buffered`` (default) — the operation hands the record
to a queue (a few µs) and a writer thread serialises, chains and appends it; ``blocking`` —
the record is written and flushed before the operation's call returns, and while the log
cannot be written, loads and reloads are refused (a source check), so no code runs unaudited.
A write failure never raises into a plugin operation: it is a logged warning and an
``audit_failed`` event. Files rotate by size (``audit.jsonl.1`` ...), and the first record of a
new file chains to the last of the previous one. Several processes may share one file: writes
take an advisory lock and re-read the last line when another writer appended.
"""

from __future__ import annotations

import atexit
import datetime as _dt
import hashlib
import json
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from . import files
from .auditfile import ChainReport, read_records, tail, verify_chain
from .errors import FlxError
from .origin import current_origin, os_user
from .revisions import code_sha256
from .types import Event
from .validators import PluginSources, Problem

log = logging.getLogger("flx_ipy")

__all__ = ["AUDITED", "AuditLog", "AuditTrail", "Audited", "ChainReport", "code_sha256", "read_records", "tail",
           "verify_chain"]

MODES = ("buffered", "blocking")
_FIELDS = ("time", "operation", "plugin", "outcome", "actor", "origin", "error", "code_sha256")


def rfc3339(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).isoformat(timespec="microseconds").replace(
        "+00:00", "Z")


def _last_line(path: Path) -> bytes | None:
    """The last non-empty line of a file, read from its end (cheap on a large log)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            end = fh.tell()
            chunk, buf = 4096, b""
            pos = end
            while pos > 0:
                step = min(chunk, pos)
                pos -= step
                fh.seek(pos)
                buf = fh.read(step) + buf
                stripped = buf.rstrip(b"\n")
                if b"\n" in stripped:
                    return stripped.rsplit(b"\n", 1)[1]
            stripped = buf.rstrip(b"\n")
            return stripped or None
    except OSError:
        return None


class AuditLog:
    """Appends hash-chained JSON lines to ``path``; see the module docstring for the modes."""

    def __init__(self, path: str | Path, *, mode: str = "buffered", max_bytes: int = 10 * 2**20,
                 backups: int = 5, actor: str | None = None, fsync: bool = False,
                 on_error: Callable[[str], Any] | None = None, queue_size: int = 100_000) -> None:
        if mode not in MODES:
            raise ValueError(f"audit mode must be one of {', '.join(MODES)}; got {mode!r}")
        self.path = Path(path).expanduser()
        self.mode = mode
        self.max_bytes = max_bytes
        self.backups = backups
        self.actor = actor or os_user()
        self.fsync = fsync
        self.on_error = on_error
        self.errors = 0
        self.last_error: str | None = None
        self.written = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._fh: Any = None
        self._prev: str | None = None
        self._known_size = -1
        self.queue_size = queue_size
        # the hand-over to the writer: a deque append is atomic and lock-free; the writer is woken
        # through an Event only when it sleeps (is_set() is a plain read on the caller's side)
        self._buf: deque[Any] = deque()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    # ------------------------------------------------------------------ the caller's side
    def write(self, record: Mapping[str, Any], *, when: float | None = None,
              code: Any = None) -> None:
        """Record one outcome. ``code``: a zero-argument function returning ``code_sha256``
        (evaluated in the writer, off the hot path). Never raises in ``buffered`` mode."""
        self.enqueue(time.time() if when is None else when, dict(record), code)

    def enqueue(self, when: float, record: dict[str, Any], code: Any) -> None:
        """``write`` without copying ``record`` (the audit trail builds a fresh one each time)."""
        item = (when, record, code)
        if self.mode == "blocking":
            self._write_batch([item], raise_errors=True)
            return
        if self._closed:
            return
        if len(self._buf) >= self.queue_size:
            self.dropped += 1
            self._fail(f"audit queue full: record for {record.get('plugin')} {record.get('operation')} dropped")
            return
        self._buf.append(item)
        if not self._wake.is_set():
            self._wake.set()
        if self._thread is None:
            self._start()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every record handed over so far is written (True) or ``timeout`` passes."""
        if self.mode == "blocking" or self._thread is None:
            return True
        done = threading.Event()
        self._buf.append(done)
        self._wake.set()
        return done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        self.flush(timeout)
        self._closed = True
        t = self._thread
        if t is not None:
            self._buf.append(None)
            self._wake.set()
            t.join(timeout)
            self._thread = None
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None

    def writable(self) -> str | None:
        """None when a record can be written now, else why not (blocking mode's source check)."""
        with self._lock:
            try:
                self._open()
            except OSError as e:
                return f"cannot write the audit log {self.path}: {e.strerror or e}"
        return None

    # ------------------------------------------------------------------ the writer's side
    def _start(self) -> None:
        with self._lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="flx_ipy-audit", daemon=True)
                self._thread.start()
                _open_logs.add(self)

    def _run(self) -> None:
        buf = self._buf
        while True:
            if not buf:
                self._wake.clear()
                if not buf:  # re-checked after clear(): an append in between is not missed
                    self._wake.wait()
            batch: list[Any] = []
            markers: list[threading.Event] = []
            stop = False
            while buf and len(batch) < 1000:
                item = buf.popleft()
                if item is None:
                    stop = True
                    break
                if isinstance(item, threading.Event):
                    markers.append(item)
                    break  # write what precedes the flush marker, then tell the waiter
                batch.append(item)
            if batch:
                try:
                    self._write_batch(batch, raise_errors=False)
                except Exception:  # never let the writer die: the next batch may succeed
                    log.exception("flx_ipy: the audit writer failed")
            for m in markers:
                m.set()
            if stop:
                return

    def _open(self) -> None:
        """Open (or reopen after another process rotated) and learn the chain's last hash."""
        if self._fh is not None:
            try:
                if os.fstat(self._fh.fileno()).st_ino == os.stat(self.path).st_ino:
                    return
            except OSError:
                pass
            self._fh.close()
            self._fh = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "ab")  # kept open across writes
        self._known_size = -1

    def _sync_prev(self) -> None:
        size = os.fstat(self._fh.fileno()).st_size
        if size == self._known_size:
            return
        last = _last_line(self.path) if size else None
        if last is None:
            last = _last_line(self._rotated(1))
        self._prev = hashlib.sha256(last).hexdigest() if last is not None else None
        self._known_size = size

    def _rotated(self, n: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{n}")

    def _rotate(self) -> None:
        # renamed while still locked: another writer waiting for the lock then sees a new inode
        if self.backups <= 0:
            os.replace(self.path, self._rotated(1))  # keep one file so the chain stays checkable
        else:
            for n in range(self.backups, 0, -1):
                src = self.path if n == 1 else self._rotated(n - 1)
                if src.exists():
                    os.replace(src, self._rotated(n))
        self._fh.close()
        self._fh = None
        self._open()
        self._known_size = 0

    def _lines(self, batch: Iterable[tuple[float, dict[str, Any], Any]]) -> list[bytes]:
        out = []
        for when, rec, code in batch:
            full: dict[str, Any] = {"time": rfc3339(when)}
            for k in _FIELDS[1:]:
                full[k] = rec.get(k)
            if full["actor"] is None:
                full["actor"] = self.actor
            if code is not None and full["code_sha256"] is None:
                try:
                    full["code_sha256"] = code()
                except Exception:
                    full["code_sha256"] = None
            for k, v in rec.items():
                if k not in full:
                    full[k] = v
            full["prev"] = None
            out.append(full)
        return out  # type: ignore[return-value]

    def _write_batch(self, batch: list[tuple[float, dict[str, Any], Any]], *, raise_errors: bool) -> None:
        records: list[Any] = self._lines(batch)
        with self._lock:
            try:
                self._open()
                _lock_file(self._fh)
                if os.fstat(self._fh.fileno()).st_ino != os.stat(self.path).st_ino:
                    self._open()  # rotated by another process while we waited for the lock
                    _lock_file(self._fh)
                try:
                    self._sync_prev()
                    size = self._known_size
                    for rec in records:
                        rec["prev"] = self._prev
                        line = json.dumps(rec, separators=(",", ":"), default=str).encode()
                        if self.max_bytes and size and size + len(line) + 1 > self.max_bytes:
                            self._fh.flush()
                            self._rotate()
                            _lock_file(self._fh)
                            size = 0
                        self._fh.write(line + b"\n")
                        size += len(line) + 1
                        self._prev = hashlib.sha256(line).hexdigest()
                    self._fh.flush()
                    if self.fsync:
                        os.fsync(self._fh.fileno())
                    self._known_size = os.fstat(self._fh.fileno()).st_size
                finally:
                    _unlock_file(self._fh)
                self.written += len(records)
            except (OSError, ValueError) as e:
                if self._fh is not None:
                    try:
                        self._fh.close()
                    except OSError:
                        pass
                    self._fh = None
                msg = f"cannot write the audit log {self.path}: {getattr(e, 'strerror', None) or e}"
                self._fail(msg)
                if raise_errors:
                    raise FlxError(msg) from None

    def _fail(self, message: str) -> None:
        self.errors += 1
        first = self.last_error != message
        self.last_error = message
        if first:
            log.warning("flx_ipy: %s (operations go on unaudited)", message)
        if self.on_error is not None:
            try:
                self.on_error(message)
            except Exception:
                log.exception("flx_ipy: audit error callback raised")


#: logs with a writer thread: their last records are flushed when the interpreter exits (the
#: thread is a daemon, so a kernel's shutdown never waits on a hung disk for more than a second)
_open_logs: weakref.WeakSet[AuditLog] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    deadline = time.monotonic() + 1.0
    for log_ in list(_open_logs):
        log_.flush(max(0.0, deadline - time.monotonic()))


def _lock_file(fh: Any) -> None:
    try:
        import fcntl

        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
    except (ImportError, OSError):  # no advisory locks here (Windows): one writer per file then
        pass


def _unlock_file(fh: Any) -> None:
    if fh is None:
        return
    try:
        import fcntl

        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    except (ImportError, OSError, ValueError):
        pass


# ---------------------------------------------------------------------- from events to records
#: event kind -> (operation, outcome); an outcome of None is decided from the event's details.
AUDITED: dict[str, tuple[str, str | None]] = {
    "loaded": ("load", "ok"), "started": ("start", "ok"), "stopped": ("stop", "ok"),
    "unloaded": ("unload", "ok"), "reloaded": ("reload", "ok"), "reload_failed": ("reload", None),
    "failed": ("", "failed"), "operation_failed": ("", None), "signature_checked": ("signature", None),
    "crashed": ("crash", "failed"), "restarted": ("restart", "ok"),
    "installed": ("install", "ok"), "install_failed": ("install", "failed"), "rolled_back": ("rollback", "ok"),
    "denied": ("capability", "denied"),  # an isolated plugin's call met its sandbox (worker/runtime.py)
}
_PHASE_OP = {"initialize": "start", "start": "start", "restart after rollback": "reload", "retry": "reload",
             "crash-loop": "restart", "restart-failed": "restart"}  # an isolated plugin given up on
#: details copied into the record, per event kind (what an auditor asks next)
_EXTRA: dict[str, tuple[str, ...]] = {
    "crashed": ("reason", "returncode", "pid"), "restarted": ("reason", "pid", "restored"),
    "failed": ("reason",), "denied": ("call",),
    "installed": ("distribution", "version", "previous", "index", "sha256", "target"),
    "install_failed": ("index",),
}


class Audited(Protocol):
    """What the audit trail needs from the manager it records (``PluginManager`` is one)."""

    registry: Any  # name -> PluginRecord
    validator: Any  # the validation pipeline (blocking mode adds a source check)

    def subscribe(self, callback: Callable[[Event], Any], *, replay: bool = False) -> Callable[[], None]: ...

    def emit(self, kind: str, plugin: str | None = None, *, now: bool = False, **details: Any) -> None: ...


class AuditTrail:
    """Subscribes an ``AuditLog`` to a manager's events: one record per operation outcome."""

    def __init__(self, pm: Audited, audit_log: AuditLog) -> None:
        self.pm = pm
        self.log = audit_log
        audit_log.on_error = self._on_error
        self._unsubscribe = pm.subscribe(self._on_event)
        self._check = None
        if audit_log.mode == "blocking":
            self._check = pm.validator.add_source_check(self.source_check)

    @property
    def path(self) -> Path:
        return self.log.path

    def flush(self, timeout: float = 5.0) -> bool:
        return self.log.flush(timeout)

    def close(self) -> None:
        self._unsubscribe()
        if self._check is not None:
            self.pm.validator.remove_source_check(self._check)
        self.log.close()

    def source_check(self, src: PluginSources) -> Iterable[Problem]:
        """Blocking mode: no plugin code runs while its outcome could not be recorded."""
        why = self.log.writable()
        if why is None:
            return []
        return [Problem("audit", why, "make the audit log writable, or use audit_mode='buffered'")]

    def _on_error(self, message: str) -> None:
        self.pm.emit("audit_failed", None, error=message, path=str(self.log.path))

    def _on_event(self, ev: Event) -> None:
        rule = AUDITED.get(ev.kind)
        if rule is None:
            return
        d = ev.details
        operation, outcome = rule
        error = d.get("error")
        if ev.kind == "reload_failed":
            outcome = "rolled_back" if d.get("rolled_back") else "failed"
        elif ev.kind == "failed":
            operation = _PHASE_OP.get(d.get("phase", ""), d.get("phase") or "operation")
        elif ev.kind == "operation_failed":
            operation = d.get("operation") or "operation"
            outcome = "denied" if d.get("denied") else "failed"
        elif ev.kind == "signature_checked":
            outcome = "ok" if d.get("accepted") else "denied"
            if d.get("status") != "signed":
                error = f"{d.get('status')}: {d.get('reason')}" if d.get("reason") else d.get("status")
        elif ev.kind == "stopped" and d.get("problems"):
            error = "; ".join(d["problems"])
        elif ev.kind == "crashed":
            error = d.get("reason") or error
        record: dict[str, Any] = {"operation": operation, "plugin": ev.plugin, "outcome": outcome,
                                  "origin": current_origin(), "error": error}
        if ev.kind == "signature_checked":
            record.update(signature=d.get("status"), signer=d.get("signer"), files=d.get("files"),
                          policy=d.get("policy"))
        elif ev.kind == "reload_failed" and d.get("phase"):
            record["phase"] = d["phase"]
        for k in _EXTRA.get(ev.kind, ()):
            if d.get(k) is not None:
                record["wheel_sha256" if k == "sha256" else k] = d[k]
        if d.get("reason") == "rollback":  # pm.rollback runs through the reload transaction
            record["operation"] = "rollback"
        if d.get("revision") is not None:
            record["revision"] = d["revision"]
        if d.get("code_sha256"):  # the revision's digest: one rule for both (revisions.code_sha256)
            record["code_sha256"] = d["code_sha256"]
            self.log.enqueue(ev.time, record, None)
            return
        self.log.enqueue(ev.time, record, self._code_of(ev.plugin))

    def _code_of(self, name: str | None) -> Callable[[], str | None] | None:
        """Capture the running code's bytes now; hash them in the writer thread."""
        rec = self.pm.registry.get(name) if name else None
        if rec is None or not rec.files:
            return None
        sources = files.sources
        code = {f: data for f in sorted(rec.files) if (data := sources.get(f)) is not None}
        root = rec.package_dir or rec.root
        return lambda: code_sha256(code, root) if code else None
