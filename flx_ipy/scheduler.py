"""Where and when a watched save is applied inside IPython: between cells, never in one.

The watcher (``flx_ipy.core.watcher``) runs in a daemon thread and hands each settled change
to :meth:`ReloadScheduler.applier` as a zero-argument function. Running that function in the
watcher thread would swap modules under a running cell, and even ``call_soon_threadsafe`` on
the kernel's loop lands in the middle of an ``await`` cell (``docs/architecture.md``).
So:

* The change is queued, and the kernel's loop is woken (``call_soon_threadsafe``). If no cell
  runs when the loop gets to it, the change is applied there and then — an idle kernel applies
  a save with no cell run.
* Cells are counted per thread under one condition lock (``pre_execute`` / ``post_execute``).
  ipykernel 7 subshells run cells on other threads, so the count is not a boolean and a
  reload is never assumed to run on the main thread. ``post_execute`` fires even for a cell
  that never fired ``pre_execute`` (an empty cell), so a thread's count never goes below zero.
* A change that arrives while any cell runs waits for the count to reach zero and is applied
  by whichever thread's ``post_execute`` got it there — right after the cell, before the next.
  While a change is being applied, a cell about to start on another thread waits for it, so a
  cell always sees one version.
* Terminal IPython runs no loop at the prompt unless ``%gui asyncio`` is on; then the prompt's
  loop is woken the same way. Without it, ``pre_execute`` applies what is queued just before
  the next cell runs (the fallback).

Failures applied in the background are kept as one-line notices, printed at the start of the
next cell (``pre_run_cell``: not for silent executes, whose output nobody sees). A notice about
a plugin that has since been unloaded is dropped (:meth:`ReloadScheduler.forget`).

A save queued while a cell runs is counted (``saves_waiting``) and announced through
``on_waiting(count)`` — the extension turns it into a ``saves_waiting`` manager event, so the
panels and the status line say "1 save waiting for the running cell" until it is applied.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger("flx_ipy")

__all__ = ["ReloadScheduler", "kernel_loop"]

#: how long a cell about to start waits for a reload in progress on another thread
_APPLY_WAIT = 60.0


def kernel_loop(ip: Any) -> Any:
    """The kernel's asyncio loop, captured once: a watcher thread has no running loop to ask."""
    kernel = getattr(ip, "kernel", None)
    io_loop = getattr(kernel, "io_loop", None)
    loop = getattr(io_loop, "asyncio_loop", None)
    if loop is None and kernel is not None:
        try:
            import asyncio

            loop = asyncio.get_event_loop_policy().get_event_loop()
        except Exception:  # pragma: no cover - no loop to be found: pre_execute still applies
            loop = None
    return loop


