"""The reload transaction: prepare fully, then hand over; on any failure the old keeps running.

validate (read + compile every affected module) → save state → stop → swap code (re-execute
in import order, patch classes in place) → validate the new class → restore state → start.
A failure at any step undoes the swap and the instance's attributes exactly and starts the
old code again (Vite's HMR as a transaction). A failed version is remembered by content hash,
so the same broken save is not retried until the file changes again.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from types import ModuleType
from typing import Any

from . import graph as import_graph
from . import recovery
from .codeswap import CodeSwap
from .errors import FlxError, InvalidStateError, one_line, plugin_traceback
from .files import digest, module_file, norm, read, source_hashes
from .instance_guard import InstanceGuard
from .lifecycle import (
    Host,
    coerce_state,
    fail,
    has_hook,
    hook_call,
    module_files,
    plugin_modules,
    start_one,
    start_steps,
    stop_one,
)
from .registry import PluginRecord
from .revisions import health_gate_steps, migrate_steps
from .steps import Steps
from .trust import gate_reload, undo_reload_pins
from .types import LifecycleState, PluginState, ReloadResult

S = LifecycleState
_graph_cache: dict[tuple[tuple[str, str], ...], dict[str, set[str]]] = {}


class _Abort(Exception):
    def __init__(self, phase: str, error: BaseException) -> None:
        self.phase = phase
        self.error = error


def _snapshot(inst: Any) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Instance attributes as they were (``__dict__`` and slots), to restore on rollback."""
    d = dict(vars(inst)) if hasattr(inst, "__dict__") else None
    slots: dict[str, Any] = {}
    for klass in type(inst).__mro__:
        for s in getattr(klass, "__slots__", ()) if isinstance(getattr(klass, "__slots__", ()), (tuple, list)) else ():
            if s not in ("__dict__", "__weakref__") and hasattr(inst, s):
                slots[s] = getattr(inst, s)
    return d, slots


def _fresh_instance(new_cls: type, old: Any) -> Any:
    """A new object of ``new_cls`` carrying the old one's attributes (layout changes)."""
    inst: Any = object.__new__(new_cls)
    d, slots = _snapshot(old)
    if d is not None and hasattr(inst, "__dict__"):
        vars(inst).update(d)
    for k, v in {**slots, **({} if hasattr(inst, "__dict__") else (d or {}))}.items():
        try:
            setattr(inst, k, v)
        except AttributeError:
            pass
    return inst


def _fill_dataclass_fields(inst: Any) -> list[str]:
    """New dataclass fields with defaults, set on the live instance (its identity is kept)."""
    added = []
    if dataclasses.is_dataclass(inst) and hasattr(inst, "__dict__"):
        for f in dataclasses.fields(inst):
            if f.name in vars(inst):
                continue
            if f.default_factory is not dataclasses.MISSING:
                setattr(inst, f.name, f.default_factory())
                added.append(f.name)
            elif f.default is not dataclasses.MISSING:
                added.append(f.name)  # class attribute already provides it
    return added


def _modules_to_exec(rec: PluginRecord, force: bool, batch_done: set[str],
                     new_sources: dict[str, bytes]) -> tuple[list[ModuleType], bool]:
    """Which of the plugin's modules to re-execute, in import order, and whether the plugin's
    own module is among them (if not, this change does not affect the plugin)."""
    mods = {m.__name__: m for m in plugin_modules(rec)}
    cls_mod = rec.cls.__module__ if rec.cls is not None else rec.module.__name__  # type: ignore[union-attr]
    changed: set[str] = set()
    srcs: dict[str, tuple[bytes, bool]] = {}
    for name, mod in mods.items():
        path = module_file(mod)
        if path is None:
            continue
        data = new_sources.get(path)
        if data is None:
            data = read(path)
            if data is None:
                continue  # deleted: keep running what we have
            new_sources[path] = data
        srcs[name] = (data, hasattr(mod, "__path__"))
        if source_hashes.get(path) != digest(data):
            changed.add(name)
    if force:
        changed.add(cls_mod)
    if len(mods) == 1:
        affected = set(changed) | (batch_done & set(mods))
        return ([mods[cls_mod]] if cls_mod in affected and cls_mod not in batch_done else []), cls_mod in affected
    key = tuple(sorted((n, digest(s)) for n, (s, _) in srcs.items()))
    graph = _graph_cache.get(key)
    if graph is None:
        graph = import_graph.build_graph(srcs)
        _graph_cache[key] = graph
        if len(_graph_cache) > 256:
            _graph_cache.pop(next(iter(_graph_cache)))
    closure = import_graph.dependants_closure(changed | (batch_done & set(mods)), graph)
    order = import_graph.import_order(closure - batch_done, graph)
    return [mods[n] for n in order if n in mods], cls_mod in closure


