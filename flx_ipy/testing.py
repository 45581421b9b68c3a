"""Test seams, public so plugin authors test their plugins the way we test ours.

* ``ScriptedChanges`` stands in for watchfiles' ``RustNotify``: the test pushes change sets and
  the watcher sees exactly those, with no OS timing involved.
* ``ManualClock`` is a clock you advance by hand (settling, event times).
* ``write_plugin`` / ``plugin_source`` write plugin files the way an editor would (atomically
  by default, or in chunks to imitate a slow save).
"""

from __future__ import annotations

import os
import queue
import textwrap
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["ManualClock", "ScriptedChanges", "plugin_source", "save_seen", "wait_for", "write_plugin"]

MODIFIED = 2  # watchfiles.Change.modified


class ManualClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class ScriptedChanges:
    """A change source with ``RustNotify``'s shape. ``push(paths)`` delivers one change set;
    ``tick()`` delivers a timeout (lets the watcher's settler look again)."""

    def __init__(self) -> None:
        self._q: queue.Queue[Any] = queue.Queue()
        self.closed = False
        self.calls = 0
        self.delivered = 0
        self.idle = threading.Event()
        self._cond = threading.Condition()

    def push(self, *paths: str | os.PathLike[str], change: int = MODIFIED) -> None:
        self._q.put({(change, os.fspath(p)) for p in paths})

    def tick(self) -> None:
        self._q.put("timeout")

    def wait_consumed(self, timeout: float = 5.0) -> None:
        """Block until the watcher has processed everything pushed so far and asks for more."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._q.empty() and self.calls > self.delivered, timeout):
                raise TimeoutError("the watcher did not consume the scripted changes")

    def watch(self, debounce_ms: int, step_ms: int, timeout_ms: int, stop_event: Any) -> Any:
        with self._cond:
            self.calls += 1
            self._cond.notify_all()
        while True:
            if stop_event is not None and stop_event.is_set():
                return "stop"
            self.idle.set()
            try:
                item = self._q.get(timeout=0.01)
            except queue.Empty:
                continue
            self.idle.clear()
            with self._cond:
                self.delivered += 1
            return item

    def close(self) -> None:
        self.closed = True


def plugin_source(name: str = "counter", version: str = "1.0.0", body: str = "", *,
                  cls: str = "Counter", requires: Iterable[str] = (), header: str = "") -> str:
    """A minimal plugin module's source; ``body`` is the class body (dedented)."""
    body = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") if body.strip() else "    pass"
    reqs = f", requires={list(requires)!r}" if requires else ""
    return (
        "from flx_ipy import Plugin, PluginMetadata, HealthStatus, PluginState\n"
        f"{textwrap.dedent(header)}\n"
        f"class {cls}(Plugin):\n"
        f"    metadata = PluginMetadata(name={name!r}, version={version!r}{reqs})\n"
        f"{body}\n"
    )


def write_plugin(path: str | os.PathLike[str], source: str | bytes, *, atomic: bool = True,
                 chunks: int = 1, between: Any = None) -> Path:
    """Write ``source`` as an editor would: atomically (temp file + ``os.replace``) or in
    ``chunks`` writes to the file itself, calling ``between()`` after each partial write."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    data = source.encode() if isinstance(source, str) else source
    if chunks > 1:
        size = -(-len(data) // chunks)
        with open(p, "wb") as fh:
            for i in range(0, len(data), size):
                fh.write(data[i:i + size])
                fh.flush()
                if between is not None and i + size < len(data):
                    between()
        return p
    if atomic:
        tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, p)
    else:
        p.write_bytes(data)
    return p


def save_seen(pm: Any, path: str | os.PathLike[str], source: str | bytes, timeout: float = 10.0) -> Path:
    """Save like an editor, then wait until ``pm``'s watcher has handed the save over.

    For notebooks run by a machine: a person comes back to the notebook long after the reload,
    but nbclient starts the next cell within milliseconds, and in a kernel a reload is never
    applied in the middle of a cell. Waiting here (the watcher has *seen* the save) makes the
    reload land right after this cell, before the next one — as it would for a person.
    A save that is not news (the content already runs, or already failed) is never handed
    over, so waiting for one raises ``TimeoutError``.
    """
    watcher = pm.watcher
    if watcher is None:
        raise RuntimeError("save_seen needs watching on: `%plugin watch` or pm.watch()")
    seen = watcher.handed
    p = write_plugin(path, source)
    wait_for(lambda: watcher.handed > seen, timeout=timeout)
    return p


def wait_for(predicate: Any, timeout: float = 5.0, interval: float = 0.002) -> Any:
    """Poll ``predicate`` until truthy (returns its value) or raise ``TimeoutError``."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(interval)
