"""Swap a plugin's code in place, as one transaction that can be undone exactly.

How (and why not the alternatives, all measured — see ``docs/architecture.md``):

* Each module's new source runs **in its own dict** (as ``importlib.reload`` does), compiled
  from the bytes just read, so functions keep one ``__globals__`` and no ``.pyc`` can be stale —
  but only the **top-level statements that changed** (``toplevel.py``; the rules, for plugin
  authors: ``docs/reload-semantics.md``): unchanged assignments keep their objects.
  Names the old source defined at top level and the new one no longer does are removed;
  names created at run time are left alone. The dict is snapshotted first, so a rollback puts
  back every binding — and never leaves a moment where an existing name is missing, so a call
  on another thread runs the old or the new version, never neither.
* Each old class object is **patched with the new class's namespace** (and the zero-arg
  ``super()`` ``__class__`` cell re-pointed to it) at the moment its class statement binds the
  name, which then binds the old class (``binding.py``): code below sees the module's class.
  Instances, bound methods, ``isinstance`` checks and pickles keep working and run the new
  code, with no heap walk (IPython's superreload walks the heap: 152 ms at 10 M objects).
* Functions keep their identity: the old object takes the new code, or — when the closure
  shape changed (a decorator added or removed) — redirects to the new one (``redirect.py``).
* What cannot be patched in place — a changed ``__slots__`` layout, changed Enum members, a
  different metaclass or an incompatible base — is reported in ``unpatchable`` so the manager
  moves the plugin onto a fresh instance through its state.
"""

from __future__ import annotations

import enum
import time
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import CodeType, ModuleType
from typing import Any

from . import redirect as _redirect
from . import toplevel
from .binding import binding_old_classes, old_classes
from .files import digest, module_file, read_bytes, record_run, source_hashes, sources

_MISSING = object()
#: a class attribute carrying this mark (set to True) is not ours to remove when the new source
#: lacks it: the instance guard's temporary wrappers live on the class during a swap
KEEP_MARK = "flx_ipy_keep"
_SKIP_ATTRS = frozenset({"__dict__", "__weakref__"})


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
    if "__wrapped__" in old.__dict__ and "__wrapped__" not in new.__dict__:
        del old.__dict__["__wrapped__"]  # a redirect's target, or a decorator that was removed
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


def swap_function(old: types.FunctionType, new: Any, new_cls: type | None, old_cls: type | None,
                  undo: list[Any]) -> bool:
    """Give ``old`` the behaviour of ``new`` (a function, or any callable a decorator returned):
    its code patched in place when the closure shapes match, else a redirect to ``new``
    (``redirect.py``). False: ``old`` is left alone and the caller binds ``new``."""
    if old is new or isinstance(new, type) or not callable(new):
        return old is new
    if isinstance(new, types.FunctionType):
        if update_function(old, new, new_cls, old_cls, undo):
            return True
        if _redirect.is_redirect(old):
            target = _redirect.target_of(old)
            if isinstance(target, types.FunctionType) and update_function(target, new, new_cls, old_cls, undo):
                return True
    return _redirect.redirect(old, new, undo)


def _in_place(old: Any, new: Any, new_cls: type | None, old_cls: type | None, undo: list[Any]) -> Any:
    """The value to store: the old object updated in place when possible, else the new one
    (then the old object, if it is a function, redirects to the new one)."""
    if isinstance(old, types.FunctionType) and isinstance(new, types.FunctionType):
        return old if swap_function(old, new, new_cls, old_cls, undo) else new
    if isinstance(old, (staticmethod, classmethod)) and type(old) is type(new):
        if isinstance(old.__func__, types.FunctionType) and callable(new.__func__):
            return old if swap_function(old.__func__, new.__func__, new_cls, old_cls, undo) else new
    if isinstance(old, types.FunctionType) and callable(new) and not isinstance(
            new, (type, staticmethod, classmethod, property)):
        swap_function(old, new, new_cls, old_cls, undo)  # old references run the decorated version
    return new


def unpatchable_reason(old: type, new: type, mapped_bases: tuple[type, ...],
                       class_map: dict[type, type] | None = None) -> str | None:
    """Why ``old`` cannot take ``new``'s code in place (None: it can). ``class_map`` maps the
    reload's new classes to the old ones they were patched into (a metaclass defined in the
    same module is the same metaclass)."""
    if (class_map or {}).get(type(new), type(new)) is not type(old):
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


_NOT_DATA = (type, types.FunctionType, types.MethodType, staticmethod, classmethod, property,
             types.BuiltinFunctionType)


def _enum_internals(cls: type) -> frozenset[str]:
    names = set(cls.__members__)  # type: ignore[attr-defined]
    names.update(k for k in vars(cls) if len(k) > 2 and k[0] == "_" and k[-1] == "_" and k[1] != "_")
    return frozenset(names)


@dataclass
class _ModuleSnap:
    module: ModuleType
    path: str
    dict_before: dict[str, Any]
    classes: list[tuple[type, dict[str, Any], tuple[type, ...]]] = field(default_factory=list)
    source_before: bytes | None = None
    olds: dict[str, type] = field(default_factory=dict)  # the module's classes by __qualname__