class ReloadScheduler:
    """Runs watcher changes where they are safe; see the module docstring for the rules."""

    def __init__(self, ip: Any, *, on_notice: Callable[[str, str], Any] | None = None) -> None:
        self.ip = ip
        self.loop = kernel_loop(ip)
        self.on_notice = on_notice
        self._cond = threading.Condition()
        self._depth: dict[int, int] = {}
        self._running = 0
        self._applying: int | None = None  # thread id applying a batch now
        self._pending: deque[Callable[[], Any]] = deque()
        self._notices: dict[str, str] = {}
        self._installed = False
        #: called with the number of saves held back by a running cell (0 once applied)
        self.on_waiting: Callable[[int], Any] | None = None
        #: called with each applied batch's results and where it ran ("idle", "after cell", ...)
        self.on_applied: Callable[[list[Any], str], Any] | None = None
        self._saves_waiting = 0
        #: counters for tests and diagnostics: changes received, batches applied, and where
        self.handed = 0
        self.applied = 0
        self.deferred = 0
        self.last_where: str | None = None
        self.last_thread: str | None = None

    # ----------------------------------------------------------------- install
    def install(self) -> ReloadScheduler:
        if not self._installed:
            ev = self.ip.events
            ev.register("pre_execute", self.pre_execute)
            ev.register("post_execute", self.post_execute)
            ev.register("pre_run_cell", self.pre_run_cell)
            self._installed = True
        return self

    def uninstall(self) -> None:
        if not self._installed:
            return
        ev = self.ip.events
        for name, cb in (("pre_execute", self.pre_execute), ("post_execute", self.post_execute),
                         ("pre_run_cell", self.pre_run_cell)):
            try:
                ev.unregister(name, cb)
            except ValueError:
                pass
        self._installed = False
        with self._cond:
            self._pending.clear()
            self._saves_waiting = 0
            self._cond.notify_all()

    # ----------------------------------------------------------------- state
    @property
    def running(self) -> int:
        """Cells running now, over all threads (main shell and subshells)."""
        with self._cond:
            return self._running

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._pending)

    def idle_loop(self) -> Any:
        """The loop that runs while no cell does: the kernel's, or the terminal prompt's when
        ``%gui asyncio`` is on; None if only the next cell can apply a change."""
        if self.loop is not None:
            return self.loop
        if getattr(self.ip, "active_eventloop", None) == "asyncio":
            from IPython.core.async_helpers import get_asyncio_loop

            return get_asyncio_loop()
        return None

    # ----------------------------------------------------------------- the watcher's side
    def applier(self, fn: Callable[[], Any]) -> None:
        """Given to ``pm.watch(applier=...)``; called in the watcher thread. Never applies here."""
        with self._cond:
            self._pending.append(fn)
            self.handed += 1
            if self._running:
                self.deferred += 1
            self._cond.notify_all()
        loop = self.idle_loop()
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self.drain, "idle")
            except RuntimeError:  # the loop is closed: the kernel is shutting down
                pass

    def save_applier(self, fn: Callable[[], Any]) -> None:
        """The watcher's applier: :meth:`applier`, and a save that must wait for a running cell
        is counted and announced (a queued click is the panel's to show, not counted here)."""
        with self._cond:
            waiting = self._running > 0
            if waiting:
                self._saves_waiting += 1
            count = self._saves_waiting
        if waiting:
            self._announce_waiting(count)
        self.applier(fn)

    @property
    def saves_waiting(self) -> int:
        with self._cond:
            return self._saves_waiting

    def _announce_waiting(self, count: int) -> None:
        if self.on_waiting is not None:
            try:
                self.on_waiting(count)
            except Exception:
                log.debug("flx_ipy: saves-waiting callback failed", exc_info=True)

    def forget(self, plugin: str | None) -> None:
        """Drop the kept notice about ``plugin`` (it was unloaded: never name a plugin that is gone)."""
        if plugin is None:
            return
        with self._cond:
            self._notices.pop(plugin, None)

    def drain(self, where: str = "idle") -> int:
        """Apply everything queued if no cell runs (on the calling thread); else leave it for
        ``post_execute``. Returns how many changes were applied."""
        with self._cond:
            batch = self._take_locked()
        return self._apply(batch, where) if batch else 0

    # ----------------------------------------------------------------- IPython events
    def pre_execute(self) -> None:
        me = threading.get_ident()
        with self._cond:
            deadline = time.monotonic() + _APPLY_WAIT
            while self._applying is not None and self._applying != me:
                left = deadline - time.monotonic()
                if left <= 0 or not self._cond.wait(left):
                    break
            batch = self._take_locked()
            if not batch:
                self._enter_locked(me)
                return
        try:
            self._apply(batch, "before cell")
        finally:
            with self._cond:
                self._enter_locked(me)

    def post_execute(self) -> None:
        me = threading.get_ident()
        with self._cond:
            depth = self._depth.get(me, 0)
            if depth <= 0:
                return  # an empty cell fires post_execute without pre_execute
            if depth == 1:
                del self._depth[me]
            else:
                self._depth[me] = depth - 1
            self._running -= 1
            batch = self._take_locked()
        if batch:
            self._apply(batch, "after cell")

    def pre_run_cell(self, info: Any = None) -> None:
        if not self._notices:
            return
        for line in self.take_notices():
            print(line, file=sys.stderr)

    # ----------------------------------------------------------------- notices
    def notice(self, plugin: str, line: str) -> None:
        with self._cond:
            self._notices[plugin] = line
        if self.on_notice is not None:
            try:
                self.on_notice(plugin, line)
            except Exception:
                log.debug("flx_ipy: notice callback failed", exc_info=True)

    def take_notices(self) -> list[str]:
        with self._cond:
            out, self._notices = list(self._notices.values()), {}
        return out

    # ----------------------------------------------------------------- internals
    def _enter_locked(self, me: int) -> None:
        self._depth[me] = self._depth.get(me, 0) + 1
        self._running += 1

    def _take_locked(self) -> list[Callable[[], Any]]:
        """Claim the queue if nothing runs and nobody else is applying (caller holds the lock)."""
        if self._running or self._applying is not None or not self._pending:
            return []
        batch = list(self._pending)
        self._pending.clear()
        self._applying = threading.get_ident()
        return batch

    def _apply(self, batch: list[Callable[[], Any]], where: str) -> int:
        with self._cond:  # the batch is claimed: no save waits any more, it is being applied
            had_waiting, self._saves_waiting = self._saves_waiting, 0
        if had_waiting:
            self._announce_waiting(0)
        try:
            for fn in batch:
                try:
                    results = fn()
                except Exception as e:  # the manager refused (busy, closed): say so, keep going
                    log.debug("flx_ipy: applying a watched change failed", exc_info=True)
                    self.notice("*", f"flx_ipy: applying a saved change failed: {e} — `%plugin log` has "
                                     "the details")
                    continue
                self._review(results or [])
                if self.on_applied is not None and results:
                    try:
                        self.on_applied(list(results), where)
                    except Exception:
                        log.debug("flx_ipy: applied-callback failed", exc_info=True)
            self.applied += 1
            self.last_where = where
            self.last_thread = threading.current_thread().name
            return len(batch)
        finally:
            with self._cond:
                self._applying = None
                self._cond.notify_all()

    def _review(self, results: list[Any]) -> None:
        for r in results:
            name = getattr(r, "plugin", "?")
            if getattr(r, "ok", True):
                with self._cond:
                    self._notices.pop(name, None)
                continue
            summary = r.summary() if hasattr(r, "summary") else str(r)
            self.notice(name, f"flx_ipy: {summary}; fix the file and save again "
                              f"(`%plugin error {name}` shows the traceback)")
