"""One DOM-free model of the plugin manager for every UI (side panel, widgets dashboard).

A UI listens with :meth:`UIState.listen` and receives, in order and never interleaved, one
``snapshot`` message (the whole state) and then one ``delta`` message per manager event —
exactly the messages of :mod:`flx_ipy.protocol`, so the lab bridge forwards them to its comm
unchanged and the ipywidgets dashboard folds the same stream.

Rows are read from the manager's records when a manager is attached (the records are the
truth; events are published after the manager's lock is released, so a record read in a
subscriber is settled). Without a manager (a UI fed a recorded event stream, or a test),
rows are folded from the events alone with the same result for the common transitions.

Pure Python: imports neither IPython, ipywidgets nor comm, and is tested without a kernel.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, cast

from . import protocol, wording
from ._version import __version__
from .protocol import (
    DeltaMsg,
    EventView,
    HealthView,
    IsolationView,
    LifecycleName,
    MetricsView,
    PluginView,
    ReloadView,
    RevisionView,
    SignatureView,
    StateView,
    WatcherView,
)

Listener = Callable[[Any], None]  # receives SnapshotMsg then DeltaMsg, ...

#: Events that change no row and no watcher: they only enter the log.
_LOG_ONLY = frozenset({"discovered", "dependency_reloaded", "operation_failed", "audit_failed"})
#: Events about the watcher, not a plugin
_WATCHER = frozenset({"watch_started", "watch_stopped", "saves_waiting"})


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def health_view(health: Any) -> HealthView | None:
    """A manager ``HealthStatus`` (or its dict) as the protocol's view; ``None`` if unchecked."""
    if health is None:
        return None
    status = str(_get(health, "status", "unknown"))
    if status not in ("healthy", "degraded", "unhealthy", "unknown"):
        status = "unknown"
    checked = _get(health, "checked_at")
    return HealthView(status=cast(Any, status), message=str(_get(health, "message", "") or ""),
                      checked_at=float(checked) if checked is not None else None)


def reload_view(result: Any) -> ReloadView | None:
    """A ``ReloadResult`` as the protocol's view (duration in ms, finish time in epoch s)."""
    if result is None:
        return None
    duration = _get(result, "duration")
    finished = _get(result, "finished_at")
    error = _get(result, "error")
    ok = bool(_get(result, "ok", False))
    notes = list(_get(result, "notes", None) or [])
    # a result that re-ran nothing but says why (a kept failure cleared) shows that, not "ok in 0 ms"
    note = str(notes[0]) if ok and notes and not _get(result, "modules", None) else None
    return ReloadView(
        ok=ok,
        rolled_back=bool(_get(result, "rolled_back", False)),
        error=str(error) if error else None,
        duration_ms=round(float(duration) * 1000, 3) if duration is not None else None,
        finished_at=float(finished) if finished else None,
        note=note,
    )


def plugin_view(record: Any, manager: Any = None, metrics: Mapping[str, Any] | None = None) -> PluginView:
    """A manager ``PluginRecord`` as one row of the UI; with ``manager``, also its kept revisions
    and (from ``metrics``, one ``pm.metrics()`` for many rows, else asked here) its timings."""
    md = _get(record, "metadata")
    name = str(_get(record, "name", None) or _get(md, "name", "?"))
    error = _get(record, "error")
    return PluginView(
        name=name,
        version=str(_get(md, "version", "") or _get(record, "version", "") or ""),
        description=str(_get(md, "description", "") or ""),
        source=str(_get(record, "source", "") or ""),
        state=cast(LifecycleName, str(_get(record, "status", "loaded"))),
        health=health_view(_get(record, "health")),
        last_reload=reload_view(_get(record, "last_reload")),
        error=str(error) if error else None,
        requires=[str(r) for r in (_get(md, "requires", ()) or ())],
        capabilities=[str(c) for c in (_get(md, "capabilities", ()) or ())],
        signature=signature_view(_get(record, "signature")),
        isolation=isolation_view(_get(record, "worker")),
        revisions=revision_views(manager, name),
        metrics=metrics_view(metrics.get(name) if metrics is not None else _plugin_metrics(manager, name))
        if manager is not None else None,
    )


