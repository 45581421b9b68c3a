"""The kernel's side of an isolated plugin: its worker, its checkpoints, its restarts.

``rec.worker`` is an ``IsolatedRuntime``. Every hook call passes the manager's hook-call seam
(``pm.hooks``); for an isolated plugin the runner there (``runner.py``) hands it
``runtime.hook(name)``, which runs the step in the worker's own ``PluginManager``. Reloads go
to the worker too, which runs the very same reload transaction and returns its
``ReloadResult`` as data.

Crashes: the monitor thread notices the worker's death on its pidfd; a helper thread emits
``crashed`` (with the reason), starts a new worker, loads the plugin, restores the last good
checkpoint (the last successful ``save_state`` — or the plain-data attributes — taken after
start, after every reload and about a second after calls), starts it if it was meant to run,
and emits ``restarted`` with the checkpoint's age. More than 3 crashes in 10 minutes: ``failed``
with reason ``crash-loop``.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import (
    FlxError,
    InvalidStateError,
    PluginCallError,
    PluginCrashedError,
    PluginError,
    PluginLoadError,
)
from ..files import read, record_run, source_hashes
from ..registry import PluginRecord
from ..steps import Steps
from ..trust import gate_load, gate_reload, undo_reload_pins
from ..types import LifecycleState, PluginMetadata, PluginState, ReloadResult
from . import runner, static, supervise
from .host import WorkerHost
from .process import RemoteFailure, WorkerGone, WorkerProcess, take_worker
from .protocol import NotPlainData
from .proxy import PluginProxy, RemoteMethod
from .remote import remote_error
from .sandbox import Policy
from .sandbox.cgroup import MemoryCgroup
from .supervise import pins_for

log = logging.getLogger("flx_ipy")
S = LifecycleState
LIMIT_KEYS = ("memory_mb", "cpu_seconds", "open_files", "file_mb", "call_timeout")
START_TIMEOUT = 60.0


def validate_limits(limits: Mapping[str, Any] | None) -> dict[str, Any]:
    """Limits as numbers; a clear one-line error (and nothing started) for anything else."""
    out: dict[str, Any] = {}
    for k, v in dict(limits or {}).items():
        if k not in LIMIT_KEYS:
            raise PluginError(f"unknown limit {k!r}; known limits: {', '.join(LIMIT_KEYS)}")
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise PluginError(f"limit {k} must be a positive number, got {v!r}")
        out[k] = v
    return out


def data_dir_for(pm: WorkerHost, name: str) -> Path:
    base = pm.data_root if pm.data_root else Path(tempfile.gettempdir()) / "flx_ipy"
    return Path(base) / name


class IsolatedRuntime:
    """One isolated plugin's worker and everything the kernel keeps about it (``rec.worker``)."""

    def __init__(self, pm: WorkerHost, name: str, sp: static.StaticPlugin,
                 config: Mapping[str, Any] | None, limits: dict[str, Any]) -> None:
        #: the manager it belongs to (weak: a runtime never keeps a dropped manager alive)
        self.manager = weakref.ref(pm)
        self.name = name
        self.target = sp.target
        #: the folder the plugin's source was found in, read by the kernel itself: what the worker
        #: reports about its files is only believed inside it (a worker cannot make the kernel
        #: watch "/" or mark another plugin's file as unchanged)
        self.static_dir = os.path.normcase(os.path.dirname(os.path.abspath(sp.file)))
        self.config = dict(config or {})
        self.limits = dict(limits)
        sandbox_limits = {k: v for k, v in limits.items() if k != "call_timeout"}
        self.policy = Policy.from_capabilities(list(sp.metadata.capabilities), str(data_dir_for(pm, name)),
                                               sandbox_limits)
        self.call_timeout: float | None = float(limits.get("call_timeout") or pm.hook_timeout or 30.0)
        #: seconds after a call before the state is checkpointed (well inside "about a second")
        self.checkpoint_delay = 0.5
        self.proc: WorkerProcess | None = None
        self.cgroup: Any = None
        self.enforced: list[str] = []
        self.unavailable: dict[str, str] = {}
        self.details: dict[str, Any] = {}
        self.methods: frozenset[str] = frozenset()
        self.bound: dict[str, Any] = {}
        self.checkpoint: dict[str, Any] | None = None
        #: the source bytes of the version that last loaded or reloaded fine (restarts run it)
        self.good_sources: dict[str, bytes] = {}
        #: the bytes the kernel's signature check verified (``loader.pin`` in the worker): the
        #: bytes verified are the bytes that run, as in-process (``trust.gate_load``)
        self.pins: dict[str, Any] | None = None
        self.crash_times: deque[float] = deque()
        self.crashes = 0
        self.restarts = 0
        self.last_crash: dict[str, Any] | None = None
        self.state = "starting"  # running | restarting | failed | closed
        self.started_in: float | None = None
        #: set while a worker serves the plugin (cleared during a restart: callers wait on it)
        self.ready = threading.Event()
        self._dirty = False
        #: set when every call so far is covered by a checkpoint (tests and tutorials wait on it)
        self.checkpointed = threading.Event()
        self._timer: threading.Timer | None = None
        self._timer_lock = threading.Lock()
        self.proxy = PluginProxy(self)

    # ------------------------------------------------------------------ what the UI shows
    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.alive else None

    def stats(self) -> dict[str, Any]:
        return self.proc.stats() if self.proc is not None else {"pid": None, "rss_mb": None, "cpu_seconds": None}

    def to_dict(self) -> dict[str, Any]:
        st = self.stats()
        return {"pid": self.pid, "state": self.state, "enforced": list(self.enforced),
                "unavailable": dict(self.unavailable), "rss_mb": st["rss_mb"], "cpu_seconds": st["cpu_seconds"],
                "limits": dict(self.limits), "capabilities": self.policy.to_dict(),
                "crashes": self.crashes, "restarts": self.restarts, "last_crash": self.last_crash,
                "checkpoint_time": self.checkpoint["time"] if self.checkpoint else None}

    def __repr__(self) -> str:
        return f"<worker {self.name} pid={self.pid} {self.state} enforced={self.enforced}>"

    # ------------------------------------------------------------------ starting a worker
    def spawn(self, *, ready: bool = True) -> dict[str, Any]:
        """Start a worker, sandbox it, load the plugin in it; returns the plugin's info."""
        t0 = time.perf_counter()
        self.ready.clear()
        cgroup, unavailable = None, {}
        mem = self.limits.get("memory_mb")
        if mem:
            try:  # headroom above the rlimit: Python sees MemoryError first, native code meets the ceiling
                cgroup = MemoryCgroup.create(self.name, int(mem * 1.25 + 32) << 20)
            except OSError as e:
                unavailable["cgroup"] = str(e)
        proc = take_worker(self._on_exit)
        in_cgroup = False
        if cgroup is not None:
            try:
                in_cgroup = cgroup.add(proc.pid)
            except OSError as e:
                unavailable["cgroup"] = str(e)
            if not in_cgroup:
                unavailable.setdefault("cgroup", "the worker did not read back as a member")
        setup = {"op": "setup", "target": self.target, "config": self.config, "policy": self.policy.to_dict(),
                 "sources": self.good_sources, "pins": self.pins,
                 "sys_path": [os.path.abspath(p) if p else os.getcwd() for p in sys.path], "cwd": os.getcwd()}
        try:
            reply = proc.first_reply(setup, START_TIMEOUT)
        except (WorkerGone, TimeoutError) as e:
            if cgroup is not None:
                cgroup.remove()
            raise PluginLoadError(f"{self.name}: the worker process died while starting ({e})", self.name,
                                  hint="run the plugin in-process to see its import error") from None
        sandbox = reply.get("sandbox") or (reply.get("value") or {}).get("sandbox") or {}
        if not reply.get("ok"):
            proc.close()
            if cgroup is not None:
                cgroup.remove()
            err = remote_error(self.name, reply, "")
            raise PluginLoadError(f"{self.name}: loading in the worker failed: {err}", self.name,
                                  hint="" if "load again" in str(err) else "fix the error and load again") from err
        self.proc, self.cgroup = proc, cgroup
        self.enforced = list(sandbox.get("enforced", [])) + (["cgroup"] if in_cgroup else [])
        self.unavailable = {**dict(sandbox.get("unavailable", {})), **unavailable}
        self.details = dict(sandbox.get("details", {}))
        info: dict[str, Any] = reply["value"]["plugin"]
        self._take_info(info)
        self.started_in = time.perf_counter() - t0
        if ready:
            self.state = "running"
            self.ready.set()
        return info

    def _take_info(self, info: Mapping[str, Any], good: bool = True) -> None:
        self.methods = frozenset(info.get("methods", ()))
        self.bound = {}
        if good and info.get("sources"):
            self.good_sources = {str(k): bytes(v) for k, v in dict(info["sources"]).items()}

    def apply_info(self, rec: PluginRecord, info: Mapping[str, Any], good: bool = True) -> None:
        """Mirror what the worker says about the plugin's code into the kernel's record."""
        self._take_info(info, good)
        root = self._believable_root(info.get("package_dir")) or self._believable_root(info.get("root"))
        root = root or self.static_dir
        others = {f for r in self._others(rec) for f in r.files}
        mine = {str(f) for f in info.get("files", ()) if self._inside(str(f), root) and str(f) not in others}
        rec.files = mine
        for f, h in dict(info.get("hashes", {})).items():
            if h and f in mine:
                source_hashes[f] = str(h)  # so a save that changes nothing is recognised in the kernel
        if good:  # the bytes the worker runs: what the kernel's revisions keep (a rollback sends them back)
            for f, data in dict(info.get("sources") or {}).items():
                if f in mine:
                    record_run(str(f), bytes(data))
        rec.root = root
        pkg = info.get("package_dir")
        rec.package_dir = root if pkg and self._believable_root(pkg) == root else None
        rec.failed_hashes = {str(f): str(h) for f, h in dict(info.get("failed_hashes", {})).items() if f in mine}
        try:
            rec.metadata = PluginMetadata(**info["metadata"])
        except Exception:
            pass

    def _believable_root(self, path: Any) -> str | None:
        """``path`` if it is the plugin's own folder or the package folder holding it."""
        if not isinstance(path, str) or not path:
            return None
        p = os.path.normcase(os.path.abspath(path))
        if p == self.static_dir:
            return p
        if self._inside(self.static_dir, p) and os.path.isfile(os.path.join(p, "__init__.py")) \
                and os.path.dirname(p) != p:
            return p
        return None

    @staticmethod
    def _inside(path: str, folder: str) -> bool:
        return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)

    def _others(self, rec: PluginRecord) -> list[PluginRecord]:
        pm = self.manager()
        return [r for r in (pm.registry.values() if pm is not None else ()) if r is not rec]

    # ------------------------------------------------------------------ calls
    def _current(self, timeout: float | None) -> WorkerProcess:
        if not self.ready.is_set() and not self.ready.wait(timeout):
            raise PluginCrashedError(f"{self.name}: its worker is not back after {timeout:g} s", self.name,
                                     reason="restart timed out")
        proc = self.proc
        if self.state in ("failed", "closed") or proc is None:
            why = (self.last_crash or {}).get("reason", self.state)
            raise PluginCrashedError(f"{self.name}: its worker is {self.state} ({why})", self.name,
                                     reason=self.state, hint=f"`%plugin unload {self.name}` then load it again")
        return proc

    def request(self, op: str, what: str = "", timeout: Any = "default", label: str = "", **fields: Any) -> Any:
        """``what`` prefixes the worker's error (``counter.bump() raised …``); lifecycle steps
        pass none, since the lifecycle says which hook raised; ``label`` names the call in
        crash and timeout messages."""
        t = self.call_timeout if timeout == "default" else timeout
        proc = self._current(t)
        label = label or what or op
        try:
            return proc.call(op, t, **fields)
        except RemoteFailure as f:
            if f.reply.get("type") == "PermissionError":  # for the log (and an audit trail)
                pm = self.manager()
                if pm is not None:
                    pm.emit("denied", self.name, call=label, error=str(f.reply.get("message")))
            raise remote_error(self.name, f.reply, what) from None
        except NotPlainData as e:
            raise TypeError(f"{label}: an argument of type {e.what} is not plain data "
                            "(JSON/MessagePack types: None, bool, int, float, str, bytes, list, dict)") from None
        except TimeoutError as e:
            raise PluginCrashedError(f"{self.name}: {label} did not return within {t:g} s; its worker was "
                                     "killed and is restarting", self.name, reason=str(e)) from None
        except WorkerGone as e:
            raise PluginCrashedError(f"{self.name}: its worker died during {label} ({e}); it is restarting",
                                     self.name, reason=str(e)) from None

    def call_method(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        value = self.request("call", f"{self.name}.{method}()", method=method, args=args, kwargs=kwargs)
        self._touched()
        return value

    def get_attribute(self, attr: str) -> Any:
        try:
            got = self.request("getattr", f"{self.name}.{attr}", attr=attr)
        except PluginCallError as e:
            if e.type_name == "AttributeError":
                raise AttributeError(f"{self.name} has no attribute {attr!r}") from None
            raise
        if got.get("callable"):
            return RemoteMethod(self, attr)
        return got.get("value")

    # ------------------------------------------------------------------ the hook seam
    def hook(self, hook: str) -> Callable[..., Any]:
        """The function the lifecycle calls for ``hook``: the step runs in the worker."""
        if hook == "initialize":
            def initialize(ctx: Any) -> None:
                self._revive(initialized=False)
                self.request("lifecycle", label="initialize()", step="initialize", config=ctx.config)
            return initialize
        if hook == "start":
            def start() -> None:
                self._revive(initialized=True)
                self.request("lifecycle", label="start()", step="start")
                self.checkpoint_now()
            return start
        if hook == "stop":
            def stop() -> None:
                got = self.request("lifecycle", label="stop()", step="stop") or {}
                if got.get("problem"):
                    raise PluginCallError(str(got["problem"]), self.name)
            return stop
        if hook == "health_check":
            return lambda: self.request("lifecycle", label="health_check()", step="health")
        if hook == "save_state":
            def save_state() -> PluginState:
                cp = self.checkpoint_now(raise_errors=True) or {}
                if cp.get("kind") != "save_state":
                    raise TypeError(f"{self.name} has no save_state")
                return PluginState.from_dict(cp["data"])
            return save_state
        return lambda *args: self.call_method(hook, args, {})

    def _revive(self, initialized: bool) -> dict[str, Any] | None:
        return supervise.revive(self, initialized)

    def retry_steps(self, pm: WorkerHost, rec: PluginRecord) -> Steps[ReloadResult]:
        return supervise.retry_steps(self, pm, rec)

    def state_summary(self) -> dict[str, Any]:
        return self.request("lifecycle", label="state", step="state")  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_now(self, raise_errors: bool = False) -> dict[str, Any] | None:
        try:
            cp = self.request("checkpoint", "save_state()")
            if not (isinstance(cp, dict) and cp.get("kind") in ("save_state", "attributes")
                    and isinstance(cp.get("data"), dict) and isinstance(cp.get("time"), (int, float))):
                raise PluginCallError(f"{self.name}: the worker's checkpoint is malformed", self.name)
        except Exception as e:
            if raise_errors:
                raise
            # a worker dying mid-checkpoint is reported as a crash already; anything else is news
            (log.debug if isinstance(e, PluginCrashedError) else log.warning)(
                "flx_ipy: %s: checkpoint failed, keeping the previous one: %s", self.name, e)
            return None
        self.checkpoint = cp
        return cp

    def _touched(self) -> None:
        self._dirty = True
        self.checkpointed.clear()
        if self._timer is None and self.checkpoint_delay is not None:
            with self._timer_lock:
                if self._timer is None:
                    t = threading.Timer(self.checkpoint_delay, self._debounced)
                    t.daemon = True
                    self._timer = t
                    t.start()

    def _debounced(self) -> None:
        self._timer = None
        if self._dirty and self.state == "running":
            self._dirty = False
            if self.checkpoint_now() is not None and not self._dirty:
                self.checkpointed.set()

    # ------------------------------------------------------------------ reload
    def reload_steps(self, pm: WorkerHost, rec: PluginRecord, *, force: bool,
                     paths: list[str] | None = None,
                     sources: Mapping[str, bytes] | None = None) -> Steps[ReloadResult]:
        """The reload transaction, run by the worker's manager; its result mirrored here.

        ``sources``: bytes to run instead of the files' (a rollback's kept revision). Under a
        signature policy the kernel checks the bytes first and sends exactly those, so the
        worker never re-reads a file between the check and the swap."""
        t0 = time.perf_counter()
        prev = rec.status
        gated, signature = False, None
        if pm.validator.source_checks:
            given = dict(sources) if sources else {f: data for f in sorted(rec.files)
                                                    if (data := read(f)) is not None}
            try:
                signature = gate_reload(pm, rec, given)
            except Exception as e:
                res = ReloadResult(plugin=rec.name, ok=False, error=str(e), phase="signature", rolled_back=True,
                                   duration=time.perf_counter() - t0, finished_at=time.time())
                rec.last_reload = res
                rec.error = f"reload failed in signature: {e}"
                pm.emit("reload_failed", rec.name, phase="signature", error=str(e), where=None, rolled_back=True)
                return res
            sources, gated = given, True
        rec.status = S.RELOADING
        pm.emit("reloading", rec.name, now=True, isolated=True)
        gate: dict[str, Any] = {"health_gate": bool(pm.health_gate), "health_timeout": pm.health_timeout}
        try:
            if gated:  # what the check pinned here is pinned in the worker too (its later imports)
                gate["pins"] = pins_for(rec)
            if sources:
                value = self.request("reload", "reload", force=force, sources=dict(sources), **gate)
            elif paths is not None:
                value = self.request("apply", "reload", paths=paths, force=force, **gate)
            else:
                value = self.request("reload", "reload", force=force, **gate)
        except (FlxError, TypeError) as e:
            if gated:
                undo_reload_pins(pm, rec)
            rec.status = prev
            res = ReloadResult(plugin=rec.name, ok=False, error=str(e), phase="worker",
                               duration=time.perf_counter() - t0, finished_at=time.time())
            rec.last_reload = res
            rec.error = f"reload failed in the worker: {e}"
            pm.emit("reload_failed", rec.name, phase="worker", error=str(e), where=None, rolled_back=False)
            return res
        info = value["info"]
        results = [ReloadResult(**r) for r in value["results"]]
        self.apply_info(rec, info, good=all(r.ok for r in results))
        try:
            rec.status = S(info["status"])
        except ValueError:
            rec.status = prev
        if not results:
            return ReloadResult(plugin=rec.name, ok=True, changed=False, duration=time.perf_counter() - t0)
        res = results[-1]
        res.duration = time.perf_counter() - t0
        rec.last_reload = res
        if res.ok:
            rec.reload_count += 1
            rec.error = rec.error_detail = None
            self.pins = pins_for(rec) if gated else None  # a restart imports what was verified, or the files
            if signature is not None:
                rec.signature = signature
            pm.emit("reloaded", rec.name, duration=res.duration, version=rec.version, modules=res.modules,
                     notes=list(res.notes), isolated=True)
            self.checkpoint_now()
        else:
            if gated:
                undo_reload_pins(pm, rec)
            rec.error = info.get("error") or f"reload failed in {res.phase}: {res.error}"
            rec.error_detail = res.traceback
            pm.emit("reload_failed", rec.name, phase=res.phase, error=res.error, where=res.where,
                     rolled_back=res.rolled_back)
        return res
        yield  # a generator: the worker runs the hooks

    # ------------------------------------------------------------------ crashes (supervise.py)
    def _on_exit(self, proc: WorkerProcess) -> None:
        supervise.on_exit(self, proc)

    # ------------------------------------------------------------------ teardown
    def close(self) -> None:
        self.state = "closed"
        t = self._timer
        if t is not None:
            t.cancel()
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.close()
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None
        self.ready.set()


# ---------------------------------------------------------------------- load
def load_steps(pm: WorkerHost, target: str, config: Mapping[str, Any] | None,
               limits: Mapping[str, Any] | None) -> Steps[PluginRecord]:
    """Load ``target`` into a new sandboxed worker; the kernel reads only its source text."""
    lim = validate_limits(limits)
    sp = static.resolve(pm, target)
    name = sp.metadata.name
    existing = pm.registry.get(name)
    if existing is not None:
        if existing.status != S.FAILED:
            if existing.worker is not None and existing.target == target:
                return existing  # loading the same isolated plugin again is a no-op
            raise InvalidStateError(f"a plugin named {name!r} is already loaded from {existing.source}", name,
                                    hint=f"`%plugin unload {name}` first, or rename one of them")
        raise InvalidStateError(f"{name} is loaded but failed ({existing.error})", name,
                                hint=f"`%plugin unload {name}`, then load it again")
    # the signature policy holds for isolated plugins too: checked here, before a worker starts
    signature = gate_load(pm, target, target, name)
    rt = IsolatedRuntime(pm, name, sp, config, lim)
    if signature is not None and signature.unit:
        rt.pins = pins_for(None, signature.unit)  # the worker imports the bytes just verified
    info = rt.spawn()
    rec = PluginRecord(name=name, target=target, metadata=sp.metadata, source=str(info.get("source") or sp.file),
                       instance=rt.proxy, config=dict(config or {}))
    rec.isolated = True
    rec.worker = rt
    rec.signature = signature
    rt.apply_info(rec, info)
    runner.install(pm)  # its hooks are routed to its worker at the hook-call seam
    pm.registry[name] = rec
    pm.registry.unloaded.discard(name)
    rt.checkpoint_now()
    pm.emit("loaded", name, version=rec.version, source=rec.source, isolated=True, pid=rt.pid,
             enforced=list(rt.enforced))
    return rec
    yield  # a generator, though loading calls no hook