class CodeSwap:
    """Re-execute ``modules`` (already in import order) in place, patch their classes.

    ``prepare()`` reads and compiles everything first and changes nothing; ``apply()``
    executes; ``rollback()`` undoes ``apply`` exactly (module dicts and class namespaces).
    """

    def __init__(self, modules: Sequence[ModuleType], new_sources: dict[str, bytes] | None = None) -> None:
        self.modules = list(modules)
        self._given = new_sources or {}
        self.codes: list[tuple[ModuleType, str, bytes, toplevel.Split, toplevel.Split | None]] = []
        self.snaps: list[_ModuleSnap] = []
        self.class_map: dict[type, type] = {}  # new class -> old (patched) class
        self.unpatchable: dict[str, str] = {}  # "module.Class" -> reason
        self.changed = False
        self.compile_time = 0.0
        self.ran: dict[str, int] = {}  # module -> pieces of its top level that ran
        self._old_splits: dict[str, tuple[toplevel.Split | None, str]] = {}
        self._old_bodies: dict[str, dict[str, CodeType]] = {}
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
            fname = mod.__file__ or path
            before = sources.get(path)
            old_split = None
            if before is not None:
                try:
                    old_split = toplevel.split(before, fname)
                except SyntaxError:
                    old_split = None
            new_split = toplevel.split(data, fname, old_split)
            if source_hashes.get(path) != digest(data):
                self.changed = True
            self.codes.append((mod, path, data, new_split, old_split))
        self.compile_time = time.perf_counter() - t0
        return self.changed

    def apply(self) -> None:
        for mod, path, data, new_split, old_split in self.codes:
            snap = _ModuleSnap(mod, path, dict(mod.__dict__), source_before=sources.get(path))
            snap.olds = old_classes(snap.dict_before, mod.__name__)
            for value in snap.olds.values():
                snap.classes.append((value, dict(vars(value)), value.__bases__))
            self.snaps.append(snap)
            self._exec_one(mod, path, data, new_split, old_split, snap)

    def _exec_one(self, mod: ModuleType, path: str, data: bytes, new: toplevel.Split,
                  old: toplevel.Split | None, snap: _ModuleSnap) -> None:
        """Run the pieces of ``new`` that changed (``toplevel.py``; semantics in
        ``docs/reload-semantics.md``): a piece whose text ran before is skipped unless it is an
        import, deletes a name, reads a name a run piece rebound, or binds a name that is gone."""
        ns = mod.__dict__
        label = mod.__name__
        fname = mod.__file__ or path
        before = snap.dict_before
        previous: dict[bytes, list[toplevel.Piece]] = {}
        for pc in old.pieces if old is not None else ():
            previous.setdefault(pc.key, []).append(pc)
        rebound: set[str] = set()
        ran = 0
        self._old_splits[label] = (old, fname)
        with binding_old_classes(ns, snap.olds, lambda o, n, body: self._patch_into(o, n, label, body)):
            for index, pc in enumerate(new.pieces):
                matches = previous.get(pc.key)
                prev = matches.pop(0) if matches else None
                if (prev is not None and pc.kind != "import" and not pc.deletes and pc.binds is not None
                        and not (pc.reads & rebound) and all(n in ns for n in pc.binds)):
                    if prev.start != pc.start:
                        self._shift_lines(pc, pc.start - prev.start, ns, fname, label)
                    continue
                exec(toplevel.code_of(new, index, fname), ns)
                ran += 1
                for name in (pc.binds if pc.binds is not None else list(ns)):
                    value, was = ns.get(name, _MISSING), before.get(name, _MISSING)
                    if (pc.kind == "def" and isinstance(was, types.FunctionType) and was.__module__ == label
                            and value is not was and callable(value) and not isinstance(value, type)):
                        if swap_function(was, value, None, None, self._undo) and isinstance(value, types.FunctionType):
                            ns[name] = value = was  # the function keeps its identity
                    if value is not was:
                        rebound.add(name)
        self.ran[label] = ran
        old_names = old.names if old is not None else None
        if old_names is not None and new.names is not None:
            for stale in old_names - new.names:
                if not stale.startswith("__"):
                    ns.pop(stale, None)
        before = snap.dict_before
        for name, value in list(ns.items()):
            old_fn = before.get(name)
            if not (isinstance(old_fn, types.FunctionType) and old_fn.__module__ == mod.__name__
                    and old_fn is not value):
                continue
            if isinstance(value, types.FunctionType):
                if swap_function(old_fn, value, None, None, self._undo):
                    ns[name] = old_fn  # module-level function: keep its identity
            elif callable(value) and not isinstance(value, type):
                swap_function(old_fn, value, None, None, self._undo)  # a decorator's object: bound as is
        for name, value in list(ns.items()):
            if not (isinstance(value, type) and value.__module__ == mod.__name__):
                continue
            old_cls = snap.olds.get(value.__qualname__)
            if old_cls is None or old_cls is value:
                continue
            self._patch_class(old_cls, value, mod, name)
        record_run(path, data)

    def _patch_class(self, old: type, new: type, mod: ModuleType, name: str) -> None:
        """A class bound in the module without a class statement (``type(...)``, a decorator
        returning a new class): patch it and bind the old one."""
        if self._patch_into(old, new, mod.__name__):
            mod.__dict__[name] = old

    def _old_body(self, module: str, qualname: str) -> CodeType | None:
        bodies = self._old_bodies.get(module)
        if bodies is None:
            old, fname = self._old_splits.get(module, (None, ""))
            bodies = toplevel.class_bodies(old, fname) if old is not None else {}
            self._old_bodies[module] = bodies
        return bodies.get(qualname)

    def _keeps(self, old: type, k: str, ov: Any, v: Any, module: str, body: CodeType | None) -> bool:
        """Keep the class's current data object for ``k``: its assignment in the class body is
        unchanged (a registry or cache filled at run time stays; see docs/reload-semantics.md)."""
        if isinstance(ov, _NOT_DATA) or hasattr(type(ov), "__get__") or k.startswith("__"):
            return False
        try:
            if type(ov) is type(v) and bool(ov == v):
                return True  # equal to what the new source built: keep the object others hold
        except Exception:  # an == that raises or is not a truth value: ask the source instead
            pass
        if body is None:
            return False
        old_body = self._old_body(module, old.__qualname__)
        return old_body is not None and toplevel.same_assignment(old_body, body, k)

    def _patch_into(self, old: type, new: type, module: str, body: CodeType | None = None) -> bool:
        """Copy ``new``'s namespace into ``old``; False (and a note) if it cannot be.
        ``body``: the new class body's code (from its class statement), to tell which data
        attributes' assignments are unchanged."""
        if self.class_map.get(new) is old:
            return True
        mapped = tuple(self.class_map.get(b, b) for b in new.__bases__)
        reason = unpatchable_reason(old, new, mapped, self.class_map)
        if reason:
            self.unpatchable[f"{module}.{old.__qualname__}"] = reason
            return False
        if mapped != old.__bases__:
            old.__bases__ = mapped
        new_dict = vars(new)
        old_dict = vars(old)
        # an Enum keeps its member objects (same names and values, checked above) and the
        # bookkeeping that maps to them; Enum classes refuse to have members reassigned anyway
        keep = _enum_internals(old) if issubclass(old, enum.Enum) else frozenset()
        for k, v in new_dict.items():
            if k in _SKIP_ATTRS or k in keep or isinstance(v, (types.MemberDescriptorType, types.GetSetDescriptorType)):
                continue
            _repoint_class_cells(v, new, old)
            if k in old_dict:
                if self._keeps(old, k, old_dict[k], v, module, body):
                    continue
                v = _in_place(old_dict[k], v, new, old, self._undo)
                if v is old_dict[k]:
                    continue
            setattr(old, k, v)
        for k in list(vars(old)):
            v = vars(old)[k]
            if k not in new_dict and k not in _SKIP_ATTRS and k not in keep and not getattr(v, KEEP_MARK, False) \
                    and not isinstance(v, (types.MemberDescriptorType, types.GetSetDescriptorType)):
                delattr(old, k)
        self.class_map[new] = old
        return True

    def _shift_lines(self, pc: toplevel.Piece, delta: int, ns: dict[str, Any], fname: str, label: str) -> None:
        """An unchanged piece that moved: move the line numbers of what it defined, so
        tracebacks point at the right lines (its objects are left alone otherwise)."""
        lo, hi = pc.start - delta + 1, pc.stop - delta  # its old lines, 1-based
        seen: set[int] = set()

        def fix(fn: types.FunctionType) -> None:
            code = fn.__code__
            if id(fn) in seen or code.co_filename != fname or not lo <= code.co_firstlineno <= hi:
                return
            seen.add(id(fn))
            self._undo.append(("fn", fn, {a: getattr(fn, a) for a in _FN_ATTRS}, dict(fn.__dict__)))
            fn.__code__ = _moved_code(code, delta)

        def visit_class(cls: type, depth: int = 0) -> None:
            for v in list(vars(cls).values()):
                if isinstance(v, type) and v.__module__ == label and depth < 8:
                    if v.__qualname__.startswith(cls.__qualname__ + "."):
                        visit_class(v, depth + 1)
                    continue
                for f in _walk_functions(v):
                    fix(f)

        for name in pc.binds or ():
            value = ns.get(name)
            if isinstance(value, type) and value.__module__ == label:
                visit_class(value)
            else:
                for f in _walk_functions(value):
                    fix(f)

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


def _moved_code(code: CodeType, delta: int) -> CodeType:
    consts = tuple(_moved_code(c, delta) if isinstance(c, CodeType) else c for c in code.co_consts)
    return code.replace(co_firstlineno=code.co_firstlineno + delta, co_consts=consts)
