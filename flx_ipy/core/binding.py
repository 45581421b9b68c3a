"""Bind the old, patched class at the moment a class statement stores its name.

While a plugin module's new source runs, ``builtins.__build_class__`` is wrapped: a class
statement of that module (recognised by its body's ``__globals__`` being the module's dict, on
the reloading thread) first builds the new class as usual, then — if the module had a class of
the same ``__qualname__`` before — patches the old class with the new namespace and hands the
*old* class back, so the statement binds it. Code that runs later in the module sees the
module's class: ``DEFAULT = Helper()`` is an instance of ``mod.Helper``, class-keyed registries
and decorators get the class that existing objects have, a class that derives from it derives
from the patched base, a metaclass defined in the module is the patched one, and a nested class
statement (``C.D``) patches ``C.D`` in place before ``C`` itself is patched.

Why this and not an AST rewrite or a module-dict subclass: the class statement itself stays
untouched (tracebacks, ``__set_name__``, ``__init_subclass__`` all behave as in a plain import),
nothing is compiled differently, and the wrap exists only while a reload executes code —
other threads building classes meanwhile go straight to the original. A rollback restores the
class namespaces from the swap's snapshot, as before.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Patcher = Callable[[type, type, Any], bool]  # (old, new, new class body code) -> patched in place?

_lock = threading.Lock()
_original: Any = None
_depth = 0
# id(module dict) -> (thread id, {qualname: old class}, patcher)
_active: dict[int, tuple[int, dict[str, type], Patcher]] = {}


def _build_class(func: Any, name: str, *bases: Any, **kwargs: Any) -> Any:
    new = _original(func, name, *bases, **kwargs)
    entry = _active.get(id(getattr(func, "__globals__", None)))
    if entry is None or entry[0] != threading.get_ident() or not isinstance(new, type):
        return new
    _, olds, patch = entry
    old = olds.get(new.__qualname__)
    if old is None or old is new or old.__module__ != new.__module__:
        return new
    return old if patch(old, new, getattr(func, "__code__", None)) else new


def old_classes(ns: dict[str, Any], module: str) -> dict[str, type]:
    """The module's classes (nested ones too) by ``__qualname__``."""
    out: dict[str, type] = {}

    def visit(cls: type) -> None:
        if cls.__qualname__ in out:
            return
        out[cls.__qualname__] = cls
        for k, v in list(vars(cls).items()):
            if isinstance(v, type) and v.__module__ == module and v.__qualname__ == f"{cls.__qualname__}.{k}":
                visit(v)

    for value in list(ns.values()):
        if isinstance(value, type) and value.__module__ == module and "<locals>" not in value.__qualname__:
            visit(value)
    return out


def nested_of(cls: type, module: str) -> Iterator[type]:
    for k, v in list(vars(cls).items()):
        if isinstance(v, type) and v.__module__ == module and v.__qualname__ == f"{cls.__qualname__}.{k}":
            yield v
            yield from nested_of(v, module)


@contextmanager
def binding_old_classes(ns: dict[str, Any], olds: dict[str, type], patch: Patcher) -> Iterator[None]:
    """While the block runs, class statements executed in ``ns`` on this thread bind the
    patched old class (see the module docstring)."""
    global _original, _depth
    with _lock:
        if _depth == 0:
            _original = builtins.__build_class__
            builtins.__build_class__ = _build_class  # type: ignore[assignment]
        _depth += 1
        _active[id(ns)] = (threading.get_ident(), olds, patch)
    try:
        yield
    finally:
        with _lock:
            _active.pop(id(ns), None)
            _depth -= 1
            if _depth == 0:
                if builtins.__build_class__ is _build_class:  # type: ignore[comparison-overlap]
                    builtins.__build_class__ = _original