def _plugin_metrics(manager: Any, name: str) -> Mapping[str, Any] | None:
    """One plugin's ``pm.metrics()`` entry, without formatting the others' (one row per event)."""
    one = getattr(getattr(manager, "hook_metrics", None), "for_plugin", None)
    if callable(one):
        try:
            return one(name)  # type: ignore[no-any-return]
        except Exception:
            return None
    return _metrics(manager).get(name)


def _metrics(manager: Any) -> Mapping[str, Any]:
    read = getattr(manager, "metrics", None)
    try:
        return read() if callable(read) else {}
    except Exception:  # a UI must draw even if the figures cannot be read
        return {}


def revision_views(manager: Any, name: str) -> list[RevisionView]:
    """``pm.history(name)`` as the protocol's views (empty without a manager or revisions)."""
    history = getattr(manager, "history", None)
    if history is None:
        return []
    try:
        revs = list(history(name))
    except Exception:  # never loaded, or a manager without revisions
        return []
    out = []
    for i, rev in enumerate(revs):
        d = rev.to_dict() if hasattr(rev, "to_dict") else dict(rev)
        of = d.get("rollback_of")
        out.append(RevisionView(revision=int(d["revision"]), version=str(d.get("version") or ""),
                                reason=str(d.get("reason") or ""), time=float(d.get("time") or 0.0),
                                code_sha256=str(d.get("code_sha256") or "")[:12],
                                rollback_of=int(of) if of is not None else None, current=i == len(revs) - 1))
    return out


def _ms_or_none(seconds: Any) -> float | None:
    return round(float(seconds) * 1000, 3) if isinstance(seconds, (int, float)) else None


def metrics_view(entry: Mapping[str, Any] | None) -> MetricsView | None:
    """One plugin's ``pm.metrics()`` entry as the row's figures."""
    if entry is None:
        return None
    hooks = entry.get("hooks") or {}
    slowest = entry.get("slowest_hook")
    top = hooks.get(slowest) if slowest else None
    reloads = entry.get("reloads") or {}
    count = int(reloads.get("count") or 0)
    return MetricsView(
        slowest_hook=str(slowest) if slowest else None,
        slowest_hook_max_ms=_ms_or_none(top.get("max")) if top else None,
        slowest_hook_mean_ms=_ms_or_none(top.get("mean")) if top else None,
        hook_calls=sum(int(h.get("count") or 0) for h in hooks.values()),
        hook_errors=sum(int(h.get("errors") or 0) for h in hooks.values()),
        reloads=count,
        reloads_failed=int(reloads.get("rolled_back") or 0) + int(reloads.get("failed") or 0),
        reload_last_ms=_ms_or_none(reloads.get("last_duration")) if count else None,
        reload_mean_ms=_ms_or_none(reloads.get("mean_duration")) if count else None,
        reload_max_ms=_ms_or_none(reloads.get("max_duration")) if count else None,
    )


def signature_view(sig: Any) -> SignatureView | None:
    if sig is None:
        return None
    return SignatureView(status=str(_get(sig, "status", "unsigned")), signer=_get(sig, "signer"),
                         files=[str(f) for f in (_get(sig, "files", ()) or ())])


def isolation_view(worker: Any) -> IsolationView | None:
    """An isolated plugin's worker (``record.worker``) as the protocol's view."""
    if worker is None:
        return None
    d = worker.to_dict() if hasattr(worker, "to_dict") else dict(worker)
    crash = d.get("last_crash") or {}
    return IsolationView(pid=d.get("pid"), state=str(d.get("state", "")), enforced=list(d.get("enforced", [])),
                         unavailable=dict(d.get("unavailable", {})), rss_mb=d.get("rss_mb"),
                         cpu_seconds=d.get("cpu_seconds"), crashes=int(d.get("crashes", 0)),
                         restarts=int(d.get("restarts", 0)), last_crash=crash.get("reason"),
                         last_crash_at=crash.get("time"))


