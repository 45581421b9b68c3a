"""Swap a plugin's code in place, as one transaction that can be undone exactly.

How (and why not the alternatives, all measured — see ``docs/architecture.md``):

* Each module is re-executed **into its own dict** (as ``importlib.reload`` does), compiled
  from the bytes just read, so functions keep one ``__globals__`` and no ``.pyc`` can be stale.
  Names the old source defined at top level and the new one no longer does are removed;
  names created at run time are left alone. The dict is snapshotted first, so a rollback puts
  back every binding — and never leaves a moment where an existing name is missing, so a call
  on another thread runs the old or the new version, never neither.
* Each old class object is **patched with the new class's namespace** (and the zero-arg
  ``super()`` ``__class__`` cell re-pointed to it), then the module name is bound back to the
  old class. Instances, bound methods, ``isinstance`` checks and pickles keep working and run
  the new code, with no heap walk (IPython's superreload walks the heap: 152 ms at 10 M objects).
* What cannot be patched in place — a changed ``__slots__`` layout, changed Enum members, a
  different metaclass or an incompatible base — is reported in ``unpatchable`` so the manager
  moves the plugin onto a fresh instance through its state.
"""

from __future__ import annotations

import dis
import enum
import time
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import CodeType, ModuleType
from typing import Any

from .files import compile_source, digest, module_file, read_bytes, record_run, source_hashes, sources

_MISSING = object()
#: a class attribute carrying this mark (set to True) is not ours to remove when the new source
#: lacks it: the instance guard's temporary wrappers live on the class during a swap
KEEP_MARK = "flx_ipy_keep"
_SKIP_ATTRS = frozenset({"__dict__", "__weakref__"})
_names_cache: dict[str, frozenset[str] | None] = {}


def top_level_names(code: CodeType) -> frozenset[str] | None:
    """Names a module's top-level code binds; None if it does ``from x import *``."""
    names = set()
    for ins in dis.get_instructions(code):
        if ins.opname in ("STORE_NAME", "STORE_GLOBAL"):
            names.add(ins.argval)
        elif ins.opname == "IMPORT_STAR":
            return None
    return frozenset(names)


def _names_for(source: bytes, path: str) -> frozenset[str] | None:
    key = digest(source)
    if key not in _names_cache:
        try:
            _names_cache[key] = top_level_names(compile(source, path, "exec", dont_inherit=True))
        except SyntaxError:
            _names_cache[key] = None
        if len(_names_cache) > 64:
            _names_cache.pop(next(iter(_names_cache)))
    return _names_cache[key]


def _walk_functions(value: Any, depth: int = 0) -> Iterator[types.FunctionType]:
    """Functions reachable from a class attribute: through descriptors, ``__wrapped__`` and
    closure cells (decorators), a few levels deep."""
    if depth > 4:
        return
    if isinstance(value, (staticmethod, classmethod)):
        yield from _walk_functions(value.__func__, depth + 1)
    elif isinstance(value, property):
        for f in (value.fget, value.fset, value.fdel):
            if f is not None:
                yield from _walk_functions(f, depth + 1)
    elif isinstance(value, types.FunctionType):
        yield value
        for cell in value.__closure__ or ():
            try:
                inner = cell.cell_contents
            except ValueError:
                continue
            if isinstance(inner, (types.FunctionType, staticmethod, classmethod, property)):
                yield from _walk_functions(inner, depth + 1)
        wrapped = getattr(value, "__wrapped__", None)
        if wrapped is not None:
            yield from _walk_functions(wrapped, depth + 1)


def _repoint_class_cells(value: Any, new: type, old: type) -> None:
    for fn in _walk_functions(value):
        code = fn.__code__
        if "__class__" in code.co_freevars and fn.__closure__:
            cell = fn.__closure__[code.co_freevars.index("__class__")]
            try:
                if cell.cell_contents is new:
                    cell.cell_contents = old
            except ValueError:
                pass


_FN_ATTRS = ("__code__", "__defaults__", "__kwdefaults__", "__doc__", "__annotations__", "__qualname__")


