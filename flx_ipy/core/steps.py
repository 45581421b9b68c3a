"""Calling plugin hooks that may be ``def`` or ``async def``, from sync and async callers.

Every manager operation is written once, as a generator that *yields* the hook calls it
needs (``HookCall``) and receives their results. Two drivers run it:

* ``drive_async`` awaits each call on the caller's loop (``await pm.astart(name)``).
* ``drive_sync`` calls sync hooks inline and runs coroutines on the manager's **hook loop**,
  a daemon thread with its own asyncio loop. That works the same in plain Python, in terminal
  IPython and inside ipykernel's running loop, without nest-asyncio (archived; in ipykernel 7 it
  silently drops messages — ``docs/architecture.md``). The trade-off: a sync call from a
  kernel cell runs an ``async def`` hook on that other loop, so a hook that needs objects bound
  to the kernel's loop should be driven with the awaitable twin. Tasks a hook spawns keep
  running on the hook loop between cells.

**The hook-call seam.** A ``HookRunner`` (``invoke`` / ``ainvoke`` one ``HookCall``) is the one
place a plugin's code is entered; ``InProcess`` is the runner that calls it here. Operations
never call a hook themselves, so a runtime that runs plugins elsewhere (a worker process) is a
second ``HookRunner`` for the same ``HookCall`` — ``plugin``, ``hook`` and ``args`` say what to
call; ``fn`` is only for the in-process runner — and every operation works unchanged on it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from .errors import HookError

T = TypeVar("T")


@dataclass
class HookCall:
    plugin: str
    hook: str
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    timeout: float | None = None
    #: run a sync hook in a helper thread so a hang can time out (health checks)
    isolate: bool = False


Steps = Generator[HookCall, Any, T]


class HookLoop:
    """A private asyncio loop in a daemon thread, started on first use."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self.thread_id: int | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    self.thread_id = threading.get_ident()
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                threading.Thread(target=run, name="flx_ipy-hooks", daemon=True).start()
                ready.wait()
                self._loop = loop
            return self._loop

    def run(self, aw: Awaitable[T], timeout: float | None) -> T:
        async def waited() -> T:
            return await asyncio.wait_for(aw, timeout)

        fut = asyncio.run_coroutine_threadsafe(waited(), self.loop)
        try:
            return fut.result()
        except concurrent.futures.CancelledError:
            raise asyncio.TimeoutError() from None

    def close(self) -> None:
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)


def _run_isolated(fn: Callable[..., Any], args: tuple[Any, ...], timeout: float | None) -> Any:
    """Run ``fn`` in a daemon thread and wait at most ``timeout``: a hung health check costs a
    parked thread, never a hung manager or a hung interpreter exit."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = fn(*args)
        except BaseException as e:
            box["error"] = e
        finally:
            done.set()

    threading.Thread(target=target, name="flx_ipy-health", daemon=True).start()
    if not done.wait(timeout):
        raise asyncio.TimeoutError()
    if "error" in box:
        raise box["error"]
    return box["value"]


def describe_timeout(call: HookCall) -> HookError:
    return HookError(f"{call.plugin}: {call.hook}() did not finish within {call.timeout:g} s",
                     call.plugin, hook=call.hook)


def invoke_sync(call: HookCall, hook_loop: HookLoop) -> Any:
    try:
        if call.isolate and not inspect.iscoroutinefunction(call.fn):
            result = _run_isolated(call.fn, call.args, call.timeout)
        else:
            result = call.fn(*call.args)
        if inspect.isawaitable(result):
            result = hook_loop.run(result, call.timeout)
    except asyncio.TimeoutError:
        raise describe_timeout(call) from None
    return result


async def invoke_async(call: HookCall) -> Any:
    try:
        if call.isolate and not inspect.iscoroutinefunction(call.fn):
            result = await asyncio.wait_for(asyncio.to_thread(call.fn, *call.args), call.timeout)
        else:
            result = call.fn(*call.args)
        if inspect.isawaitable(result):
            result = await asyncio.wait_for(result, call.timeout)
    except asyncio.TimeoutError:
        raise describe_timeout(call) from None
    return result


def drive(steps: Generator[Any, Any, T], invoke: Callable[[Any], Any]) -> T:
    """Run a generator of requests: each yielded request is ``invoke``d and its result (or
    exception) sent back in. Also drives the magics' commands, which yield manager calls."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            request = steps.throw(error) if error is not None else steps.send(value)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        value, error = None, None
        try:
            value = invoke(request)
        except BaseException as e:  # Ctrl-C too: the operation gets to undo what it began
            error = e


async def adrive(steps: Generator[Any, Any, T], ainvoke: Callable[[Any], Awaitable[Any]]) -> T:
    """``drive``'s awaitable twin: each request is awaited on the caller's loop."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            request = steps.throw(error) if error is not None else steps.send(value)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        value, error = None, None
        try:
            value = await ainvoke(request)
        except BaseException as e:  # cancellation too: the operation gets to undo what it began
            error = e


class HookRunner(Protocol):
    """Runs one ``HookCall`` and returns the hook's result (or raises what it raised); a
    timeout is a ``HookError`` (``describe_timeout``)."""

    def invoke(self, call: HookCall) -> Any: ...

    async def ainvoke(self, call: HookCall) -> Any: ...


class InProcess:
    """The runner for plugins in this process: sync hooks inline, ``async def`` hooks on the
    hook loop (sync callers) or on the caller's loop (awaiting callers)."""

    def __init__(self, hook_loop: HookLoop) -> None:
        self.hook_loop = hook_loop

    def invoke(self, call: HookCall) -> Any:
        return invoke_sync(call, self.hook_loop)

    async def ainvoke(self, call: HookCall) -> Any:
        return await invoke_async(call)


def drive_sync(steps: Steps[T], hook_loop: HookLoop) -> T:
    return drive(steps, lambda call: invoke_sync(call, hook_loop))


async def drive_async(steps: Steps[T]) -> T:
    return await adrive(steps, invoke_async)
