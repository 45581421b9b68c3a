"""Name the plugin whose code blocked the kernel's event loop (Home Assistant's technique).

A watchdog thread posts a heartbeat to the loop every ``interval``; when one has not run after
``threshold`` (100 ms), the loop is blocked and the watchdog looks at what the loop's thread is
running (``sys._current_frames``). The innermost frame in a loaded plugin's file names the
plugin. One warning and one ``loop_blocked`` event per offence: the offence ends when the loop
answers again. Blocking that is not in a plugin's code (a long cell, the kernel itself) is not
reported — while a cell runs, a blocked loop is how ipykernel works, so ``busy()`` skips it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("flx_ipy")

__all__ = ["LoopWatchdog", "plugin_at"]


def plugin_at(pm: Any, frame: Any) -> tuple[str, str] | None:
    """``(plugin, "file:line")`` of the innermost frame that runs a loaded plugin's code."""
    owners: dict[str, str] = {}
    packages: list[tuple[str, str]] = []
    for name, rec in list(pm.plugins.items()):
        for f in rec.files:
            owners[f] = name
        if rec.package_dir:
            packages.append((rec.package_dir + os.sep, name))
    while frame is not None:
        fn = os.path.normcase(os.path.abspath(frame.f_code.co_filename))
        name = owners.get(fn) or next((n for d, n in packages if fn.startswith(d)), None)
        if name is not None:
            return name, f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return None


class LoopWatchdog:
    def __init__(self, pm: Any, loop: Any, *, threshold: float = 0.1, interval: float = 0.025,
                 busy: Callable[[], bool] = lambda: False) -> None:
        self.pm, self.loop = pm, loop
        self.threshold, self.interval = threshold, interval
        self.busy = busy
        self.offences: list[dict[str, Any]] = []
        self._sent: float | None = None  # when the unanswered heartbeat was posted
        self._current: dict[str, Any] | None = None
        self._loop_thread: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> LoopWatchdog:
        def learn() -> None:
            self._loop_thread = threading.get_ident()

        self.loop.call_soon_threadsafe(learn)
        self._thread = threading.Thread(target=self._run, name="flx_ipy-loopwatch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _beat(self) -> None:
        self._sent = None
        cur, self._current = self._current, None
        if cur is not None:
            cur["duration"] = time.monotonic() - cur["_t0"]

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            sent = self._sent
            if sent is None:
                self._sent = time.monotonic()
                try:
                    self.loop.call_soon_threadsafe(self._beat)
                except RuntimeError:  # the loop closed: the kernel is going away
                    return
                continue
            lag = time.monotonic() - sent
            if lag > self.threshold and self._current is None and not self.busy():
                self._report(lag, sent)

    def _report(self, lag: float, sent: float) -> None:
        frame = sys._current_frames().get(self._loop_thread) if self._loop_thread is not None else None
        found = plugin_at(self.pm, frame)
        if found is None:
            return  # not a plugin's code (yet): look again at the next tick of this offence
        plugin, where = found
        offence: dict[str, Any] = {"_t0": sent, "plugin": plugin, "where": where, "blocked_for": lag}
        self._current = offence  # one report per offence
        self.offences.append(offence)
        log.warning("flx_ipy: plugin %s blocked the kernel's event loop for over %.0f ms, at %s "
                    "(use `async` I/O or run blocking work in a thread)", plugin, lag * 1000, where)
        self.pm.events.publish("loop_blocked", plugin, where=where, blocked_for=lag, threshold=self.threshold)
