"""Give an old function object a new function's behaviour when its code cannot be swapped.

A function's ``__code__`` can only be replaced by code with the same number of free variables
(CPython checks it against the fixed ``__closure__`` tuple). Adding or removing a decorator that
wraps in a closure changes that number, so the old object cannot simply take the new code, and
rebinding the name leaves every reference taken earlier (a bound method kept as a callback, a
``from m import f``, a registry) on the old behaviour.

Instead the old function's code becomes a *redirect*: a tiny function body, built with exactly
as many (unused) free variables as the old closure has, that calls the new callable found in its
keyword-only default ``__flx_target__``. No closure cell is written (cells can be shared with
sibling functions, e.g. the ``__class__`` cell of every method), so nothing else changes
behaviour. ``__wrapped__`` points at the target so ``inspect.signature`` shows the real one.
A later reload re-points (or patches) the target; every change is recorded in the same undo log
as ``update_function`` so a rollback restores the original code exactly.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from typing import Any

TARGET = "__flx_target__"
NAME = "__flx_redirect__"
_codes: dict[tuple[int, str], types.CodeType] = {}

_BODY = {
    "plain": "    def __flx_redirect__(*args, __flx_target__, **kwargs):\n{ref}"
             "        return __flx_target__(*args, **kwargs)\n",
    "coroutine": "    async def __flx_redirect__(*args, __flx_target__, **kwargs):\n{ref}"
                 "        return await __flx_target__(*args, **kwargs)\n",
    "generator": "    def __flx_redirect__(*args, __flx_target__, **kwargs):\n{ref}"
                 "        return (yield from __flx_target__(*args, **kwargs))\n",
}


def _kind(target: Callable[..., Any]) -> str:
    if isinstance(target, types.FunctionType):
        if inspect.iscoroutinefunction(target):
            return "coroutine"
        if inspect.isgeneratorfunction(target):
            return "generator"
    return "plain"


def redirect_code(nfree: int, kind: str = "plain") -> types.CodeType:
    """Code of a redirect with ``nfree`` free variables (never read: ``if False``)."""
    key = (nfree, kind)
    code = _codes.get(key)
    if code is None:
        names = [f"_flx_c{i}" for i in range(nfree)]
        pre = "".join(f"    {n} = None\n" for n in names)
        ref = f"        if False: {', '.join(names)}\n" if names else ""
        src = "def _outer():\n" + pre + _BODY[kind].format(ref=ref) + "    return __flx_redirect__\n"
        ns: dict[str, Any] = {}
        exec(compile(src, "<flx_ipy redirect>", "exec", dont_inherit=True), ns)
        code = ns["_outer"]().__code__
        assert len(code.co_freevars) == nfree
        _codes[key] = code
    return code


def is_redirect(fn: types.FunctionType) -> bool:
    return fn.__code__.co_name == NAME and TARGET in (fn.__kwdefaults__ or {})


def target_of(fn: types.FunctionType) -> Any:
    return (fn.__kwdefaults__ or {}).get(TARGET)


_ATTRS = ("__code__", "__defaults__", "__kwdefaults__", "__doc__", "__annotations__", "__qualname__")


def redirect(old: types.FunctionType, target: Callable[..., Any], undo: list[Any]) -> bool:
    """Make calls to ``old`` run ``target``. False (nothing changed) if that is not safe:
    ``target`` is ``old`` itself or would call back into it."""
    if target is old or (isinstance(target, types.FunctionType) and is_redirect(target)
                         and target_of(target) is old):
        return False
    undo.append(("fn", old, {a: getattr(old, a) for a in _ATTRS}, dict(old.__dict__)))
    nfree = len(old.__closure__ or ())
    # kwdefaults first: the old code ignores an unknown keyword default, so a call landing
    # between the two assignments still runs the old version, never a broken one
    old.__kwdefaults__ = {TARGET: target}
    old.__code__ = redirect_code(nfree, _kind(target))
    old.__doc__ = getattr(target, "__doc__", None)
    if isinstance(target, types.FunctionType):
        old.__annotations__ = dict(target.__annotations__)
        old.__qualname__ = target.__qualname__
    old.__dict__["__wrapped__"] = target
    return True
