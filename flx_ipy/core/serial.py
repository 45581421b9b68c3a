"""One operation at a time: the manager's lock, and the events that wait for its release.

Every lifecycle operation and reload runs its steps under one lock, so two of them never
interleave; calls *into* plugins never take it, so a plugin stays callable while another is
being reloaded. Events an operation emits are queued and published after the lock is released,
so a subscriber may call back into the manager. ``PluginManager`` is built on this; it is a
module of its own because the rule (one lock, queued events, refusals as events) is one concept
and the manager's faces are another.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from time import perf_counter
from typing import Any, TypeVar

from .errors import HookError, InvalidStateError
from .events import EventBus
from .metrics import HookMetrics
from .steps import HookCall, HookRunner, Steps, adrive, drive

T = TypeVar("T")


class Serialised:
    """The lock, the queue of events held until it is released, and ``steps`` driven under it.

    A subclass supplies ``events`` (where events are published), ``hooks`` (where hook calls go)
    and ``hook_metrics`` (where they are timed) before the first operation runs."""

    events: EventBus
    hooks: HookRunner
    hook_metrics: HookMetrics

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._pending: list[tuple[str, str | None, dict[str, Any]]] = []

    def emit(self, kind: str, plugin: str | None = None, *, now: bool = False, **details: Any) -> None:
        """Queue an event while this thread runs an operation (``now``: publish the queue at
        once, in order); publish it directly otherwise."""
        if self._owner == threading.get_ident():
            self._pending.append((kind, plugin, details))
            if now:
                self._flush()
        else:
            self.events.publish(kind, plugin, **details)

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        for kind, plugin, details in pending:
            self.events.publish(kind, plugin, **details)

    def _released(self) -> None:
        self._owner = None
        self._lock.release()
        self._flush()

    @contextmanager
    def _locked(self, timeout: float = 60.0) -> Iterator[None]:
        me = threading.get_ident()
        if self._owner == me:
            raise InvalidStateError(
                "the plugin manager is already running an operation on this thread (a hook called "
                "back into the manager, or an awaited operation is still in progress)",
                hint="call it after the hook returns, or `await` the a-prefixed twin")
        if not self._lock.acquire(timeout=timeout):
            raise InvalidStateError(f"the plugin manager stayed busy for {timeout:g} s",
                                    hint="a plugin hook may be hanging; see `%plugin log`")
        self._owner = me
        try:
            yield
        finally:
            self._released()

    @asynccontextmanager
    async def _alocked(self, timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while not self._lock.acquire(blocking=False):
            if time.monotonic() > deadline:
                raise InvalidStateError(f"the plugin manager stayed busy for {timeout:g} s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.02)
        self._owner = threading.get_ident()
        try:
            yield
        finally:
            self._released()

    def exclusive(self, timeout: float = 60.0) -> AbstractContextManager[None]:
        """Hold the manager's lock, as an operation does, for work that is not one: an isolated
        plugin's restart after its worker crashed (``worker/supervise.py``) must not interleave
        with a reload. Raises ``InvalidStateError`` if the manager stays busy ``timeout``."""
        return self._locked(timeout)

    def _invoke(self, call: HookCall) -> Any:
        """Every hook call of a sync operation: through ``self.hooks``, timed into ``metrics()``
        (inline, not through ``HookMetrics.timed``: one call layer less on every hook call)."""
        t0 = perf_counter()
        try:
            result = self.hooks.invoke(call)
        except BaseException:
            self.hook_metrics.observe(call.plugin, call.hook, perf_counter() - t0, True)
            raise
        self.hook_metrics.observe(call.plugin, call.hook, perf_counter() - t0, False)
        return result

    async def _ainvoke(self, call: HookCall) -> Any:
        return await self.hook_metrics.atimed(self.hooks.ainvoke, call)

    def _run(self, steps: Steps[T]) -> T:
        with self._locked():
            try:
                return drive(steps, self._invoke)
            except Exception as e:
                self._refused(steps, e)
                raise

    async def _arun(self, steps: Steps[T]) -> T:
        async with self._alocked():
            try:
                return await adrive(steps, self._ainvoke)
            except Exception as e:
                self._refused(steps, e)
                raise

    def _refused(self, steps: Any, exc: Exception) -> None:
        """An operation that raised is an ``operation_failed`` event (the audit log's record of
        it), unless a ``failed`` event already told (a hook raised: ``HookError``)."""
        if isinstance(exc, HookError):
            return
        op = getattr(steps, "__name__", "operation").removesuffix("_steps")
        self.emit("operation_failed", getattr(exc, "plugin", None), operation=op,
                  error=" ".join(str(exc).split()), error_type=type(exc).__name__,
                  denied=bool(getattr(exc, "denied", False)))
