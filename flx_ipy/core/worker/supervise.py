"""Crashes of an isolated plugin's worker: notice, report, restart with state, give up.

The monitor thread (``process.Monitor``) calls ``on_exit`` when a worker's pidfd says it died;
everything slow happens on a helper thread: the ``crashed`` event with the reason, then, under
the manager's lock (an operation in progress finishes first), a new worker with the last good
code and checkpoint, and ``restarted``. More than ``CRASH_LOOP[0]`` crashes within
``CRASH_LOOP[1]`` seconds: ``failed`` with reason ``crash-loop``; an explicit start or a save
(``retry_steps``) gives it a fresh worker and a fresh window.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from .. import loader
from ..errors import InvalidStateError
from ..files import read
from ..registry import PluginRecord
from ..steps import Steps
from ..trust import gate_reload, unit_for_record
from ..types import LifecycleState, ReloadResult
from .host import WorkerHost
from .process import RemoteFailure, WorkerProcess
from .remote import remote_error

if TYPE_CHECKING:
    from .runtime import IsolatedRuntime

S = LifecycleState
CRASH_LOOP = (3, 600.0)  # more than 3 crashes within 600 s


def revive(rt: IsolatedRuntime, initialized: bool) -> dict[str, Any] | None:
    """An explicit start of a plugin that ran out of restarts (crash loop) gets a fresh
    worker and a fresh crash window, from the last good checkpoint (a fix, then start)."""
    if rt.state != "failed":
        return None
    rt.crash_times.clear()
    rt.spawn(ready=False)
    proc = rt.proc
    assert proc is not None
    try:
        info: dict[str, Any] = proc.call("restore", rt.call_timeout, checkpoint=rt.checkpoint,
                                         config=rt.config, initialize=initialized, start=False)
    except RemoteFailure as f:
        raise remote_error(rt.name, f.reply, "restore_state()") from None
    rt.state = "running"
    rt.ready.set()
    return info

def pins_for(rec: PluginRecord | None, unit: Any = None) -> dict[str, Any] | None:
    """What the kernel's signature check pinned for this plugin, to pin in its worker too."""
    unit = unit if unit is not None else (unit_for_record(rec) if rec is not None else None)
    if unit is None:
        return None
    files, strict = loader.pins_of(unit)
    return {"unit": str(unit), "files": files, "strict": strict} if files else None

def retry_steps(rt: IsolatedRuntime, pm: WorkerHost, rec: PluginRecord) -> Steps[ReloadResult]:
    """A save while the worker is out of restarts (a crash loop, or a restart that could
    not load the file): a fresh worker with the saved code and the last good state, started
    if it was meant to run — fix, save, running, as for an in-process plugin."""
    t0 = time.perf_counter()
    res = ReloadResult(plugin=rec.name, ok=True, modules=[rec.name])
    try:
        rt.good_sources = {}  # a save: run what is on disk now
        if pm.validator.source_checks:  # checked like any reload; the fresh worker imports those bytes
            signature = gate_reload(pm, rec, {f: data for f in sorted(rec.files) if (data := read(f)) is not None})
            rt.pins = pins_for(rec)
            if signature is not None:
                rec.signature = signature
        info = revive(rt, initialized=rec.initialized)
        if info is not None:
            rt.apply_info(rec, info)
        if rec.want_running:
            rt.request("lifecycle", label="start()", step="start")
        rec.status = S.RUNNING if rec.want_running else (S.INITIALIZED if rec.initialized else S.LOADED)
        rec.error = rec.error_detail = None
    except Exception as e:
        res.ok, res.phase, res.error = False, "retry", str(e)
        rec.error = f"retry failed: {e}"
        pm.emit("reload_failed", rec.name, phase="retry", error=str(e), where=None, rolled_back=False)
    res.duration = time.perf_counter() - t0
    res.finished_at = time.time()
    rec.last_reload = res
    if res.ok:
        pm.emit("reloaded", rec.name, duration=res.duration, version=rec.version, retried=True, isolated=True)
        rt.checkpoint_now()
    return res
    yield  # a generator: the worker runs the hooks

