"""Lifecycle operations, written once as generators of hook calls (see ``hooks.py``).

``discovered → loaded → initialized → running ⇄ stopped → unloaded``, plus ``failed`` (error
kept) and the transient ``reloading``. An operation not allowed in the current state raises
``InvalidStateError`` before touching anything. Dependencies start before and stop after their
dependants. A failed start releases what the plugin registered, so it leaves no trace.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import loader
from .context import PluginContext
from .errors import (
    DependencyError,
    FlxError,
    HookError,
    InvalidStateError,
    PluginLoadError,
)
from .hooks import HookCall, Steps
from .record import PluginRecord
from .trust import gate_load
from .types import Health, HealthStatus, LifecycleState, PluginState

if TYPE_CHECKING:
    from .manager import PluginManager

log = logging.getLogger("flx_ipy")
S = LifecycleState


# ---------------------------------------------------------------------------- helpers
def norm(path: str | Path) -> str:
    return os.path.normcase(os.path.abspath(str(path)))


def plugin_traceback(exc: BaseException, files: Iterable[str]) -> tuple[str, str | None]:
    """The plugin's own frames of ``exc`` (never flx_ipy's), and the innermost ``file:line``."""
    wanted = {norm(f) for f in files}
    if isinstance(exc, SyntaxError) and exc.filename:
        where: str | None = f"{exc.filename}:{exc.lineno}"
        return "".join(traceback.format_exception_only(type(exc), exc)), where
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if norm(f.filename) in wanted]
    cause = exc.__cause__ or exc.__context__
    if not frames and cause is not None and cause.__traceback__ is not None:
        frames = [f for f in traceback.extract_tb(cause.__traceback__) if norm(f.filename) in wanted]
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else None
    text = "Traceback (plugin frames only):\n" + "".join(traceback.format_list(frames)) if frames else ""
    return text + "".join(traceback.format_exception_only(type(exc), exc)), where


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, FlxError):
        return str(exc)
    msg = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[0]}" if msg else type(exc).__name__


def _fail(pm: PluginManager, rec: PluginRecord, exc: BaseException, phase: str) -> None:
    rec.status = S.FAILED
    rec.exception = exc
    detail, where = plugin_traceback(exc, rec.files)
    rec.error = f"{phase} failed: {_one_line(exc)}" + (f" ({where})" if where else "")
    rec.error_detail = detail
    pm._emit("failed", rec.name, phase=phase, error=rec.error, where=where)


def _has_hook(obj: Any, name: str) -> bool:
    return callable(getattr(obj, name, None))


def _call(pm: PluginManager, rec: PluginRecord, hook: str, *args: Any, timeout: Any = "default") -> HookCall:
    fn = getattr(rec.instance, hook)
    return HookCall(rec.name, hook, fn, args, pm.hook_timeout if timeout == "default" else timeout)


def module_files(rec: PluginRecord) -> set[str]:
    files = set()
    for mod in plugin_modules(rec):
        f = getattr(mod, "__file__", None)
        if f and f.endswith(".py"):
            files.add(norm(f))
    return files


def plugin_modules(rec: PluginRecord) -> list[Any]:
    """The modules that belong to a plugin: its package's modules, or its one module."""
    from .reload import modules_under

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


# ---------------------------------------------------------------------------- dependencies
def dependency_order(pm: PluginManager, name: str) -> list[str]:
    """``name``'s dependencies (transitively), each before what needs it; ``name`` last."""
    order: list[str] = []
    visiting: list[str] = []

    def visit(n: str) -> None:
        if n in order:
            return
        if n in visiting:
            cycle = " -> ".join([*visiting[visiting.index(n):], n])
            raise DependencyError(f"dependency cycle: {cycle}", name,
                                  hint="remove one of these `requires` entries")
        visiting.append(n)
        rec = pm._records[n]
        for req in rec.metadata.requirements:
            dep = pm._records.get(req.name)
            if dep is None or dep.status == S.UNLOADED:
                raise DependencyError(
                    f"{n} requires {req}, which is not loaded", n,
                    hint=f"load it first (`%plugin load {req.name}`)")
            if not req.accepts(dep.version):
                raise DependencyError(
                    f"{n} requires {req}, but {req.name} {dep.version} is loaded", n,
                    hint=f"load a version of {req.name} matching '{req.specifier}', or relax {n}'s requires")
            visit(req.name)
        visiting.pop()
        order.append(n)

    visit(name)
    return order