def _ms(seconds: Any) -> str:
    try:
        ms = float(seconds) * 1000
    except (TypeError, ValueError):
        return ""
    return f" in {ms:.1f} ms" if ms < 10 else f" in {ms:.0f} ms"


def summarize(kind: str, plugin: str | None, details: Mapping[str, Any]) -> str:
    """One human line per event: the panel's and the dashboard's event log, ``%plugin log`` and
    the status line all say it this way (phrases from :mod:`flx_ipy.wording`)."""
    who = plugin or "flx_ipy"
    err = details.get("error")
    phase = details.get("phase")
    if kind == "loaded":
        version = details.get("version")
        return f"{who} {version} loaded" if version else f"{who} loaded"
    if kind == "failed":
        text = str(err or "")
        if phase and text.startswith(f"{phase} failed"):
            return f"{who} {text}"  # the kept error already says what failed
        return f"{who} " + wording.failure_text(None, text or None, details.get("where"))
    if kind == "reloading":
        return f"{who} reloading…"
    if kind == "reloaded":
        version = details.get("version")
        prev = details.get("previous_version")
        if prev and version and prev != version:
            change = f" (from {prev} to {version})"
        elif version:
            change = f" (still {version})"
        else:
            change = ""
        return f"{who} reloaded{_ms(details.get('duration'))}{change}"
    if kind == "reload_failed":
        if details.get("message"):
            return f"{who} {details['message']}"  # the row's kept error, word for word
        return f"{who} " + wording.failure_text(phase, err, details.get("where"), reload=True,
                                                rolled_back=bool(details.get("rolled_back")))
    if kind == "error_cleared":
        return f"{who}: error cleared — {details.get('reason') or 'fixed'}"
    if kind == "saves_waiting":
        count = int(details.get("count") or 0)
        return wording.waiting_text(count) if count else "waiting saves applied"
    if kind == "health_changed":
        message = details.get("message")
        return f"{who} health: {details.get('status', 'unknown')}" + (f" — {message}" if message else "")
    if kind == "discovered":
        return f"discovered {who}" + (f" (error: {err})" if err else "")
    if kind == "dependency_reloaded":
        return f"{who}: dependency {details.get('dependency', '?')} reloaded"
    if kind == "installed":  # flx_ipy.registry: a plugin's distribution installed into this process
        version, prev, dist = details.get("version"), details.get("previous"), details.get("distribution")
        extra = [f"from {dist}"] if dist and dist != who else []
        extra += [f"was {prev}"] if prev and prev != version else []
        head = f"{who} {version} installed" if version else f"{who} installed"
        return head + (f" ({', '.join(extra)})" if extra else "")
    if kind == "install_failed":
        return f"{who} install failed" + (f": {err}" if err else "")
    if kind == "watch_started":
        paths = details.get("paths") or []
        return f"watching {len(paths)} path{'s' if len(paths) != 1 else ''}"
    if kind == "watch_stopped":
        return "stopped watching"
    if kind == "signature_checked":
        status = details.get("status", "?")
        files = details.get("files") or []
        by = f" by {details['signer']}" if details.get("signer") and status == "signed" else ""
        what = f" ({', '.join(files)})" if files else ""
        verdict = "" if details.get("accepted", True) else " — refused"
        return f"{who}: signature {status}{by}{what}{verdict}"
    if kind == "operation_failed":
        return f"{who}: {details.get('operation', 'operation')} refused" + (f": {err}" if err else "")
    if kind == "audit_failed":
        return f"audit log not written: {err}"
    if kind == "crashed":
        return f"{who}'s worker crashed: {details.get('reason', 'unknown')}"
    if kind == "restarted":
        age = details.get("state_age")
        kept = f" with its state from {age:.1f} s before" if isinstance(age, (int, float)) else ""
        return f"{who} restarted{kept}"
    return f"{who} {kind}"


