"""Revisions: every load, reload and rollback of a plugin, with the code it ran.

Helm keeps the last 10 releases of a chart and makes a rollback a new release; we do the same
per plugin. Each revision keeps the *source bytes* of every module the plugin ran (references
to the bytes the loader already holds, so an unchanged module costs nothing), which is what
lets a rollback run old code again after the files on disk changed or vanished. Runtime state
is deliberately not part of a revision: a rollback keeps today's state (save_state → restore
state, offering the plugin's ``migrate_state`` when the state's version differs). Nobody else
offers a downgrade that keeps the live state, so the hook is ours to define:

    def migrate_state(self, state: PluginState, from_version: str) -> PluginState | dict | None

Also here: the health gate (Helm's ``--atomic``): with ``PluginManager(health_gate=True)`` a
reload whose new code reports ``unhealthy`` is undone inside the same transaction.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .errors import FlxError, PluginNotFoundError
from .files import sources
from .lifecycle import Host, has_hook, health_steps, hook_call
from .registry import PluginRecord
from .steps import Steps
from .types import Health, PluginState

REASONS = ("load", "reload", "rollback")


def code_sha256(code: Mapping[str, bytes], root: str | None = None) -> str:
    """sha256 of a plugin's code: for one file, the file's own sha256 (``sha256sum`` agrees);
    for several, the sha256 of sorted ``relpath NUL sha256-of-file LF`` lines (a manifest)."""
    if len(code) == 1:
        return hashlib.sha256(next(iter(code.values()))).hexdigest()
    base = root or (os.path.commonpath(list(code)) if code else "")
    lines = sorted(f"{os.path.relpath(p, base) if base else p}\0{hashlib.sha256(b).hexdigest()}\n"
                   for p, b in code.items())
    return hashlib.sha256("".join(lines).encode()).hexdigest()


@dataclass(frozen=True)
class Revision:
    """One revision of a plugin. ``code`` maps each module file to the bytes that ran;
    ``rollback_of`` is the revision whose code a rollback ran again. Also readable as a
    mapping (``rev["version"]``) for code that treats revisions as JSON."""

    plugin: str
    revision: int
    version: str
    code_sha256: str
    time: float
    reason: str
    code: Mapping[str, bytes] = field(repr=False, compare=False)
    rollback_of: int | None = None

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    @property
    def files(self) -> list[str]:
        return sorted(self.code)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, without the code bytes."""
        return {"plugin": self.plugin, "revision": self.revision, "version": self.version,
                "code_sha256": self.code_sha256, "time": self.time,
                "time_iso": datetime.fromtimestamp(self.time, timezone.utc).isoformat().replace("+00:00", "Z"),
                "reason": self.reason, "rollback_of": self.rollback_of, "files": self.files}


class RevisionLog:
    """The last ``keep`` revisions of every plugin (kept after an unload: numbering goes on
    if it is loaded again, as Helm keeps the history of an uninstalled release)."""

    def __init__(self, keep: int = 10, clock: Any = None) -> None:
        if keep < 1:
            raise ValueError("RevisionLog keeps at least one revision")
        self.keep = keep
        self._clock = clock
        self._revs: dict[str, deque[Revision]] = {}
        self._next: dict[str, int] = {}
        self._lock = threading.Lock()
        #: plugin -> revision being rolled back to (set by rollback_steps for the "reloaded" it causes)
        self.rolling_back: dict[str, int] = {}

    def record(self, rec: PluginRecord, reason: str, now: float) -> Revision:
        code = {p: sources[p] for p in sorted(rec.files) if p in sources}
        if not code and rec.source and os.path.isfile(rec.source):
            try:
                with open(rec.source, "rb") as fh:
                    code = {rec.source: fh.read()}
            except OSError:
                code = {}
        with self._lock:
            n = self._next.get(rec.name, 1)
            self._next[rec.name] = n + 1
            rev = Revision(rec.name, n, rec.version, code_sha256(code, rec.package_dir), now, reason,
                           code, self.rolling_back.get(rec.name) if reason == "rollback" else None)
            self._revs.setdefault(rec.name, deque(maxlen=self.keep)).append(rev)
        return rev

    def history(self, name: str) -> list[Revision]:
        with self._lock:
            revs = self._revs.get(name)
            if revs is None:
                raise PluginNotFoundError(f"no revisions of {name!r}: it was never loaded", name,
                                          hint=f"`%plugin load {name}` first")
            return list(revs)

    def current(self, name: str) -> Revision | None:
        with self._lock:
            revs = self._revs.get(name)
            return revs[-1] if revs else None

    def pick(self, name: str, to: int | str | None) -> Revision:
        """The revision a rollback runs: ``to``, or the one before the current."""
        revs = self.history(name)
        kept = ", ".join(str(r.revision) for r in revs)
        if to is None:
            if len(revs) < 2:
                raise FlxError(f"{name}: no earlier revision to roll back to (kept: {kept})")
            return revs[-2]
        try:
            want = int(to)
        except (TypeError, ValueError):
            raise FlxError(f"{name}: revision must be a number, not {to!r} (kept: {kept})") from None
        for r in revs:
            if r.revision == want:
                return r
        raise FlxError(f"{name}: no revision {want} is kept (kept: {kept}); see `%plugin history {name}`")


def migrate_steps(pm: Host, rec: PluginRecord, inst: Any, saved: PluginState) -> Steps[PluginState]:
    """Offer ``migrate_state`` when the saved state's version differs from the new code's."""
    new_version = str(type(inst).metadata.version)
    fn = getattr(inst, "migrate_state", None)
    if not callable(fn) or saved.version == new_version:
        return saved
    out = yield hook_call(pm, rec, "migrate_state", saved, saved.version)
    if out is None:
        return PluginState(saved.plugin_id, new_version, saved.configuration, saved.runtime_data)
    if isinstance(out, PluginState):
        return out
    if isinstance(out, dict):
        return PluginState(rec.name, new_version, runtime_data=out)
    raise TypeError(f"{rec.name}.migrate_state() returned {type(out).__name__}; "
                    "return a PluginState, a dict or None")


class HealthGateFailed(FlxError):
    """The new code's health check said unhealthy: the reload is undone."""


def health_gate_steps(pm: Host, rec: PluginRecord) -> Steps[None]:
    """After the new code started: one health check bounded by ``health_timeout``. Unhealthy →
    stop the new code (so the old one can start cleanly) and raise, which rolls back."""
    before = rec.health
    status = yield from health_steps(pm, rec.name)
    if status.status != Health.UNHEALTHY:
        return
    try:
        if has_hook(rec.instance, "stop"):
            yield hook_call(pm, rec, "stop")
    finally:
        if rec.context is not None:
            rec.context.end_run()
        rec.health = before
    raise HealthGateFailed(f"health check failed after the reload: {status.message or 'unhealthy'}")
