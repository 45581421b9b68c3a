"""The plugin manager: one registry, one lock, every transition an event.

Operations (load, start, stop, unload, health) are written once in ``lifecycle.py`` and the reload
transaction in ``transaction.py``, as generators of hook calls; here they get a sync face
(``pm.start``) and an awaitable twin (``await pm.astart``). All lifecycle operations are
serialised by one lock, and their events published after its release (``serial.py``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from . import lifecycle, transaction
from .audit import AuditLog, AuditTrail
from .discovery import Candidate, Discovery
from .errors import InvalidStateError, PluginNotFoundError
from .events import EventBus, Subscriber
from .metrics import HookMetrics
from .registry import PluginRecord, Registry
from .revisions import Revision, RevisionLog
from .rollback import rollback_steps
from .serial import Serialised
from .settle import BROKEN_GRACE, Settle
from .steps import HookLoop, HookRunner, InProcess, Steps, adrive, drive
from .trust import Trust
from .types import HealthStatus, LifecycleState, PluginMetadata, ReloadResult
from .validators import Validator
from .watcher import Watcher
from .worker import policy as isolation_policy
from .worker import runtime as isolated_runtime

log = logging.getLogger("flx_ipy")

__all__ = ["PluginManager", "PluginRecord", "get_manager", "set_rich_display"]

#: ``display(pm)``'s renderer, registered by a host layer (``flx_ipy`` registers its widgets);
#: the core never names one. Signature: ``(pm, include, exclude) -> mimebundle``.
RichDisplay = Callable[["PluginManager", Any, Any], dict[str, Any]]
_rich_display: RichDisplay | None = None


def set_rich_display(render: RichDisplay | None) -> None:
    """Register how ``display(pm)`` renders the manager in a notebook (None: plain text)."""
    global _rich_display
    _rich_display = render


class PluginManager(Serialised):
    """Discovers, loads, runs and hot-reloads plugins (the layers: ``docs/architecture.md``)."""

    def __init__(
        self,
        plugin_dirs: Iterable[str | Path] = (),
        *,
        entry_points: bool = True,
        config: Mapping[str, Mapping[str, Any]] | None = None,
        health_timeout: float = 5.0,
        hook_timeout: float | None = 30.0,
        event_history: int = 500,
        data_root: str | Path | None = None,
        clock: Callable[[], float] = time.time,
        signature_policy: str = "off",
        allowed_signers: str | Path | None = None,
        audit_log: str | Path | None = None,
        audit_mode: str = "buffered",
        isolate: Any = None,
        health_gate: bool = False,
        revisions_kept: int = 10,
    ) -> None:
        self.discovery = Discovery(plugin_dirs=[Path(d) for d in plugin_dirs], entry_points=entry_points)
        self.events = EventBus(history=event_history, clock=clock)
        self.config: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (config or {}).items()}
        self.health_timeout = health_timeout
        self.hook_timeout = hook_timeout
        #: how long another thread waits at a plugin handing over state while its stop() runs
        self.handover_grace = 0.25
        self.data_root = Path(data_root) if data_root else None
        self.clock = clock
        #: which plugins load isolated without ``isolated=True`` (``core/worker/policy.py``)
        self.isolate = isolate
        #: every loaded plugin by name, and the rules asked of all of them
        self.registry = Registry()
        #: how long a broken save is held back in case the editor is still writing (settle.py)
        self.broken_grace = BROKEN_GRACE
        super().__init__()
        self._hook_loop = HookLoop()
        #: the checks every load, reload and retry runs; ``pm.validator.add_check(fn)`` adds one
        self.validator = Validator.default()
        #: the one seam where plugin hooks are entered (steps.py); a worker runtime replaces it
        self.hooks: HookRunner = InProcess(self._hook_loop)
        #: hook timings and reload outcomes (``pm.metrics()``): every call to ``self.hooks`` is timed
        self.hook_metrics = HookMetrics()
        self._watcher: Watcher | None = None
        self._candidates: list[Candidate] = []
        #: a reload whose new code reports "unhealthy" is rolled back (Helm's --atomic)
        self.health_gate = health_gate
        self.revisions = RevisionLog(keep=revisions_kept)
        self.events.subscribe(lambda ev: self.hook_metrics.on_event(self.registry, ev))
        #: signatures are a source check in that pipeline, run before a plugin's code does
        self.trust = Trust(signature_policy, allowed_signers)
        self.trust.attach(self.validator)
        self.audit: Any = None
        if audit_log is not None:
            self.set_audit_log(audit_log, mode=audit_mode)

    # ----------------------------------------------------------------- trust & audit
    @property
    def signature_policy(self) -> str:
        """``"off"`` | ``"warn"`` | ``"require"`` (see ``core/trust.py``); settable at any time."""
        return self.trust.policy

    @signature_policy.setter
    def signature_policy(self, value: str) -> None:
        self.trust.policy = value

    @property
    def allowed_signers(self) -> str | Path | None:
        return self.trust.allowed_signers

    @allowed_signers.setter
    def allowed_signers(self, value: str | Path | None) -> None:
        self.trust.allowed_signers = value

    def set_audit_log(self, path: str | Path | None, *, mode: str = "buffered", **options: Any) -> Any:
        """Record every operation outcome to ``path`` (JSON Lines, hash-chained; None: stop)."""
        if self.audit is not None:
            self.audit.close()
            self.audit = None
        if path is not None:
            self.audit = AuditTrail(self, AuditLog(path, mode=mode, **options))
        return self.audit

    # ----------------------------------------------------------------- registry & events
    @property
    def plugins(self) -> Mapping[str, PluginRecord]:
        """Every loaded plugin by name (a snapshot: safe to iterate while others reload)."""
        return dict(self.registry)

    def record(self, name: str) -> PluginRecord:
        rec = self.registry.get(name)
        if rec is None:
            known = ", ".join(sorted(self.registry)) or "none loaded"
            raise PluginNotFoundError(f"no plugin named {name!r} is loaded (loaded: {known})", name,
                                      hint=f"load it first: `%plugin load {name}`")
        return rec

    def get(self, name: str) -> Any:
        """The live plugin object; a reference taken now runs the new code after a reload."""
        rec = self.record(name)
        if rec.instance is None:
            raise InvalidStateError(f"{name}: has no live object ({rec.status})", name,
                                    hint=f"`%plugin load {name}` again")
        return rec.instance

    def status(self, name: str) -> LifecycleState:
        """A loaded plugin's state; ``unloaded`` after ``unload``; ``discovered`` for a plugin
        discovery listed but nobody loaded yet."""
        rec = self.registry.get(name)
        if rec is not None:
            return rec.status
        if name in self.registry.unloaded:
            return LifecycleState.UNLOADED
        if any(c.name == name and c.ok for c in self._candidates):
            return LifecycleState.DISCOVERED
        return self.record(name).status  # raises the not-found error with its hint

    @property
    def hook_thread_id(self) -> int | None:
        """The thread ``async def`` hooks run on for sync callers (None until first used)."""
        return self._hook_loop.thread_id

    def subscribe(self, callback: Subscriber, *, replay: bool = False) -> Callable[[], None]:
        return self.events.subscribe(callback, replay=replay)

    def emit(self, kind: str, plugin: str | None = None, *, now: bool = False, **details: Any) -> None:
        """Queue an event; it is published when the running operation releases the lock, so a
        subscriber may call the manager. ``now``: publish at once (after what is queued, to keep
        the order) — for "reloading", so a UI shows a slow reload while it runs; a subscriber
        calling a manager operation from that event gets a clear "busy" error instead."""
        if kind in _REVISION_KINDS and plugin is not None and plugin in self.registry:
            reason = "rollback" if plugin in self.revisions.rolling_back else _REVISION_KINDS[kind]
            rev = self.revisions.record(self.registry[plugin], reason, self.clock())
            details.update(revision=rev.revision, reason=reason, code_sha256=rev.code_sha256)
            if rev.rollback_of is not None:
                details["rollback_of"] = rev.rollback_of
        super().emit(kind, plugin, now=now, **details)

    # ----------------------------------------------------------------- discovery
    def discover(self, *dirs: str | Path, rescan: bool = False) -> list[PluginMetadata]:
        """List plugins from entry points and plugin folders, without importing them.

        Broken candidates are kept in ``discovery_errors`` (and emitted as ``discovered``
        events with an ``error``); discovery never raises because one plugin is broken.
        """
        if dirs:
            self.discovery.add_dirs(*dirs)
        cands = self.discovery.scan(rescan=rescan)
        new_keys = {(c.name, c.target, c.error) for c in cands}
        old_keys = {(c.name, c.target, c.error) for c in self._candidates}
        self._candidates = cands
        for c in cands:
            if (c.name, c.target, c.error) not in old_keys:
                self.emit("discovered", c.name, target=c.target, source=c.source, error=c.error)
        del new_keys
        return [c.metadata for c in cands if c.ok and c.metadata is not None]

    async def adiscover(self, *dirs: str | Path, rescan: bool = False) -> list[PluginMetadata]:
        """Discovery reads files and calls no plugin hook: the twin exists for symmetry."""
        return self.discover(*dirs, rescan=rescan)

    @property
    def candidates(self) -> list[Candidate]:
        return list(self._candidates)

    @property
    def discovery_errors(self) -> list[Candidate]:
        return [c for c in self._candidates if not c.ok]

    def resolve(self, target: str) -> tuple[str | None, Candidate | None]:
        """A discovered name resolves to its candidate's target; anything else passes through."""
        looks_like_name = target.isidentifier() or "-" in target
        cand = self.discovery.find(target) if looks_like_name else None
        if cand is None and looks_like_name:
            self.discover()  # the scan is cached by mtimes: cheap, and sees a plugin added since
            cand = self.discovery.find(target)
        if cand is not None and not cand.ok:
            return None, cand
        return (cand.target if cand else None), cand

    # ----------------------------------------------------------------- operations
    def load(self, target: str | Path, start: bool = False, *, config: Mapping[str, Any] | None = None,
             isolated: bool = False, limits: Mapping[str, Any] | None = None) -> PluginRecord:
        """Import a plugin (a discovered name, ``module:Class``, a module, a file or folder).

        ``isolated=True``: run it in its own sandboxed worker process instead (``core/worker``);
        ``limits``: ``{"memory_mb", "cpu_seconds", "open_files"}`` for that worker."""
        rec = self._run(self._load_steps(str(target), config, isolated, limits))
        self._follow_new_roots()
        if start:
            self.start(rec.name)
        return rec

    def _follow_new_roots(self) -> None:
        """Watching "the loaded plugins" includes plugins loaded after ``watch()``: re-arm the
        watcher when a plugin lives in a folder it does not cover yet."""
        w = self._watcher
        if w is None or not w.auto or not w.running:
            return
        if set(self.watch_roots()) - set(w.paths):
            self.watch(**w.options)

    def _load_steps(self, target: str, config: Mapping[str, Any] | None, isolated: bool,
                    limits: Mapping[str, Any] | None) -> Steps[PluginRecord]:
        if not isolated and self.isolate:
            isolated = isolation_policy.wants_isolation(self, target)
        if not isolated and limits:
            raise InvalidStateError("limits apply to isolated plugins only: pass isolated=True")
        if isolated:
            return isolated_runtime.load_steps(self, target, config, limits)
        return lifecycle.load_steps(self, target, config)

    async def aload(self, target: str | Path, start: bool = False, *,
                    config: Mapping[str, Any] | None = None, isolated: bool = False,
                    limits: Mapping[str, Any] | None = None) -> PluginRecord:
        rec = await self._arun(self._load_steps(str(target), config, isolated, limits))
        self._follow_new_roots()
        if start:
            await self.astart(rec.name)
        return rec

    def initialize(self, name: str) -> PluginRecord:
        return self._run(lifecycle.initialize_steps(self, name))

    async def ainitialize(self, name: str) -> PluginRecord:
        return await self._arun(lifecycle.initialize_steps(self, name))

    def start(self, name: str) -> PluginRecord:
        """Start ``name`` (its dependencies first). Starting a running plugin is refused."""
        return self._run(lifecycle.start_steps(self, name))

    async def astart(self, name: str) -> PluginRecord:
        return await self._arun(lifecycle.start_steps(self, name))

    def stop(self, name: str) -> PluginRecord:
        """Stop ``name`` (running dependants first); every cleanup runs even if one raises."""
        return self._run(lifecycle.stop_steps(self, name))

    async def astop(self, name: str) -> PluginRecord:
        return await self._arun(lifecycle.stop_steps(self, name))

    def unload(self, name: str) -> None:
        self._run(lifecycle.unload_steps(self, name))

    async def aunload(self, name: str) -> None:
        await self._arun(lifecycle.unload_steps(self, name))

    def reload(self, name: str, *, force: bool = True,
               sources: Mapping[str, bytes] | None = None) -> ReloadResult:
        """Swap in the plugin's current source; on any failure the old version keeps running.
        ``sources`` (path -> bytes): run these instead of the files' (an isolated plugin's worker
        gets a rollback's kept code, or the bytes the kernel's signature check verified, this way)."""
        return self._run(transaction.reload_steps(self, name, force=force,
                                                  new_sources=dict(sources) if sources else None))

    async def areload(self, name: str, *, force: bool = True,
                      sources: Mapping[str, bytes] | None = None) -> ReloadResult:
        return await self._arun(transaction.reload_steps(self, name, force=force,
                                                         new_sources=dict(sources) if sources else None))

    def health(self, name: str | None = None) -> HealthStatus | dict[str, HealthStatus]:
        """Run health checks (with a timeout); a raising or hanging check is ``unhealthy``."""
        if name is not None:
            return drive(lifecycle.health_steps(self, name), self._invoke)
        return {n: drive(lifecycle.health_steps(self, n), self._invoke) for n in list(self.registry)}

    async def ahealth(self, name: str | None = None) -> HealthStatus | dict[str, HealthStatus]:
        if name is not None:
            return await adrive(lifecycle.health_steps(self, name), self._ainvoke)
        return {n: await adrive(lifecycle.health_steps(self, n), self._ainvoke) for n in list(self.registry)}

    def state(self, name: str) -> dict[str, Any]:
        """What the plugin would hand to its next version (its ``save_state`` or attributes)."""
        return drive(lifecycle.state_steps(self, name), self._invoke)

    # ----------------------------------------------------------------- hot reload
    def apply_changes(self, paths: Iterable[str | Path], *, force: bool = False) -> list[ReloadResult]:
        """Reload every plugin affected by changed ``paths`` (what the watcher calls).

        Exactly the affected plugins, each once; a path whose content did not change does
        nothing. Usable without a watcher (tests feed change sets here).
        """
        return self._run(transaction.apply_changes_steps(self, [str(p) for p in paths], force=force))

    async def aapply_changes(self, paths: Iterable[str | Path], *, force: bool = False) -> list[ReloadResult]:
        return await self._arun(transaction.apply_changes_steps(self, [str(p) for p in paths], force=force))

    def pending_changes(self) -> list[str]:
        """Files of loaded plugins saved but not applied yet (content differs from what runs,
        and is not a version that already failed)."""
        return self.registry.pending_files()

    def apply_pending(self, timeout: float = 5.0, settle: float = 0.02) -> list[ReloadResult]:
        """Apply saved-but-not-applied changes now, in the caller, once their content is stable.

        For a notebook cell that wants to see a save made just before it: in a kernel, reloads
        otherwise wait until no cell runs, so a cell never sees two versions by surprise. Here
        the cell opts in (``%plugin sync``). Waits at most ``timeout`` for an editor to finish.
        """
        pending = self.registry.pending_files()
        for pause in Settle(pending, settle, self.broken_grace, timeout).pauses():
            time.sleep(pause)  # the settle window itself, not a wait for correctness
        return self.apply_changes(pending) if pending else []

    def watch(self, paths: Iterable[str | Path] | None = None, **options: Any) -> Any:
        """Watch the loaded plugins' sources (or ``paths``). Returns once armed: a save made right
        after it returns is seen. Options go to ``Watcher`` (debounce, step, settle, applier, source)."""
        if self._watcher is not None:
            self._watcher.stop()
        self._watcher = Watcher(self, paths=[str(p) for p in paths] if paths else None, **options)
        self._watcher.start()
        self.emit("watch_started", None, paths=self._watcher.paths)
        return self._watcher

    async def awatch(self, paths: Iterable[str | Path] | None = None, **options: Any) -> Any:
        return self.watch(paths, **options)

    async def aunwatch(self) -> None:
        self.unwatch()

    async def aapply_pending(self, timeout: float = 5.0, settle: float = 0.02) -> list[ReloadResult]:
        """Like ``apply_pending``, but the settle wait yields to the loop and hooks run on it."""
        pending = self.registry.pending_files()
        for pause in Settle(pending, settle, self.broken_grace, timeout).pauses():
            await asyncio.sleep(pause)
        return await self.aapply_changes(pending) if pending else []

    def unwatch(self) -> None:
        w, self._watcher = self._watcher, None
        if w is not None:
            w.stop()
            self.emit("watch_stopped", None)

    @property
    def watcher(self) -> Any:
        return self._watcher

    @property
    def watching(self) -> bool:
        return self._watcher is not None and self._watcher.running

    @property
    def watched_paths(self) -> list[str]:
        return list(self._watcher.paths) if self._watcher is not None else []

    def watch_roots(self) -> list[str]:
        """Folders holding loaded plugins' sources (watched by default)."""
        roots = {r.root for r in self.registry.values() if r.root}
        return sorted(roots)

    # ----------------------------------------------------------------- teardown
    def close(self) -> None:
        """Stop watching, stop and unload everything (dependants first), stop the hook loop."""
        self.unwatch()
        for name in self.registry.shutdown_order():
            try:
                self.unload(name)
            except Exception:
                log.exception("flx_ipy: unloading %s during close failed", name)
        self._hook_loop.close()
        if self.audit is not None:
            self.audit.close()

    # ----------------------------------------------------------------- revisions & metrics
    def history(self, name: str) -> list[Revision]:
        """``name``'s revisions, oldest first (the event log is ``pm.events.history(n)``)."""
        if not isinstance(name, str):
            raise TypeError("pm.history(name) lists a plugin's revisions; the event log is pm.events.history(n)")
        return self.revisions.history(name)

    def rollback(self, name: str, to: int | None = None) -> ReloadResult:
        """Run revision ``to``'s code again (default: the one before the current), as a new
        revision through the reload transaction; state kept, files on disk untouched."""
        return self._run(rollback_steps(self, name, to))

    async def arollback(self, name: str, to: int | None = None) -> ReloadResult:
        return await self._arun(rollback_steps(self, name, to))

    def metrics(self) -> dict[str, dict[str, Any]]:
        """Per plugin: hook call counts and durations per hook, reload outcomes and durations."""
        return dict(sorted(self.hook_metrics.snapshot(also=list(self.registry)).items()))

    def __repr__(self) -> str:
        states = ", ".join(f"{n}={r.status}" for n, r in self.registry.items())
        return f"<PluginManager {len(self.registry)} plugins: {states or 'none'}>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """``display(pm)`` in Jupyter: whatever the host layer registered with ``set_rich_display``
        (``flx_ipy`` registers its dashboard), else the ``repr``."""
        if _rich_display is None:
            return {"text/plain": repr(self)}
        return _rich_display(self, include, exclude)


#: events that make a revision, and the revision's reason
_REVISION_KINDS = {"loaded": "load", "reloaded": "reload"}

_default: PluginManager | None = None
_default_lock = threading.Lock()


def get_manager() -> PluginManager:
    """The process's (kernel's) one manager, created on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = PluginManager()
        return _default


def _set_default(pm: PluginManager | None) -> None:
    global _default
    with _default_lock:
        _default = pm