def on_exit(rt: IsolatedRuntime, proc: WorkerProcess) -> None:
    """Monitor thread: hand the work to a helper thread at once."""
    if proc is not rt.proc or rt.state == "closed":
        return
    rt.ready.clear()
    rt.state = "restarting"
    threading.Thread(target=after_crash, args=(rt, proc), name=f"flx_ipy-restart-{rt.name}",
                     daemon=True).start()

def after_crash(rt: IsolatedRuntime, proc: WorkerProcess) -> None:
    pm = rt.manager()
    if pm is None:
        return
    reason = proc.reason()
    if rt.cgroup is not None:
        if proc.returncode == -9 and not proc.kill_reason and rt.cgroup.oom_killed():
            reason = "out of memory (cgroup limit)"
        rt.cgroup.remove()
        rt.cgroup = None
    now = time.time()
    rt.crash_times.append(now)
    while rt.crash_times and now - rt.crash_times[0] > CRASH_LOOP[1]:
        rt.crash_times.popleft()
    rt.crashes += 1
    rt.last_crash = {"time": now, "reason": reason, "returncode": proc.returncode, "pid": proc.pid}
    pm.emit("crashed", rt.name, reason=reason, returncode=proc.returncode, pid=proc.pid,
             crashes_in_window=len(rt.crash_times))
    try:
        with pm.exclusive(timeout=max(60.0, (rt.call_timeout or 30.0) * 2)):
            rec = pm.registry.get(rt.name)
            if rec is None or rec.worker is not rt or rt.state == "closed":
                return
            if len(rt.crash_times) > CRASH_LOOP[0]:
                give_up(rt, pm, rec, f"crash-loop: its worker crashed {len(rt.crash_times)} times "
                                       f"in {CRASH_LOOP[1] / 60:g} minutes (last: {reason})", "crash-loop")
                return
            restart(rt, pm, rec)
    except InvalidStateError as e:  # the manager stayed busy: try once more later would hide it
        rec = pm.registry.get(rt.name)
        if rec is not None:
            give_up(rt, pm, rec, f"restart after crash failed: {e}", "restart-failed")

def give_up(rt: IsolatedRuntime, pm: WorkerHost, rec: PluginRecord, error: str, reason: str) -> None:
    rt.state = "failed"
    rec.status = S.FAILED
    rec.error = error
    pm.emit("failed", rec.name, phase=reason, reason=reason, error=error)
    rt.ready.set()  # callers waiting for a restart fail now, not after their timeout

def restart(rt: IsolatedRuntime, pm: WorkerHost, rec: PluginRecord) -> None:
    t0 = time.perf_counter()
    cp = rt.checkpoint
    try:
        rt.spawn(ready=False)
        rt.config = dict(rec.config)
        proc = rt.proc
        assert proc is not None
        info = proc.call("restore", rt.call_timeout, checkpoint=cp,
                         config={**pm.config.get(rec.name, {}), **rec.config},
                         initialize=rec.initialized, start=rec.want_running)
    except Exception as e:
        err = remote_error(rt.name, e.reply, "") if isinstance(e, RemoteFailure) else e
        give_up(rt, pm, rec, f"restart after crash failed: {type(err).__name__}: {err}", "restart-failed")
        return
    rt.apply_info(rec, info)
    rec.status = S.RUNNING if rec.want_running else (S.INITIALIZED if rec.initialized else S.LOADED)
    rec.error = None
    rt.restarts += 1
    rt.state = "running"
    rt.ready.set()
    age = (time.time() - cp["time"]) if cp else None
    pm.emit("restarted", rec.name, pid=rt.pid, state_age=age,
             restored=cp["kind"] if cp else None, duration=time.perf_counter() - t0,
             reason=(rt.last_crash or {}).get("reason"))
