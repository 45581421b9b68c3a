"""The loop-lag watchdog on a real asyncio loop in a thread: a plugin's blocking code is named."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flx_ipy import PluginManager
from flx_ipy.loopwatch import LoopWatchdog
from flx_ipy.testing import plugin_source, wait_for, write_plugin

BLOCKER = """
    def block(self, seconds):
        import time
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:  # busy, as CPU-bound plugin code would be
            pass
"""


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    t = threading.Thread(target=lp.run_forever, daemon=True)
    t.start()
    yield lp
    lp.call_soon_threadsafe(lp.stop)
    t.join(5)
    lp.close()


def _run_on(loop: asyncio.AbstractEventLoop, fn, *args) -> threading.Event:  # type: ignore[no-untyped-def]
    done = threading.Event()

    def call() -> None:
        try:
            fn(*args)
        finally:
            done.set()

    loop.call_soon_threadsafe(call)
    return done


def test_blocking_plugin_code_is_named_once_per_offence(pm: PluginManager, plugin_dir: Path,
                                                        loop: asyncio.AbstractEventLoop) -> None:
    path = write_plugin(plugin_dir / "slowpoke.py", plugin_source("slowpoke", "1.0.0", BLOCKER))
    pm.load(str(path), start=True)
    dog = LoopWatchdog(pm, loop, threshold=0.1, interval=0.01).start()
    try:
        wait_for(lambda: dog._loop_thread is not None)
        assert _run_on(loop, pm.get("slowpoke").block, 0.4).wait(5)
        wait_for(lambda: dog._current is None and dog.offences, timeout=5)
        events = pm.events.history(kinds=["loop_blocked"])
        assert len(events) == 1 and events[0].plugin == "slowpoke"  # once, though blocked 4x the threshold
        assert str(path) in events[0].details["where"] and events[0].details["blocked_for"] > 0.1
        assert dog.offences[0]["duration"] >= 0.3
        _run_on(loop, time.sleep, 0.3).wait(5)  # not a plugin's code: not reported
        wait_for(lambda: dog._sent is None or time.monotonic() - dog._sent < 0.05, timeout=5)
        assert len(dog.offences) == 1
        _run_on(loop, pm.get("slowpoke").block, 0.25).wait(5)  # a second offence: a second report
        wait_for(lambda: len(pm.events.history(kinds=["loop_blocked"])) == 2, timeout=5)
    finally:
        dog.stop()


def test_short_blocks_and_busy_kernels_are_not_offences(pm: PluginManager, plugin_dir: Path,
                                                        loop: asyncio.AbstractEventLoop) -> None:
    path = write_plugin(plugin_dir / "slowpoke.py", plugin_source("slowpoke", "1.0.0", BLOCKER))
    pm.load(str(path), start=True)
    busy = threading.Event()
    dog = LoopWatchdog(pm, loop, threshold=0.15, interval=0.01, busy=busy.is_set).start()
    try:
        for _ in range(3):
            _run_on(loop, pm.get("slowpoke").block, 0.02).wait(5)
        busy.set()  # a cell runs: the loop is blocked by design
        _run_on(loop, pm.get("slowpoke").block, 0.4).wait(5)
        done = threading.Event()
        loop.call_soon_threadsafe(done.set)
        assert done.wait(5)
        assert dog.offences == [] and not pm.events.history(kinds=["loop_blocked"])
    finally:
        dog.stop()
