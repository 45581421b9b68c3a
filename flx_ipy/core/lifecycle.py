"""Lifecycle operations, each written once as a generator of hook calls (see ``steps.py``).

``discovered → loaded → initialized → running ⇄ stopped → unloaded``, plus ``failed`` (error
kept) and the transient ``reloading``. An operation not allowed in the current state raises
``InvalidStateError`` before touching anything. Dependencies start before and stop after their
dependants. A failed start releases what the plugin registered, so it leaves no trace.

Why generators: the same operation must run synchronously (``pm.start``) and on the caller's
loop (``await pm.astart``), with ``def`` or ``async def`` hooks. An operation *yields* each hook
call it needs and the driver decides how to run it; the state machine exists once.

What an operation needs from a manager is the small ``Host`` protocol below, so this module
never imports the manager. The verbs the reload transaction shares (``hook_call``, ``fail``,
``start_one``, ``stop_one``, ``coerce_state``, ``plugin_modules``, ``module_files``) are public
here rather than reached into.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any, Protocol

from . import loader
from .context import PluginContext
from .discovery import Candidate
from .errors import (
    DependencyError,
    HookError,
    InvalidStateError,
    PluginLoadError,
    one_line,
    plugin_traceback,
)
from .files import module_file, modules_under, norm, remember_source
from .health_rules import without_check
from .registry import PluginRecord, Registry
from .steps import HookCall, Steps
from .trust import Trust, gate_load
from .types import Health, HealthStatus, LifecycleState, PluginState
from .validators import Validator

log = logging.getLogger("flx_ipy")
S = LifecycleState

__all__ = [
    "Host", "coerce_state", "fail", "has_hook", "health_steps", "hook_call", "initialize_steps",
    "load_steps", "module_files", "plugin_modules", "start_one", "start_steps", "state_steps",
    "stop_one", "stop_steps", "unload_steps",
]


class Host(Protocol):
    """What a lifecycle operation needs from the manager running it (``PluginManager`` is one)."""

    registry: Registry
    config: dict[str, dict[str, Any]]
    hook_timeout: float | None
    health_timeout: float
    #: how long another thread waits at a plugin handing over state while its stop() runs
    handover_grace: float
    data_root: Path | None
    #: the validation pipeline every load, reload and retry runs (a signature check joins it)
    validator: Validator
    #: a reload whose new code reports "unhealthy" is rolled back (revisions.health_gate_steps)
    health_gate: bool
    #: the signature policy and trust root (core/trust.py)
    trust: Trust

    @property
    def hook_thread_id(self) -> int | None:
        """The thread ``async def`` hooks run on for sync callers (the reload's guard lets it in)."""
        ...

    def record(self, name: str) -> PluginRecord: ...

    def resolve(self, target: str) -> tuple[str | None, Candidate | None]: ...

    def emit(self, kind: str, plugin: str | None = None, *, now: bool = False, **details: Any) -> None: ...


# ---------------------------------------------------------------------------- shared verbs
def fail(pm: Host, rec: PluginRecord, exc: BaseException, phase: str) -> None:
    """Mark ``rec`` failed with its error kept: ``%plugin list`` shows why, a save retries it."""
    rec.status = S.FAILED
    rec.exception = exc
    detail, where = plugin_traceback(exc, rec.files)
    rec.error = f"{phase} failed: {one_line(exc)}" + (f" at {where}" if where else "")
    rec.error_detail = detail
    pm.emit("failed", rec.name, phase=phase, error=rec.error, where=where)


def has_hook(obj: Any, name: str) -> bool:
    """Every hook is optional: a plugin without ``stop`` is stopped by doing nothing."""
    return callable(getattr(obj, name, None))


def hook_call(pm: Host, rec: PluginRecord, hook: str, *args: Any, timeout: Any = "default",
              isolate: bool = False) -> HookCall:
    """The request to call one of the plugin's hooks; the only place a ``HookCall`` is built, so a
    runtime that runs hooks elsewhere (a worker process) sees every call at one seam."""
    fn = getattr(rec.instance, hook)
    return HookCall(rec.name, hook, fn, args, pm.hook_timeout if timeout == "default" else timeout, isolate)


def module_files(rec: PluginRecord) -> set[str]:
    """The files a plugin runs: what the watcher routes and what a reload compares."""
    files = set()
    for mod in plugin_modules(rec):
        f = module_file(mod)
        if f is not None:
            files.add(f)
    return files


def plugin_modules(rec: PluginRecord) -> list[Any]:
    """The modules that belong to a plugin: its package's modules, or its one module (and the
    class's module when the class lives elsewhere)."""
    if rec.module is None:
        return []
    if rec.package_dir:
        mods = modules_under(rec.package_dir)
        return [mods[k] for k in sorted(mods)]
    cls_mod = sys.modules.get(rec.cls.__module__) if rec.cls is not None else None
    out = [rec.module]
    if cls_mod is not None and cls_mod is not rec.module:
        out.append(cls_mod)
    return out


def _package_dir(module: Any) -> str | None:
    """A plugin in a package owns every module of its top-level package folder."""
    name = module.__name__
    if name.startswith(loader.ALIAS_ROOT + "."):
        return None
    top = sys.modules.get(name.partition(".")[0])
    paths = getattr(top, "__path__", None) if top is not None else None
    if paths:
        p = list(paths)
        if len(p) == 1:
            return norm(p[0])
    return None


# ---------------------------------------------------------------------------- load
def load_steps(pm: Host, target: str, config: Any) -> Steps[PluginRecord]:
    """Import the plugin and register it as ``loaded``; no hook runs (``initialize`` waits for
    ``start``), so loading a plugin to look at it has no side effects beyond its import.

    Validation comes before anything is registered: a plugin that fails it leaves no record and
    no module behind (the modules its import added are forgotten). Loading the same class again
    is a no-op; a different plugin under a taken name is refused, naming where the other is from.
    """
    resolved, cand = pm.resolve(target)
    if cand is not None and not cand.ok:
        raise PluginLoadError(f"{cand.name}: cannot load: {cand.error}", cand.name,
                              hint="fix the plugin's file, then load it again")
    before = set(sys.modules)
    try:
        # signatures: checked on the bytes that will run, before they do (core/trust.py)
        signature = gate_load(pm, target, resolved or target, cand.name if cand is not None else None)
        code = loader.load(target, resolved)
        cls = code.cls
        pm.validator.validate(cls).raise_if_problems(getattr(getattr(cls, "metadata", None), "name", None))
        name = cls.metadata.name
        existing = pm.registry.get(name)
        if existing is not None and existing.status != S.FAILED:
            if existing.cls is cls:
                return existing  # loading the same plugin again is a no-op
            raise InvalidStateError(
                f"a plugin named {name!r} is already loaded from {existing.source}", name,
                hint=f"`%plugin unload {name}` first, or rename one of them")
        try:
            instance = cls()
        except Exception as e:
            raise PluginLoadError(f"{name}: creating the plugin object failed: {one_line(e)}", name,
                                  hint="a plugin's __init__ must take no arguments") from e
    except BaseException:
        if cand is None or cand.name not in pm.registry:
            loader.forget_modules([m for m in set(sys.modules) - before])
        raise
    pkg = _package_dir(code.module)
    rec = PluginRecord(
        name=name, target=target, metadata=cls.metadata, source=code.source, cls=cls,
        module=sys.modules.get(cls.__module__, code.module), instance=instance,
        root=pkg or code.root, package_dir=pkg, config=dict(config or {}), signature=signature,
    )
    for mod in plugin_modules(rec):
        remember_source(mod)
    rec.files = module_files(rec)
    pm.registry[name] = rec
    pm.registry.unloaded.discard(name)
    pm.emit("loaded", name, version=rec.version, source=rec.source)
    return rec
    yield  # a generator, though loading calls no hook


# ---------------------------------------------------------------------------- initialize / start
def _make_context(pm: Host, rec: PluginRecord) -> PluginContext:
    """A fresh context per initialize: config from the manager merged with the load's own,
    the dependencies' live objects, and a data folder the plugin may write to."""
    cfg = {**pm.config.get(rec.name, {}), **rec.config}
    deps = {r.name: pm.registry[r.name].instance for r in rec.metadata.requirements if r.name in pm.registry}
    data_dir = (pm.data_root / rec.name) if pm.data_root else None
    return PluginContext(rec.name, config=cfg, deps=deps, data_dir=data_dir)


def _initialize_one(pm: Host, rec: PluginRecord) -> Steps[None]:
    """``initialize(ctx)`` once per load (a reload keeps the initialized object). A raising
    hook closes the context, so what the plugin registered in it is released, not leaked."""
    if rec.initialized:
        return
    if rec.context is not None:
        rec.context.close()
    rec.context = _make_context(pm, rec)
    try:
        if has_hook(rec.instance, "initialize"):
            yield hook_call(pm, rec, "initialize", rec.context)
    except Exception as e:
        rec.context.close()
        fail(pm, rec, e, "initialize")
        raise HookError(f"{rec.name}: initialize() raised {one_line(e)}", rec.name, hook="initialize",
                        hint="fix it and save (watching retries), or `%plugin start` again") from e
    rec.initialized = True
    rec.status = S.INITIALIZED
    rec.error = None
    pm.emit("initialized", rec.name)


def initialize_steps(pm: Host, name: str) -> Steps[PluginRecord]:
    """``pm.initialize``: only from ``loaded`` (or ``failed``, to retry); dependencies must be
    satisfiable first, so a plugin never sees a ``ctx.deps`` missing one."""
    rec = pm.record(name)
    if rec.status not in (S.LOADED, S.FAILED) or rec.instance is None:
        raise InvalidStateError(f"{name}: cannot initialize a {rec.status} plugin", name)
    pm.registry.dependency_order(name)
    yield from _initialize_one(pm, rec)
    return rec


def start_one(pm: Host, rec: PluginRecord) -> Steps[None]:
    """Start one plugin whose dependencies already run. ``begin_run`` opens a cleanup scope:
    what ``start`` registers is released by ``stop`` (or at once if ``start`` raises), so a
    failed start leaves no timer or thread behind."""
    if rec.instance is None:
        raise InvalidStateError(f"{rec.name}: cannot start: its code failed to load ({rec.error})", rec.name,
                                hint="fix the file and save; watching loads it again")
    yield from _initialize_one(pm, rec)
    assert rec.context is not None
    rec.context.deps.update(
        {r.name: pm.registry[r.name].instance for r in rec.metadata.requirements if r.name in pm.registry})
    rec.context.begin_run()
    try:
        if has_hook(rec.instance, "start"):
            yield hook_call(pm, rec, "start")
    except Exception as e:
        rec.context.end_run()
        fail(pm, rec, e, "start")
        raise HookError(f"{rec.name}: start() raised {one_line(e)}", rec.name, hook="start",
                        hint="fix it and save (watching retries), or `%plugin start` again") from e
    rec.status = S.RUNNING
    rec.error = None
    rec.started_at = time.time()
    pm.emit("started", rec.name, version=rec.version)


def start_steps(pm: Host, name: str) -> Steps[PluginRecord]:
    """``pm.start``: dependencies first, in order, each started only if it is not running.
    ``want_running`` is remembered, so a failed plugin fixed by a save starts again by itself."""
    rec = pm.record(name)
    if rec.status == S.RUNNING:
        raise InvalidStateError(f"{name} is already running", name,
                                hint=f"`%plugin stop {name}` or `%plugin reload {name}`")
    if rec.status in (S.RELOADING, S.UNLOADED):
        raise InvalidStateError(f"{name}: cannot start while {rec.status}", name)
    order = pm.registry.dependency_order(name)
    rec.want_running = True
    for dep in order:
        drec = pm.registry[dep]
        if drec.status != S.RUNNING:
            if dep != name and drec.status == S.RELOADING:
                raise DependencyError(f"{name} requires {dep}, which is reloading", name)
            yield from start_one(pm, drec)
    return rec


# ---------------------------------------------------------------------------- stop / unload
def stop_one(pm: Host, rec: PluginRecord) -> Steps[list[str]]:
    """Stop one plugin; every cleanup runs even if the hook or one cleanup raises."""
    problems: list[str] = []
    try:
        if has_hook(rec.instance, "stop"):
            yield hook_call(pm, rec, "stop")
    except Exception as e:
        problems.append(f"stop() raised {one_line(e)}")
    if rec.context is not None:
        problems += [f"cleanup {label!r} raised {one_line(err)}" for label, err in rec.context.end_run()]
    rec.status = S.STOPPED
    if problems:
        rec.error = f"{rec.name}: stopped, but " + "; ".join(problems) + " (a bug in the plugin's teardown)"
        log.warning("flx_ipy: %s", rec.error)
    pm.emit("stopped", rec.name, problems=problems)
    return problems


def stop_steps(pm: Host, name: str, *, want_running: bool = False) -> Steps[PluginRecord]:
    """``pm.stop``: running dependants stop first (they may use ``name`` in their ``stop``).
    ``want_running`` False: a save to this plugin does not start it again."""
    rec = pm.record(name)
    if rec.status != S.RUNNING:
        raise InvalidStateError(f"{name} is not running ({rec.status})", name,
                                hint=f"`%plugin start {name}`" if rec.status != S.RELOADING else "")
    for dep in reversed(pm.registry.dependants(name)):
        drec = pm.registry[dep]
        if drec.status == S.RUNNING:
            yield from stop_one(pm, drec)
    yield from stop_one(pm, rec)
    rec.want_running = want_running
    return rec


def unload_steps(pm: Host, name: str) -> Steps[None]:
    """``pm.unload``: stop if running, release the context, forget the plugin's modules (only
    those no other loaded plugin shares), so loading it again imports fresh code."""
    rec = pm.record(name)
    if rec.status == S.RELOADING:
        raise InvalidStateError(f"{name} is reloading; unload it afterwards", name)
    if rec.status == S.RUNNING:
        yield from stop_steps(pm, name)
    if rec.context is not None:
        for label, err in rec.context.close():
            log.warning("flx_ipy: %s: cleanup %r raised %s during unload", name, label, one_line(err))
    if rec.worker is not None:
        rec.worker.close()  # an isolated plugin's worker process ends with it: none is left behind
    del pm.registry[name]
    pm.registry.unloaded.add(name)
    if rec.signature is not None and rec.signature.unit:
        loader.unpin(rec.signature.unit)
    shared = {m.__name__ for r in pm.registry.values() for m in plugin_modules(r)}
    mine = [m.__name__ for m in plugin_modules(rec) if m.__name__ not in shared]
    loader.forget_modules(mine)
    rec.status = S.UNLOADED
    rec.instance = None
    pm.emit("unloaded", name)


# ---------------------------------------------------------------------------- health & state
def _coerce_health(value: Any) -> HealthStatus:
    """Plugins return many shapes from ``health_check`` (a bool, a string, a dict, None); the
    panels need one, and a wrong shape is ``unknown`` with why, not an exception."""
    if isinstance(value, HealthStatus):
        return value
    if isinstance(value, bool):
        return HealthStatus.healthy() if value else HealthStatus.unhealthy("health_check returned False")
    if isinstance(value, str):
        return HealthStatus(Health(value))
    if isinstance(value, dict):
        return HealthStatus(**value)
    if value is None:
        return HealthStatus.healthy()
    return HealthStatus.unknown(f"health_check returned {type(value).__name__}, not HealthStatus")


def health_steps(pm: Host, name: str) -> Steps[HealthStatus]:
    """Run one health check with ``health_timeout``, in a helper thread for a sync hook (a
    hanging check must not hang the manager). Never raises: a raising or hanging check is
    ``unhealthy``. ``health_changed`` is emitted only on a change, so the panels are not
    flooded by the periodic checks."""
    rec = pm.record(name)
    known = without_check(rec)  # one rule for checks and cached verdicts (health_rules.py)
    if known is not None:
        result = known
    else:
        call = hook_call(pm, rec, "health_check", timeout=pm.health_timeout, isolate=True)
        try:
            result = _coerce_health((yield call))
        except HookError as e:
            result = HealthStatus.unhealthy(f"health_check timed out after {pm.health_timeout:g} s",
                                            error=str(e))
        except Exception as e:
            result = HealthStatus.unhealthy(f"health_check raised {one_line(e)}", error=repr(e))
    previous = rec.health
    rec.health = result
    if previous is None or previous.status != result.status or previous.message != result.message:
        pm.emit("health_changed", name, status=str(result.status), message=result.message,
                 previous=str(previous.status) if previous else None)
    return result


def state_steps(pm: Host, name: str) -> Steps[dict[str, Any]]:
    """What the plugin would hand to its next version: its ``save_state`` if it has one (and
    is initialized), else its attributes as reprs — for ``%plugin state``, changes nothing."""
    rec = pm.record(name)
    if rec.instance is None:
        raise InvalidStateError(f"{name} has no live object ({rec.status})", name)
    if rec.worker is not None:  # isolated: its attributes live in its worker, which reads them
        return rec.worker.state_summary()  # type: ignore[no-any-return]
    if has_hook(rec.instance, "save_state") and rec.initialized:
        st = yield hook_call(pm, rec, "save_state")
        st = coerce_state(rec, st)
        return {"kind": "save_state", **st.to_dict()}
    return {"kind": "attributes", "plugin_id": name, "version": rec.version,
            "attributes": {k: repr(v) for k, v in vars(rec.instance).items() if k != "ctx"}}


def coerce_state(rec: PluginRecord, value: Any) -> PluginState:
    """A ``save_state`` may return a ``PluginState`` or a plain dict (its runtime data);
    anything else is the plugin's bug, said in one line naming the plugin."""
    if isinstance(value, PluginState):
        return value
    if isinstance(value, dict):
        return PluginState(rec.name, rec.version, runtime_data=value)
    raise TypeError(f"{rec.name}.save_state() returned {type(value).__name__}; return a PluginState or a dict")