def dependants(pm: PluginManager, name: str) -> list[str]:
    """Loaded plugins that require ``name``, transitively, each after what it requires."""
    out: list[str] = []

    def visit(n: str) -> None:
        for other, rec in pm._records.items():
            if other not in out and any(r.name == n for r in rec.metadata.requirements):
                out.append(other)
                visit(other)

    visit(name)
    return out


def shutdown_order(pm: PluginManager) -> list[str]:
    """Every plugin, dependants before their dependencies."""
    order: list[str] = []
    for n in sorted(pm._records):
        try:
            for d in dependency_order(pm, n):
                if d not in order:
                    order.append(d)
        except DependencyError:
            if n not in order:
                order.append(n)
    return order[::-1]


# ---------------------------------------------------------------------------- load
def load_steps(pm: PluginManager, target: str, config: Any) -> Steps[PluginRecord]:
    resolved, cand = pm._resolve(target)
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
        existing = pm._records.get(name)
        if existing is not None and existing.status != S.FAILED:
            if existing.cls is cls:
                return existing  # loading the same plugin again is a no-op
            raise InvalidStateError(
                f"a plugin named {name!r} is already loaded from {existing.source}", name,
                hint=f"`%plugin unload {name}` first, or rename one of them")
        try:
            instance = cls()
        except Exception as e:
            raise PluginLoadError(f"{name}: creating the plugin object failed: {_one_line(e)}", name,
                                  hint="a plugin's __init__ must take no arguments") from e
    except BaseException:
        if cand is None or cand.name not in pm._records:
            loader.forget_modules([m for m in set(sys.modules) - before])
        raise
    pkg = _package_dir(code.module)
    rec = PluginRecord(
        name=name, target=target, metadata=cls.metadata, source=code.source, cls=cls,
        module=sys.modules.get(cls.__module__, code.module), instance=instance,
        root=pkg or code.root, package_dir=pkg, config=dict(config or {}), signature=signature,
    )
    from .reload import remember_source

    for mod in plugin_modules(rec):
        remember_source(mod)
    rec.files = module_files(rec)
    pm._records[name] = rec
    pm._unloaded.discard(name)
    pm._emit("loaded", name, version=rec.version, source=rec.source)
    return rec
    yield  # a generator, though loading calls no hook


# ---------------------------------------------------------------------------- initialize / start
def _make_context(pm: PluginManager, rec: PluginRecord) -> PluginContext:
    cfg = {**pm.config.get(rec.name, {}), **rec.config}
    deps = {r.name: pm._records[r.name].instance for r in rec.metadata.requirements if r.name in pm._records}
    data_dir = (pm.data_root / rec.name) if pm.data_root else None
    return PluginContext(rec.name, config=cfg, deps=deps, data_dir=data_dir)


def _initialize_one(pm: PluginManager, rec: PluginRecord) -> Steps[None]:
    if rec.initialized:
        return
    if rec.context is not None:
        rec.context.close()
    rec.context = _make_context(pm, rec)
    try:
        if _has_hook(rec.instance, "initialize"):
            yield _call(pm, rec, "initialize", rec.context)
    except Exception as e:
        rec.context.close()
        _fail(pm, rec, e, "initialize")
        raise HookError(f"{rec.name}: initialize() raised {_one_line(e)}", rec.name, hook="initialize",
                        hint="fix it and save (watching retries), or `%plugin start` again") from e
    rec.initialized = True
    rec.status = S.INITIALIZED
    rec.error = None
    pm._emit("initialized", rec.name)


def initialize_steps(pm: PluginManager, name: str) -> Steps[PluginRecord]:
    rec = pm.record(name)
    if rec.status not in (S.LOADED, S.FAILED) or rec.instance is None:
        raise InvalidStateError(f"{name}: cannot initialize a {rec.status} plugin", name)
    dependency_order(pm, name)
    yield from _initialize_one(pm, rec)
    return rec