def event_view(event: Any) -> EventView:
    """A manager ``Event`` (or its ``to_dict()``) as one log line of the UI."""
    data = event.to_dict() if hasattr(event, "to_dict") else dict(event)
    details = data.get("details") or {}
    kind, plugin = str(data.get("kind")), data.get("plugin")
    return EventView(seq=int(data.get("seq") or 0), kind=kind, plugin=plugin,
                     time=float(data.get("time") or 0.0), summary=summarize(kind, plugin, details),
                     details=dict(details))


#: the actions a UI button can ask for, per plugin
ACTIONS = ("start", "stop", "reload", "unload", "rollback")


def run_action(manager: Any, action: str, name: str, origin: str = "widget", *,
               revision: int | None = None) -> tuple[bool, str]:
    """What a UI's start/stop/reload/unload/rollback button does, for the dashboard and the side
    panel alike; returns ``(ok, one line)`` and never raises (flx_ipy's errors already say what
    to do). ``origin`` is what the audit log records (``"widget"``, ``"labextension"``);
    ``revision`` is the rollback's target (``None``: the one before the current)."""
    from .core.origin import origin_scope

    with origin_scope(origin):
        return _run_action(manager, action, name, revision)


def _run_action(manager: Any, action: str, name: str, revision: int | None = None) -> tuple[bool, str]:
    try:
        if action == "rollback":
            result = manager.rollback(name, to=revision)
            return bool(getattr(result, "ok", True)), str(result.summary() if hasattr(result, "summary") else result)
        if action == "start":
            manager.start(name)
            manager.health(name)  # so the row shows health as of now
            return True, f"{name} started"
        if action == "stop":
            manager.stop(name)
            return True, f"{name} stopped"
        if action == "unload":
            manager.unload(name)
            return True, f"{name} unloaded"
        if action == "reload":
            result = manager.reload(name)
            return bool(getattr(result, "ok", True)), str(result.summary() if hasattr(result, "summary") else result)
        return False, f"flx_ipy: unknown action {action!r}"
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        return False, f"{action} {name} failed: {first}"