def reload_steps(pm: Host, name: str, *, force: bool = True,
                 batch_done: set[str] | None = None,
                 new_sources: dict[str, bytes] | None = None) -> Steps[ReloadResult]:
    """``pm.reload``: swap in the plugin's current source as one transaction.

    The order is what makes it safe. Everything that can fail without touching the running
    plugin happens first (read + compile: ``CodeSwap.prepare``), so a syntax error costs
    nothing. Then ``save_state`` while the old code still runs, ``stop``, the swap, validation
    of the *new* class, ``restore_state``, ``start``. Any failure from there on is an
    ``_Abort`` carrying its phase: the swap and the hooks' writes to the object are undone
    exactly and the old version is started again, so the caller sees ``rolled_back``.

    While it runs, other threads keep calling the plugin (``pm.get`` returns the object itself):
    the ``InstanceGuard`` keeps their writes out of the rollback, and with a state hand-over
    holds them at the object between ``save_state`` and ``restore_state`` so no write is lost.

    ``force`` (an explicit reload) re-executes even unchanged code; a watched save passes
    False. ``batch_done``/``new_sources`` are shared across one ``apply_changes`` batch.
    A reload is published as ``reloading`` at once (a panel shows a slow one while it runs),
    then ``reloaded`` or ``reload_failed``; dependants are told with ``dependency_reloaded``
    and restarted if they ask to be (``restart_on_dependency_reload``).
    """
    rec = pm.record(name)
    if rec.status == S.FAILED:
        raise InvalidStateError(
            f"{name} has failed ({rec.error}); a failed plugin is not reloaded", name,
            hint=f"fix it and `%plugin start {name}`, or unload and load it again")
    if rec.status in (S.RELOADING, S.UNLOADED) or rec.instance is None:
        raise InvalidStateError(f"{name}: cannot reload while {rec.status}", name)
    if rec.worker is not None:  # isolated: the worker runs this same transaction (with kept bytes: a rollback)
        return (yield from rec.worker.reload_steps(pm, rec, force=force,  # type: ignore[no-any-return]
                                                   sources=new_sources or None))
    t0 = time.perf_counter()
    batch_done = batch_done if batch_done is not None else set()
    new_sources = new_sources if new_sources is not None else {}
    result = ReloadResult(plugin=name, ok=True)
    prev_status = rec.status
    was_running = prev_status == S.RUNNING
    inst = rec.instance
    old_cls, old_meta = rec.cls, rec.metadata

    def finish(res: ReloadResult) -> ReloadResult:
        res.duration = time.perf_counter() - t0
        res.finished_at = time.time()
        return res

    modules, affected = _modules_to_exec(rec, force, batch_done, new_sources)
    if not affected:
        result.changed = False
        return finish(result)
    swap = CodeSwap(modules, new_sources)
    result.modules = [m.__name__ for m in modules]
    try:
        swap.prepare()
    except Exception as e:  # syntax error, unreadable file: nothing has changed yet
        return finish(_failed(pm, rec, result, "compile", e, new_sources, rolled_back=True))
    try:  # signatures, on exactly the bytes the swap will execute, before it does
        signature = gate_reload(pm, rec, new_sources)
    except Exception as e:
        return finish(_failed(pm, rec, result, "signature", e, new_sources, rolled_back=True))

    rec.status = S.RELOADING
    pm.emit("reloading", name, now=True, modules=result.modules)
    snap = _snapshot(inst)
    saved: PluginState | None = None
    new_inst = inst
    stopped = False
    hands_over = has_hook(inst, "save_state") and rec.initialized
    me = threading.get_ident()
    guard = InstanceGuard(inst, lambda: (me, pm.hook_thread_id), pm.hook_timeout or 30.0)
    guard.install(gate=hands_over)
    try:
        if hands_over:
            guard.close_gate()  # other threads wait until restore_state has run (instance_guard.py)
            # the attributes to roll back to, taken behind the gate: a write another thread made
            # before it closed is in the snapshot (and in save_state), never reverted by a rollback
            snap = _snapshot(inst)
        try:
            if hands_over:
                saved = coerce_state(rec, (yield hook_call(pm, rec, "save_state")))
        except Exception as e:
            raise _Abort("save_state", e) from e
        if was_running:
            # stop may join a worker thread that touches self: while it runs, a waiter is let
            # through after a short grace instead of deadlocking the reload (instance_guard.py)
            guard.max_wait, full_wait = pm.handover_grace, guard.max_wait
            try:
                if has_hook(inst, "stop"):
                    yield hook_call(pm, rec, "stop")
            except Exception as e:
                raise _Abort("stop", e) from e
            finally:
                guard.max_wait = full_wait
                stopped = True
                if rec.context is not None:
                    rec.context.end_run()
        try:
            swap.apply()
        except Exception as e:
            raise _Abort("import", e) from e
        guard.install(gate=hands_over)  # the swap replaced the class namespace
        found = getattr(rec.module, old_cls.__name__, None) if old_cls is not None else None
        if not isinstance(found, type):
            raise _Abort("validate", FlxError(
                f"class {old_cls.__name__ if old_cls else '?'} is no longer defined in {rec.source}"))
        new_cls: Any = found
        vres = pm.validator.validate(new_cls)
        if not vres.ok:
            raise _Abort("validate", FlxError(str(vres)))
        if new_cls.metadata.name != name:
            raise _Abort("validate", FlxError(
                f"metadata.name changed from {name!r} to {new_cls.metadata.name!r}; renaming needs "
                f"`%plugin unload {name}` then load"))
        reason = next((r for k, r in swap.unpatchable.items() if k.endswith("." + old_cls.__name__)), None)  # type: ignore[union-attr]
        if new_cls is not old_cls:
            new_inst = _fresh_instance(new_cls, inst)
            result.recreated = True
            result.notes.append(f"new instance: {reason or 'class replaced'}; state carried over"
                                " (references taken earlier still see the old object)")
        for qual, why in swap.unpatchable.items():
            if not qual.endswith("." + old_cls.__name__):  # type: ignore[union-attr]
                result.notes.append(f"{qual.rpartition('.')[2]}: {why}; objects made before the reload "
                                    "keep the old class (hand them over in restore_state)")
        added = _fill_dataclass_fields(new_inst)
        if added:
            result.notes.append(f"new fields set to their defaults: {', '.join(added)}")
        rec.instance = new_inst
        if saved is not None:
            try:
                saved = yield from migrate_steps(pm, rec, new_inst, saved)
            except Exception as e:
                raise _Abort("migrate_state", e) from e
        try:
            if saved is not None and has_hook(new_inst, "restore_state"):
                yield hook_call(pm, rec, "restore_state", saved)
        except Exception as e:
            raise _Abort("restore_state", e) from e
        guard.open_gate()
        if was_running:
            if rec.context is not None:
                rec.context.begin_run()
            try:
                if has_hook(new_inst, "start"):
                    yield hook_call(pm, rec, "start")
            except Exception as e:
                if rec.context is not None:
                    rec.context.end_run()
                raise _Abort("start", e) from e
            if pm.health_gate:
                try:
                    yield from health_gate_steps(pm, rec)
                except Exception as e:
                    raise _Abort("health_check", e) from e
    except BaseException as exc:
        swap.rollback()
        guard.install(gate=False)
        rec.instance = inst
        guard.revert(*snap)  # what the reload's hooks wrote; other threads' writes stay
        guard.remove()
        if not isinstance(exc, _Abort):  # Ctrl-C in a hook, or a bug: old code back, then re-raise
            undo_reload_pins(pm, rec)
            rec.status = S.STOPPED if stopped and was_running else prev_status
            raise
        abort = exc
        if stopped and was_running:
            if rec.context is not None:
                rec.context.begin_run()
            try:
                if has_hook(inst, "start"):
                    yield hook_call(pm, rec, "start")
            except Exception as e:  # the old version cannot run again either
                if rec.context is not None:
                    rec.context.end_run()
                fail(pm, rec, e, "restart after rollback")
                res = _failed(pm, rec, result, abort.phase, abort.error, new_sources, rolled_back=False)
                return finish(res)
        rec.status = prev_status
        return finish(_failed(pm, rec, result, abort.phase, abort.error, new_sources, rolled_back=True))

    guard.remove()
    rec.cls = new_cls
    rec.metadata = new_cls.metadata
    if signature is not None:
        rec.signature = signature
    pm.trust.undo.pop(name, None)
    rec.status = prev_status
    rec.error = None
    rec.error_detail = None
    rec.failed_hashes.clear()
    rec.reload_count += 1
    rec.files = module_files(rec)
    batch_done.update(result.modules)
    result.changed = swap.changed
    finish(result)
    rec.last_reload = result
    pm.emit("reloaded", name, duration=result.duration, version=rec.version,
             previous_version=old_meta.version, modules=result.modules, notes=list(result.notes))
    for dep in pm.registry.dependants(name):
        drec = pm.registry[dep]
        restart = bool(getattr(drec.instance, "restart_on_dependency_reload", False))
        pm.emit("dependency_reloaded", dep, dependency=name, restart=restart and drec.running)
        if restart and drec.running:
            yield from stop_one(pm, drec)
            yield from start_one(pm, drec)
    return result