def update_function(old: types.FunctionType, new: types.FunctionType, new_cls: type | None,
                    old_cls: type | None, undo: list[Any], depth: int = 0) -> bool:
    """Give the *old* function object the new code, so references taken earlier (a bound method
    stored as a callback, a decorator's captured function) run the new version.

    Closure cells are updated pairwise (recursing into captured functions, as decorators
    capture the wrapped function); a ``__class__`` cell keeps pointing at the old class.
    Returns False when the closure shapes differ: then the caller rebinds the new function.
    """
    if old is new:
        return True
    if old.__code__.co_freevars != new.__code__.co_freevars or depth > 4:
        return False
    for oc, nc in zip(old.__closure__ or (), new.__closure__ or (), strict=True):
        try:
            nv = nc.cell_contents
        except ValueError:
            continue
        if new_cls is not None and nv is new_cls:
            nv = old_cls
        try:
            ov = oc.cell_contents
        except ValueError:
            ov = _MISSING
        if ov is nv:
            continue
        if (isinstance(ov, types.FunctionType) and isinstance(nv, types.FunctionType)
                and update_function(ov, nv, new_cls, old_cls, undo, depth + 1)):
            continue
        undo.append(("cell", oc, ov))
        oc.cell_contents = nv
    undo.append(("fn", old, {a: getattr(old, a) for a in _FN_ATTRS}, dict(old.__dict__)))
    for a in _FN_ATTRS:
        setattr(old, a, getattr(new, a))
    old.__dict__.update(new.__dict__)
    if "__wrapped__" in old.__dict__ and old.__dict__["__wrapped__"] is not new.__dict__.get("__wrapped__"):
        old.__dict__["__wrapped__"] = new.__dict__["__wrapped__"]
    return True


def undo_updates(undo: list[Any]) -> None:
    for entry in reversed(undo):
        if entry[0] == "cell":
            _, cell, value = entry
            if value is _MISSING:
                del cell.cell_contents
            else:
                cell.cell_contents = value
        else:
            _, fn, attrs, fdict = entry
            for a, v in attrs.items():
                setattr(fn, a, v)
            fn.__dict__.clear()
            fn.__dict__.update(fdict)
    undo.clear()


def _in_place(old: Any, new: Any, new_cls: type | None, old_cls: type | None, undo: list[Any]) -> Any:
    """The value to store: the old object updated in place when possible, else the new one."""
    if isinstance(old, types.FunctionType) and isinstance(new, types.FunctionType):
        return old if update_function(old, new, new_cls, old_cls, undo) else new
    if isinstance(old, (staticmethod, classmethod)) and type(old) is type(new):
        if isinstance(old.__func__, types.FunctionType) and isinstance(new.__func__, types.FunctionType):
            return old if update_function(old.__func__, new.__func__, new_cls, old_cls, undo) else new
    return new


def unpatchable_reason(old: type, new: type, mapped_bases: tuple[type, ...]) -> str | None:
    """Why ``old`` cannot take ``new``'s code in place (None: it can)."""
    if type(old) is not type(new):
        return f"its metaclass changed ({type(old).__name__} -> {type(new).__name__})"
    if vars(old).get("__slots__", _MISSING) != vars(new).get("__slots__", _MISSING):
        return "its __slots__ changed"
    if issubclass(old, enum.Enum) and issubclass(new, enum.Enum):
        before = {k: m.value for k, m in old.__members__.items()}
        if before != {k: m.value for k, m in new.__members__.items()}:
            return "its Enum members changed"
    if old.__basicsize__ != new.__basicsize__ or old.__itemsize__ != new.__itemsize__:
        return "its memory layout changed"
    if mapped_bases != old.__bases__:
        try:
            probe = type("probe", old.__bases__, {"__slots__": ()} if "__slots__" in vars(old) else {})
            probe.__bases__ = mapped_bases
        except TypeError as e:
            return f"its base classes changed incompatibly ({e})"
    return None


@dataclass
class _ModuleSnap:
    module: ModuleType
    path: str
    dict_before: dict[str, Any]
    classes: list[tuple[type, dict[str, Any], tuple[type, ...]]] = field(default_factory=list)
    source_before: bytes | None = None