def _start_one(pm: PluginManager, rec: PluginRecord) -> Steps[None]:
    if rec.instance is None:
        raise InvalidStateError(f"{rec.name}: cannot start: its code failed to load ({rec.error})", rec.name,
                                hint="fix the file and save; watching loads it again")
    yield from _initialize_one(pm, rec)
    assert rec.context is not None
    rec.context.deps.update(
        {r.name: pm._records[r.name].instance for r in rec.metadata.requirements if r.name in pm._records})
    rec.context.begin_run()
    try:
        if _has_hook(rec.instance, "start"):
            yield _call(pm, rec, "start")
    except Exception as e:
        rec.context.end_run()
        _fail(pm, rec, e, "start")
        raise HookError(f"{rec.name}: start() raised {_one_line(e)}", rec.name, hook="start",
                        hint="fix it and save (watching retries), or `%plugin start` again") from e
    rec.status = S.RUNNING
    rec.error = None
    rec.started_at = time.time()
    pm._emit("started", rec.name, version=rec.version)


def start_steps(pm: PluginManager, name: str) -> Steps[PluginRecord]:
    rec = pm.record(name)
    if rec.status == S.RUNNING:
        raise InvalidStateError(f"{name} is already running", name,
                                hint=f"`%plugin stop {name}` or `%plugin reload {name}`")
    if rec.status in (S.RELOADING, S.UNLOADED):
        raise InvalidStateError(f"{name}: cannot start while {rec.status}", name)
    order = dependency_order(pm, name)
    rec.want_running = True
    for dep in order:
        drec = pm._records[dep]
        if drec.status != S.RUNNING:
            if dep != name and drec.status == S.RELOADING:
                raise DependencyError(f"{name} requires {dep}, which is reloading", name)
            yield from _start_one(pm, drec)
    return rec


# ---------------------------------------------------------------------------- stop / unload
def _stop_one(pm: PluginManager, rec: PluginRecord) -> Steps[list[str]]:
    """Stop one plugin; every cleanup runs even if the hook or one cleanup raises."""
    problems: list[str] = []
    try:
        if _has_hook(rec.instance, "stop"):
            yield _call(pm, rec, "stop")
    except Exception as e:
        problems.append(f"stop() raised {_one_line(e)}")
    if rec.context is not None:
        problems += [f"cleanup {label!r} raised {_one_line(err)}" for label, err in rec.context.end_run()]
    rec.status = S.STOPPED
    if problems:
        rec.error = f"{rec.name}: stopped, but " + "; ".join(problems) + " (a bug in the plugin's teardown)"
        log.warning("flx_ipy: %s", rec.error)
    pm._emit("stopped", rec.name, problems=problems)
    return problems


def stop_steps(pm: PluginManager, name: str, *, want_running: bool = False) -> Steps[PluginRecord]:
    rec = pm.record(name)
    if rec.status != S.RUNNING:
        raise InvalidStateError(f"{name} is not running ({rec.status})", name,
                                hint=f"`%plugin start {name}`" if rec.status != S.RELOADING else "")
    for dep in reversed(dependants(pm, name)):
        drec = pm._records[dep]
        if drec.status == S.RUNNING:
            yield from _stop_one(pm, drec)
    yield from _stop_one(pm, rec)
    rec.want_running = want_running
    return rec


def unload_steps(pm: PluginManager, name: str) -> Steps[None]:
    rec = pm.record(name)
    if rec.status == S.RELOADING:
        raise InvalidStateError(f"{name} is reloading; unload it afterwards", name)
    if rec.status == S.RUNNING:
        yield from stop_steps(pm, name)
    if rec.context is not None:
        for label, err in rec.context.close():
            log.warning("flx_ipy: %s: cleanup %r raised %s during unload", name, label, _one_line(err))
    del pm._records[name]
    pm._unloaded.add(name)
    if rec.signature is not None and rec.signature.unit:
        loader.unpin(rec.signature.unit)
    shared = {m.__name__ for r in pm._records.values() for m in plugin_modules(r)}
    mine = [m.__name__ for m in plugin_modules(rec) if m.__name__ not in shared]
    loader.forget_modules(mine)
    rec.status = S.UNLOADED
    rec.instance = None
    pm._emit("unloaded", name)