def _failed(pm: Host, rec: PluginRecord, result: ReloadResult, phase: str, error: BaseException,
            new_sources: dict[str, bytes], *, rolled_back: bool) -> ReloadResult:
    """Record a failed reload on the plugin and the result: the one-line error with the plugin's
    own ``file:line``, and the failed content's hash, so the same broken save is not retried
    (and reported again) until the file changes."""
    detail, where = plugin_traceback(error, rec.files)
    undo_reload_pins(pm, rec)  # the failed version's verified bytes are not what runs
    result.ok = False
    result.rolled_back = rolled_back
    result.phase = phase
    result.error = one_line(error)
    result.where = where
    result.traceback = detail
    for path, data in new_sources.items():
        if path in rec.files:
            rec.failed_hashes[path] = digest(data)
    tail = "previous version still running" if rolled_back and rec.status == S.RUNNING else (
        "previous version kept" if rolled_back else "plugin failed")
    rec.error = f"reload failed in {phase}: {result.error}" + (f" at {where}" if where else "") + f" — {tail}"
    rec.error_detail = detail
    rec.last_reload = result
    pm.emit("reload_failed", rec.name, phase=phase, error=result.error, where=where,
            rolled_back=rolled_back, message=rec.error)
    return result


def apply_changes_steps(pm: Host, paths: list[str], *, force: bool = False) -> Steps[list[ReloadResult]]:
    """Reload exactly the plugins whose files changed, dependencies before dependants.

    One batch: a module shared by several plugins is re-executed once (``batch_done``), and
    the bytes are read once (``new_sources``) so every plugin in the batch sees the same save.
    A plugin for which the save is not news (``PluginRecord.is_news``) is skipped — after its kept
    reload failure is cleared if its files are back to the running version (``recovery.clear``);
    a failed plugin is retried instead of reloaded (``_retry_failed``)."""
    changed = {norm(p) for p in paths}
    new_sources: dict[str, bytes] = {}
    for p in changed:
        data = read(p)
        if data is not None:
            new_sources[p] = data
    results: list[ReloadResult] = []
    batch_done: set[str] = set()
    for name in pm.registry.affected_order(changed):
        rec = pm.registry.get(name)
        if rec is None:
            continue
        touched = [p for p in changed if rec.owns(p)]
        if not force and touched and all(
                p in new_sources and not rec.is_news(p, digest(new_sources[p]), runs_stale=bool(batch_done))
                for p in touched):
            cleared = recovery.clear(pm, rec)  # back to the running version: the error ends
            if cleared is not None:
                results.append(cleared)
            continue  # a save that changes nothing (or the same broken content again)
        if rec.worker is not None:  # isolated: the worker reloads (or retries) itself
            if rec.status in (S.RELOADING, S.UNLOADED) or rec.worker.state == "closed":
                continue
            was_failed = rec.status == S.FAILED
            if rec.worker.state == "failed":
                res = yield from rec.worker.retry_steps(pm, rec)
            else:
                res = yield from rec.worker.reload_steps(pm, rec, force=force, paths=sorted(touched or changed))
            if res.modules or not res.ok or was_failed:
                results.append(res)
            continue
        if rec.status == S.FAILED:
            results.append((yield from _retry_failed(pm, rec, new_sources)))
            continue
        if rec.status in (S.RELOADING, S.UNLOADED):
            continue
        res = yield from reload_steps(pm, name, force=force, batch_done=batch_done, new_sources=new_sources)
        if res.modules or not res.ok:
            results.append(res)
    return results