class CodeSwap:
    """Re-execute ``modules`` (already in import order) in place, patch their classes.

    ``prepare()`` reads and compiles everything first and changes nothing; ``apply()``
    executes; ``rollback()`` undoes ``apply`` exactly (module dicts and class namespaces).
    """

    def __init__(self, modules: Sequence[ModuleType], new_sources: dict[str, bytes] | None = None) -> None:
        self.modules = list(modules)
        self._given = new_sources or {}
        self.codes: list[tuple[ModuleType, str, bytes, CodeType]] = []
        self.snaps: list[_ModuleSnap] = []
        self.class_map: dict[type, type] = {}  # new class -> old (patched) class
        self.unpatchable: dict[str, str] = {}  # "module.Class" -> reason
        self.changed = False
        self.compile_time = 0.0
        self._undo: list[Any] = []

    def prepare(self) -> bool:
        """Read and compile every module's source; True if any content differs from what runs."""
        t0 = time.perf_counter()
        for mod in self.modules:
            path = module_file(mod)
            if path is None:
                continue
            data = self._given.get(path)
            if data is None:
                data = read_bytes(path)
            code = compile_source(data, mod.__file__ or path)
            if source_hashes.get(path) != digest(data):
                self.changed = True
            self.codes.append((mod, path, data, code))
        self.compile_time = time.perf_counter() - t0
        return self.changed

    def apply(self) -> None:
        for mod, path, data, code in self.codes:
            snap = _ModuleSnap(mod, path, dict(mod.__dict__), source_before=sources.get(path))
            for value in snap.dict_before.values():
                if isinstance(value, type) and value.__module__ == mod.__name__:
                    snap.classes.append((value, dict(vars(value)), value.__bases__))
            self.snaps.append(snap)
            self._exec_one(mod, path, data, code, snap)

    def _exec_one(self, mod: ModuleType, path: str, data: bytes, code: CodeType, snap: _ModuleSnap) -> None:
        ns = mod.__dict__
        old_src = snap.source_before
        old_names = _names_for(old_src, path) if old_src is not None else None
        exec(code, ns)
        new_names = top_level_names(code)
        _names_cache[digest(data)] = new_names  # the next reload diffs against this: no recompile
        if len(_names_cache) > 64:
            _names_cache.pop(next(iter(_names_cache)))
        if old_names is not None and new_names is not None:
            for stale in old_names - new_names:
                if not stale.startswith("__"):
                    ns.pop(stale, None)
        before = snap.dict_before
        for name, value in list(ns.items()):
            old_fn = before.get(name)
            if (isinstance(value, types.FunctionType) and isinstance(old_fn, types.FunctionType)
                    and old_fn.__module__ == mod.__name__ and old_fn is not value
                    and update_function(old_fn, value, None, None, self._undo)):
                ns[name] = old_fn  # module-level function: keep its identity
        old_classes = {c.__qualname__: c for c, _, _ in snap.classes}
        for name, value in list(ns.items()):
            if not (isinstance(value, type) and value.__module__ == mod.__name__):
                continue
            old = old_classes.get(value.__qualname__)
            if old is None or old is value:
                continue
            self._patch_class(old, value, mod, name)
        record_run(path, data)

    def _patch_class(self, old: type, new: type, mod: ModuleType, name: str) -> None:
        mapped = tuple(self.class_map.get(b, b) for b in new.__bases__)
        reason = unpatchable_reason(old, new, mapped)
        if reason:
            self.unpatchable[f"{mod.__name__}.{name}"] = reason
            return
        if mapped != old.__bases__:
            old.__bases__ = mapped
        new_dict = vars(new)
        old_dict = vars(old)
        for k, v in new_dict.items():
            if k in _SKIP_ATTRS or isinstance(v, (types.MemberDescriptorType, types.GetSetDescriptorType)):
                continue
            _repoint_class_cells(v, new, old)
            if k in old_dict:
                v = _in_place(old_dict[k], v, new, old, self._undo)
                if v is old_dict[k]:
                    continue
            setattr(old, k, v)
        for k in list(vars(old)):
            v = vars(old)[k]
            if k not in new_dict and k not in _SKIP_ATTRS and not getattr(v, KEEP_MARK, False) and not \
                    isinstance(v, (types.MemberDescriptorType, types.GetSetDescriptorType)):
                delattr(old, k)
        mod.__dict__[name] = old
        self.class_map[new] = old

    def rollback(self) -> None:
        """Put every module dict and patched class back exactly as before ``apply``."""
        undo_updates(self._undo)
        for snap in reversed(self.snaps):
            for cls, before, bases in snap.classes:
                if cls.__bases__ != bases:
                    try:
                        cls.__bases__ = bases
                    except TypeError:
                        pass
                for k in list(vars(cls)):
                    if k not in before and k not in _SKIP_ATTRS:
                        try:
                            delattr(cls, k)
                        except (AttributeError, TypeError):
                            pass
                for k, v in before.items():
                    if k in _SKIP_ATTRS or vars(cls).get(k, _MISSING) is v:
                        continue
                    if isinstance(v, (types.MemberDescriptorType, types.GetSetDescriptorType)):
                        continue
                    try:
                        setattr(cls, k, v)
                    except (AttributeError, TypeError):
                        pass
            ns = snap.module.__dict__
            for k in list(ns):
                if k not in snap.dict_before:
                    del ns[k]
            for k, v in snap.dict_before.items():
                if ns.get(k, _MISSING) is not v:
                    ns[k] = v
            if snap.source_before is not None:
                record_run(snap.path, snap.source_before)
        self.snaps.clear()