# ---------------------------------------------------------------------------- health & state
def _coerce_health(value: Any) -> HealthStatus:
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


def health_steps(pm: PluginManager, name: str) -> Steps[HealthStatus]:
    rec = pm.record(name)
    if rec.status == S.FAILED:
        result = HealthStatus.unhealthy(rec.error or "failed")
    elif rec.status not in (S.RUNNING, S.RELOADING):
        result = HealthStatus.unknown(f"not running ({rec.status})")
    elif not _has_hook(rec.instance, "health_check"):
        result = HealthStatus.healthy("running (no health_check)")
    else:
        call = HookCall(rec.name, "health_check", rec.instance.health_check, (), pm.health_timeout, isolate=True)
        try:
            result = _coerce_health((yield call))
        except HookError as e:
            result = HealthStatus.unhealthy(f"health_check timed out after {pm.health_timeout:g} s",
                                            error=str(e))
        except Exception as e:
            result = HealthStatus.unhealthy(f"health_check raised {_one_line(e)}", error=repr(e))
    previous = rec.health
    rec.health = result
    if previous is None or previous.status != result.status or previous.message != result.message:
        pm._emit("health_changed", name, status=str(result.status), message=result.message,
                 previous=str(previous.status) if previous else None)
    return result


def state_steps(pm: PluginManager, name: str) -> Steps[dict[str, Any]]:
    rec = pm.record(name)
    if rec.instance is None:
        raise InvalidStateError(f"{name} has no live object ({rec.status})", name)
    if _has_hook(rec.instance, "save_state") and rec.initialized:
        st = yield _call(pm, rec, "save_state")
        st = coerce_state(rec, st)
        return {"kind": "save_state", **st.to_dict()}
    return {"kind": "attributes", "plugin_id": name, "version": rec.version,
            "attributes": {k: repr(v) for k, v in vars(rec.instance).items() if k != "ctx"}}


def coerce_state(rec: PluginRecord, value: Any) -> PluginState:
    if isinstance(value, PluginState):
        return value
    if isinstance(value, dict):
        return PluginState(rec.name, rec.version, runtime_data=value)
    raise TypeError(f"{rec.name}.save_state() returned {type(value).__name__}; return a PluginState or a dict")


# ---------------------------------------------------------------------------- pending saves
def file_digests(paths: Iterable[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for p in paths:
        try:
            with open(p, "rb") as fh:
                out[p] = loader.digest(fh.read())
        except OSError:
            out[p] = None
    return out


def all_complete(paths: Iterable[str]) -> bool:
    from .watcher import _looks_complete, _read

    return all(_looks_complete(_read(p) or b"") for p in paths)


class SettlePending:
    """Iterate the pauses to take until the pending files' content is stable (or ``timeout``);
    then ``pending`` holds them. One loop for the sync and the awaitable ``apply_pending``."""

    def __init__(self, pm: PluginManager, timeout: float, settle: float) -> None:
        self.pending = pending_files(pm)
        self.timeout, self.settle = timeout, settle

    def __iter__(self) -> Iterator[float]:
        if not self.pending:
            return
        deadline = time.monotonic() + self.timeout
        seen = file_digests(self.pending)
        while time.monotonic() < deadline:
            yield self.settle
            now = file_digests(self.pending)
            if now == seen and all_complete(self.pending):
                return
            seen = now


def pending_files(pm: PluginManager) -> list[str]:
    out: list[str] = []
    for rec in list(pm._records.values()):
        files = set(rec.files) or ({norm(rec.target)} if rec.module is None else set())
        for path, d in file_digests(sorted(files)).items():
            if d is not None and d != loader.source_hashes.get(path) and d != rec.failed_hashes.get(path):
                out.append(path)
    return sorted(set(out))


# ---------------------------------------------------------------------------- reload (see reloading.py)
from .reloading import apply_changes_steps, reload_steps  # noqa: E402

__all__ = ["apply_changes_steps", "reload_steps", "shutdown_order"]