class UIState:
    """The manager as UIs see it: a snapshot, then a delta per event, to every listener.

    ``UIState(pm).attach()`` subscribes to the manager's events; ``detach()`` stops. Without a
    manager, feed events to :meth:`apply` yourself.
    """

    def __init__(self, manager: Any = None, *, max_events: int = 50, flx_version: str = __version__):
        self.manager = manager
        self.max_events = max_events
        self.flx_version = flx_version
        self._lock = threading.RLock()
        self._rows: dict[str, PluginView] = {}
        self._watcher = WatcherView(watching=False, paths=[], saves_waiting=0)
        self._events: deque[EventView] = deque(maxlen=max_events)
        self._before_reload: dict[str, LifecycleName] = {}
        self._seq = 0
        self._listeners: list[Listener] = []
        self._unsubscribe: Callable[[], None] | None = None
        if manager is not None:
            self._load_from_manager()

    # --- wiring ------------------------------------------------------------------------------

    def attach(self) -> UIState:
        """Follow the manager's events (idempotent)."""
        if self.manager is not None and self._unsubscribe is None:
            from .health_poll import after_rounds

            stop_events = self.manager.subscribe(self.apply)
            stop_rounds = after_rounds(lambda pm: self.refresh() if pm is self.manager else None)

            def unsubscribe() -> None:
                stop_events()
                stop_rounds()

            self._unsubscribe = unsubscribe
            self._load_from_manager()  # events up to now, deduplicated by seq in apply()
        return self

    def detach(self) -> None:
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
        with self._lock:
            self._listeners.clear()

    @property
    def attached(self) -> bool:
        return self._unsubscribe is not None

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold back deltas (for a sender that must order its own message among them)."""
        with self._lock:
            yield

    def listen(self, listener: Listener, *, snapshot: bool = True) -> Callable[[], None]:
        """Send ``listener`` a snapshot now, then every delta; returns the function to stop.

        The snapshot and the deltas come under one lock, so no delta is lost or arrives before
        the snapshot, whichever thread the manager's events come from.
        """
        with self._lock:
            if snapshot:
                listener(protocol.snapshot(self.snapshot()))
            self._listeners.append(listener)

        def stop() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return stop

    # --- reading -----------------------------------------------------------------------------

    @property
    def seq(self) -> int:
        return self._seq

    def snapshot(self) -> StateView:
        """The whole state now (rows re-read from the manager if there is one)."""
        with self._lock:
            if self.manager is not None:
                self._rows = self._manager_rows()
                self._watcher = self._manager_watcher()
            return StateView(
                seq=self._seq,
                plugins=[dict(self._rows[n]) for n in sorted(self._rows)],  # type: ignore[misc]
                watcher=self._watcher_copy(),
                events=list(self._events),
                flx_version=self.flx_version,
            )

    def plugin(self, name: str) -> PluginView | None:
        with self._lock:
            return self._rows.get(name)

    # --- folding events ----------------------------------------------------------------------

    def apply(self, event: Any) -> DeltaMsg | None:
        """Fold one manager event; returns the delta sent to listeners (``None`` if a repeat)."""
        ev = event_view(event)
        with self._lock:
            if ev["seq"] and ev["seq"] <= self._seq:
                return None  # already folded (replayed history, or a late duplicate)
            self._seq = ev["seq"] or self._seq + 1
            self._events.append(ev)
            upsert, remove, watcher = self._fold(ev)
            delta = protocol.delta(self._seq, ev, upsert, remove, watcher)
            for listener in list(self._listeners):
                try:
                    listener(delta)
                except Exception:  # one broken UI must not starve the others
                    import logging

                    logging.getLogger("flx_ipy").exception("flx_ipy: UI listener %r raised", listener)
            return delta

    def _fold(self, ev: EventView) -> tuple[list[PluginView], list[str], WatcherView | None]:
        kind, name, details = ev["kind"], ev["plugin"], ev["details"]
        if kind in _WATCHER:
            waiting = self._watcher["saves_waiting"]
            if kind == "saves_waiting":
                waiting = max(0, int(details.get("count") or 0))
            elif kind == "watch_stopped":
                waiting = 0
            if self.manager is not None:
                self._watcher = self._manager_watcher(waiting)
            elif kind == "watch_started":
                self._watcher = WatcherView(watching=True, paths=[str(p) for p in details.get("paths") or []],
                                            saves_waiting=waiting)
            elif kind == "watch_stopped":
                self._watcher = WatcherView(watching=False, paths=[], saves_waiting=0)
            else:
                self._watcher = WatcherView(watching=self._watcher["watching"], paths=list(self._watcher["paths"]),
                                            saves_waiting=waiting)
            return [], [], self._watcher_copy()
        if name is None or kind in _LOG_ONLY:
            return [], [], None
        if self.manager is not None:
            record = self.manager.plugins.get(name)
            if record is None:
                return ([], [name], None) if self._rows.pop(name, None) is not None else ([], [], None)
            row = plugin_view(record, self.manager)
            self._rows[name] = row
            return [row], [], None
        return self._fold_without_manager(kind, name, details, ev["time"])

    def _fold_without_manager(self, kind: str, name: str, details: Mapping[str, Any],
                              when: float) -> tuple[list[PluginView], list[str], WatcherView | None]:
        if kind == "unloaded":
            return ([], [name], None) if self._rows.pop(name, None) is not None else ([], [], None)
        row = self._rows.get(name)
        if row is None:
            row = PluginView(name=name, version=str(details.get("version") or ""), description="",
                             source=str(details.get("source") or ""), state="loaded", health=None,
                             last_reload=None, error=None, requires=[], capabilities=[], signature=None,
                             isolation=None, revisions=[], metrics=None)
        else:
            row = PluginView(**row)
        if details.get("version"):
            row["version"] = str(details["version"])
        states: dict[str, LifecycleName] = {
            "loaded": "loaded", "initialized": "initialized", "started": "running", "stopped": "stopped",
        }
        if kind in states:
            row["state"] = states[kind]
            row["error"] = None
            # a verdict describes one run (core.health_rules): a new state forgets it
            row["health"] = None if kind == "started" else health_view(
                {"status": "unknown", "message": f"not running ({states[kind]})", "checked_at": when})
        elif kind == "failed":
            row["state"] = "failed"
            row["error"] = str(details.get("error") or "failed")
            row["health"] = health_view({"status": "unhealthy", "message": row["error"], "checked_at": when})
        elif kind == "error_cleared":
            row["error"] = None
            row["last_reload"] = ReloadView(ok=True, rolled_back=False, error=None, duration_ms=None,
                                            finished_at=when, note=str(details.get("reason") or "") or None)
        elif kind == "reloading":
            self._before_reload[name] = row["state"]
            row["state"] = "reloading"
        elif kind == "reloaded":
            row["state"] = self._before_reload.pop(name, "running")
            row["error"] = None
            row["last_reload"] = ReloadView(
                ok=True, rolled_back=False, error=None,
                duration_ms=round(float(details["duration"]) * 1000, 3) if details.get("duration") is not None
                else None,
                finished_at=when, note=None)
        elif kind == "reload_failed":
            fallback: LifecycleName = row["state"] if row["state"] != "reloading" else "running"
            row["state"] = self._before_reload.pop(name, fallback)
            error = str(details.get("error") or "reload failed")
            row["error"] = error
            row["last_reload"] = ReloadView(ok=False, rolled_back=bool(details.get("rolled_back")),
                                            error=error, duration_ms=None, finished_at=when, note=None)
        elif kind == "health_changed":
            row["health"] = health_view({"status": details.get("status", "unknown"),
                                         "message": details.get("message", ""), "checked_at": when})
        self._rows[name] = row
        return [row], [], None

    def refresh(self) -> DeltaMsg | None:
        """Re-read the rows whose figures move without an event (worker RSS/CPU, hook timings)
        and send listeners one delta with the changed rows: ``event`` None, ``seq`` unchanged.
        Called after each background health round and by a UI's refresh; ``None`` if nothing moved."""
        if self.manager is None:
            return None
        with self._lock:
            rows = self._manager_rows()
            changed = [row for name, row in sorted(rows.items()) if self._rows.get(name) != row]
            gone = [name for name in self._rows if name not in rows]
            self._rows = rows
            if not changed and not gone:
                return None
            delta = protocol.delta(self._seq, None, changed, gone, None)
            for listener in list(self._listeners):
                try:
                    listener(delta)
                except Exception:
                    import logging

                    logging.getLogger("flx_ipy").exception("flx_ipy: UI listener %r raised", listener)
            return delta

    # --- manager helpers ---------------------------------------------------------------------

    def _manager_rows(self) -> dict[str, PluginView]:
        pm = self.manager
        metrics = _metrics(pm)
        return {name: plugin_view(rec, pm, metrics) for name, rec in pm.plugins.items()}

    def _manager_watcher(self, waiting: int | None = None) -> WatcherView:
        pm = self.manager
        watching = bool(getattr(pm, "watching", False))
        if waiting is None:
            waiting = self._watcher["saves_waiting"] if hasattr(self, "_watcher") else 0
        return WatcherView(watching=watching,
                           paths=[str(p) for p in (getattr(pm, "watched_paths", None) or [])],
                           saves_waiting=waiting if watching else 0)

    def _watcher_copy(self) -> WatcherView:
        w = self._watcher
        return WatcherView(watching=w["watching"], paths=list(w["paths"]), saves_waiting=w["saves_waiting"])

    def _load_from_manager(self) -> None:
        pm = self.manager
        events = getattr(pm, "events", None)
        history = events.history(self.max_events) if events is not None else []
        with self._lock:
            for ev in history:
                view = event_view(ev)
                if view["seq"] > self._seq:
                    self._events.append(view)
                    self._seq = view["seq"]
            self._rows = self._manager_rows()
            # a UI attaching while a cell holds saves back learns the count from the history
            last = next((e for e in reversed(history) if e.kind in ("saves_waiting", "watch_stopped")), None)
            waiting = int(last.details.get("count") or 0) if last is not None and last.kind == "saves_waiting" else 0
            self._watcher = self._manager_watcher(waiting)
