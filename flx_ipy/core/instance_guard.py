"""Keep other threads' calls into a plugin correct while it is being reloaded.

Calls into a plugin never go through the manager (``p = pm.get(name)`` is the object itself),
so a thread hammering ``p.inc()`` keeps running during a reload. Two things could lose its
writes, and this module prevents both, for the duration of one reload only:

* **Rollback.** Undoing a failed reload must put back what the *reload's hooks* wrote, not what
  other threads wrote meanwhile. A temporary ``__setattr__`` on the plugin's class records the
  names written by the threads running hooks; only those are reverted.
* **State hand-over.** With ``save_state``/``restore_state``, a write landing between the two
  would be overwritten by the restored state. A temporary ``__getattribute__`` makes other
  threads wait at their next attribute access (bound methods taken earlier included) from
  ``save_state`` until ``restore_state`` returns. While ``stop`` runs a waiter is let through
  after a short grace (``pm.handover_grace``), so a ``stop`` that joins a worker thread touching
  ``self`` delays the reload by that grace instead of deadlocking it (and that worker's last
  writes may then miss the saved state); otherwise a waiter is released after ``max_wait``.

Both are class attributes set on the (patched-in-place) plugin class and removed afterwards;
instances of other classes never pay for them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from .codeswap import KEEP_MARK

_MISSING = object()


def _next_in_mro(cls: type, name: str) -> Any:
    for klass in cls.__mro__[1:]:
        if name in vars(klass):
            return vars(klass)[name]
    return getattr(object, name)


class InstanceGuard:
    def __init__(self, instance: Any, hook_threads: Callable[[], Iterable[int | None]],
                 max_wait: float = 5.0) -> None:
        self.instance = instance
        self.cls = type(instance)
        self._hook_threads = hook_threads
        self.max_wait = max_wait
        #: name -> the last value a hook wrote (``_MISSING``: deleted)
        self.written: dict[str, Any] = {}
        self._open = threading.Event()
        self._open.set()
        self._prev: dict[str, Any] = {}  # what the class had before we first wrapped it
        self._ours: dict[str, Any] = {}  # our current wrapper per name
        self._all_ours: list[Any] = []  # every wrapper we ever set (a rollback may bring one back)

    # ----------------------------------------------------------------- install / remove
    def install(self, *, gate: bool) -> InstanceGuard:
        """(Re)install the write tracker and, with ``gate``, the access gate. Idempotent: the
        code swap may have replaced the class namespace in between."""
        self._install("__setattr__", self._make_setattr)
        self._install("__delattr__", self._make_delattr)
        if gate:
            self._install("__getattribute__", self._make_getattribute)
        return self

    def _is_ours(self, value: Any) -> bool:
        return any(value is w for w in self._all_ours)

    def _install(self, name: str, make: Callable[[], Any]) -> None:
        current = vars(self.cls).get(name, _MISSING)
        if current is not _MISSING and current is self._ours.get(name):
            return
        if not self._is_ours(current):
            self._prev[name] = current  # first wrap, or the swap brought the class's own one
        fn = make()
        self._ours[name] = fn
        self._all_ours.append(fn)
        type.__setattr__(self.cls, name, fn)

    def remove(self) -> None:
        self._open.set()
        for name in list(self._ours):
            if self._is_ours(vars(self.cls).get(name, _MISSING)):
                prev = self._prev.get(name, _MISSING)
                if prev is _MISSING:
                    type.__delattr__(self.cls, name)
                else:
                    type.__setattr__(self.cls, name, prev)
        self._ours.clear()

    @property
    def max_wait(self) -> float:
        return self._max_wait

    @max_wait.setter
    def max_wait(self, value: float) -> None:
        self._max_wait = value
        self._since = time.monotonic()

    def wait_open(self) -> None:
        """Wait for the gate, at most ``max_wait`` counted from the later of this wait's start
        and the last change of ``max_wait``. The reload shortens it (the grace) only while
        ``stop`` runs: a waiter is let through then (a worker ``stop`` joins), but one still
        waiting when ``stop`` is over waits on — released early, its write would land between
        ``save_state`` and ``restore_state`` and be lost."""
        start = time.monotonic()
        while not self._open.is_set():
            waited = time.monotonic() - max(start, self._since)
            if waited >= self._max_wait:
                return
            self._open.wait(min(self._max_wait - waited, 0.02))

    def close_gate(self) -> None:
        self._open.clear()

    def open_gate(self) -> None:
        self._open.set()

    # ----------------------------------------------------------------- the wrappers
    def in_hook_thread(self) -> bool:
        return threading.get_ident() in set(self._hook_threads())

    def _base(self, name: str) -> Any:
        prev = self._prev.get(name, _MISSING)
        return prev if prev is not _MISSING else _next_in_mro(self.cls, name)

    def _make_setattr(self) -> Any:
        guard, base, gate = self, self._base("__setattr__"), self._open

        def __setattr__(obj: Any, name: str, value: Any) -> None:
            if obj is guard.instance:
                if guard.in_hook_thread():
                    guard.written[name] = value
                elif not gate.is_set():  # a read-modify-write that began before the gate closed
                    guard.wait_open()
            base(obj, name, value)

        setattr(__setattr__, KEEP_MARK, True)
        return __setattr__

    def _make_delattr(self) -> Any:
        guard, base = self, self._base("__delattr__")

        def __delattr__(obj: Any, name: str) -> None:
            if obj is guard.instance and guard.in_hook_thread():
                guard.written[name] = _MISSING
            base(obj, name)

        setattr(__delattr__, KEEP_MARK, True)
        return __delattr__

    def _make_getattribute(self) -> Any:
        guard, base, gate = self, self._base("__getattribute__"), self._open

        def __getattribute__(obj: Any, name: str) -> Any:
            if not gate.is_set() and not guard.in_hook_thread():
                guard.wait_open()
            return base(obj, name)

        setattr(__getattribute__, KEEP_MARK, True)
        return __getattribute__

    # ----------------------------------------------------------------- rollback
    def revert(self, snapshot: dict[str, Any] | None, slots: dict[str, Any]) -> None:
        """Put back what the hooks wrote (and only that) as it was in ``snapshot``; a value
        another thread wrote after the hook is newer than both and stays."""
        inst = self.instance
        for name, hook_value in self.written.items():
            try:
                current = object.__getattribute__(inst, name)
            except AttributeError:
                current = _MISSING
            if current is not hook_value:
                continue
            if snapshot is not None and hasattr(inst, "__dict__") and name not in slots:
                d = vars(inst)
                if name in snapshot:
                    d[name] = snapshot[name]
                else:
                    d.pop(name, None)
            elif name in slots:
                try:
                    object.__setattr__(inst, name, slots[name])
                except AttributeError:
                    pass