def _retry_failed(pm: Host, rec: PluginRecord, new_sources: dict[str, bytes]) -> Steps[ReloadResult]:
    """A failed plugin whose file changed: re-execute its code and start it again if it was
    meant to run (fix → save → running, no command needed).

    A transaction like a reload: if the new code does not compile, import, validate or start,
    the plugin's modules, class and object are put back exactly as they were (the same
    ``CodeSwap.rollback``), so a second broken save never leaves half-executed modules behind.
    The plugin stays ``failed`` with the new error; nothing was running to keep running."""
    t0 = time.perf_counter()
    result = ReloadResult(plugin=rec.name, ok=True)
    mods = [m for m in plugin_modules(rec) if module_file(m)]
    swap = CodeSwap(mods, new_sources)
    before = (rec.cls, rec.metadata, rec.instance)
    try:
        swap.prepare()
        signature = gate_reload(pm, rec, new_sources)
        swap.apply()
        new_cls = getattr(rec.module, rec.cls.__name__, None) if rec.cls is not None else None
        if not isinstance(new_cls, type):
            raise FlxError(f"{rec.name}: plugin class is gone from {rec.source}")
        pm.validator.validate(new_cls).raise_if_problems(rec.name)
        if signature is not None:
            rec.signature = signature
        pm.trust.undo.pop(rec.name, None)
        if new_cls is not rec.cls and rec.instance is not None:
            rec.instance = _fresh_instance(new_cls, rec.instance)
        rec.cls, rec.metadata = new_cls, new_cls.metadata  # type: ignore[attr-defined]
        rec.status = S.INITIALIZED if rec.initialized else S.LOADED
        if rec.want_running:
            yield from start_steps(pm, rec.name)
    except Exception as e:
        swap.rollback()
        rec.cls, rec.metadata, rec.instance = before
        result.duration = time.perf_counter() - t0
        if rec.status != S.FAILED:
            fail(pm, rec, e, "retry")
        result.notes.append("code rolled back to the version that failed before")
        return _failed(pm, rec, result, "retry", e, new_sources, rolled_back=False)
    rec.failed_hashes.clear()
    rec.error = None
    result.duration = time.perf_counter() - t0
    result.finished_at = time.time()
    rec.last_reload = result
    pm.emit("reloaded", rec.name, duration=result.duration, version=rec.version, retried=True)
    return result
