"""Keep health fresh in the panels: re-run health checks every so often while the kernel idles.

A health status is only as fresh as the last check, and a dashboard nobody clicks would show a
plugin as healthy long after its database went away. So while the kernel is idle, every
``interval`` seconds the checks run again; a change arrives at the panels as a
``health_changed`` event like any other. The checks run in a daemon thread (each already has
its timeout), never on the kernel's loop, never while a cell runs, and never two rounds at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("flx_ipy")

__all__ = ["HealthPoller", "after_rounds"]

#: called with the manager after each background round: UIs re-read the figures that move
#: without an event (an isolated worker's RSS and CPU, hook timings) on this existing tick
_after_round: list[Callable[[Any], object]] = []


def after_rounds(callback: Callable[[Any], object]) -> Callable[[], None]:
    """Call ``callback(pm)`` after every background health round; returns the function to stop."""
    _after_round.append(callback)

    def stop() -> None:
        if callback in _after_round:
            _after_round.remove(callback)

    return stop


class HealthPoller:
    def __init__(self, pm: Any, scheduler: Any, interval: float) -> None:
        self.pm = pm
        self.scheduler = scheduler
        self.interval = interval
        self.rounds = 0
        self._handle: Any = None
        self._loop: Any = None
        self._busy = threading.Lock()
        self._stopped = threading.Event()

    def start(self) -> HealthPoller:
        """Arm the timer on the idle loop (the kernel's); without one, or at interval 0, do nothing."""
        loop = self.scheduler.idle_loop()
        if loop is None or self.interval <= 0:
            return self
        self._loop = loop
        self._stopped.clear()
        loop.call_soon_threadsafe(self._arm)
        return self

    def stop(self) -> None:
        self._stopped.set()
        loop, handle = self._loop, self._handle
        if loop is not None and handle is not None:
            try:
                loop.call_soon_threadsafe(handle.cancel)
            except RuntimeError:  # the loop is closed: the kernel is shutting down
                pass

    def _arm(self) -> None:
        if not self._stopped.is_set() and self._loop is not None:
            self._handle = self._loop.call_later(self.interval, self._tick)

    def _tick(self) -> None:
        try:
            running = any(r.status == "running" for r in self.pm.plugins.values())
            if running and not self.scheduler.running and self._busy.acquire(blocking=False):
                threading.Thread(target=self._check, name="flx_ipy-health-poll", daemon=True).start()
        finally:
            self._arm()

    def _check(self) -> None:
        try:
            self.pm.health()
            self.rounds += 1
            for callback in list(_after_round):
                callback(self.pm)
        except Exception:  # health() reports plugin failures itself; this would be ours
            log.debug("flx_ipy: a background health round failed", exc_info=True)
        finally:
            self._busy.release()
