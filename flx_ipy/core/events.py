"""Publish every manager transition to subscribers, and keep a bounded history.

A UI that attaches late (a side panel opened after the fact) replays the history, then
follows live events. A subscriber that raises is logged and skipped, never allowed to break
the manager or starve the other subscribers (IPython's ``EventManager.trigger``).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from .types import Event

log = logging.getLogger("flx_ipy")

Subscriber = Callable[[Event], Any]

#: Event kinds the manager emits (more may be added; these are part of the contract).
KINDS = (
    "discovered", "loaded", "initialized", "started", "stopped", "unloaded", "failed",
    "reloading", "reloaded", "reload_failed", "health_changed", "dependency_reloaded",
    "watch_started", "watch_stopped",
    "error_cleared",  # a save back to the running version ended a kept reload failure (recovery.py)
    "saves_waiting",  # saves held back by a running cell (details: count; published by the IPython layer)
    "crashed",  # an isolated plugin's worker died (details: reason, returncode, pid; worker/supervise.py)
    "restarted",  # ... and serves again from its last good checkpoint (details: pid, state_age)
    "denied",  # an isolated plugin's call raised PermissionError in its sandbox (details: call, error)
    "loop_blocked",  # a plugin's code blocked the kernel's loop > 100 ms (details: where, blocked_for; loopwatch)
    # the plugin index's install into this process (details: distribution, version, previous, index,
    # wheel, sha256, target; install_failed: error), published by the host layer like saves_waiting
    "installed", "install_failed",
    # trust and audit (core/trust.py, core/audit.py): every refused operation is one too
    "signature_checked", "operation_failed", "audit_failed",
)


class EventBus:
    def __init__(self, history: int = 500, clock: Callable[[], float] = time.time) -> None:
        self._subscribers: list[Subscriber] = []
        self._history: deque[Event] = deque(maxlen=history)
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._clock = clock
        self.subscriber_errors = 0

    def subscribe(self, callback: Subscriber, *, replay: bool = False) -> Callable[[], None]:
        """Call ``callback(event)`` for each event; ``replay`` first feeds it the history."""
        with self._lock:
            past = list(self._history) if replay else []
            self._subscribers.append(callback)
        for ev in past:
            self._deliver(callback, ev)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def publish(self, kind: str, plugin: str | None = None, **details: Any) -> Event:
        with self._lock:
            ev = Event(kind, plugin, self._clock(), details, next(self._seq))
            self._history.append(ev)
            subs = list(self._subscribers)
        for cb in subs:
            self._deliver(cb, ev)
        return ev

    def _deliver(self, cb: Subscriber, ev: Event) -> None:
        try:
            cb(ev)
        except Exception:
            self.subscriber_errors += 1
            log.exception("flx_ipy: event subscriber %r raised on %s event (ignored)", cb, ev.kind)

    def history(self, n: int | None = None, *, plugin: str | None = None,
                kinds: Iterable[str] | None = None) -> list[Event]:
        with self._lock:
            items = list(self._history)
        if plugin is not None:
            items = [e for e in items if e.plugin == plugin]
        if kinds is not None:
            wanted = set(kinds)
            items = [e for e in items if e.kind in wanted]
        return items[-n:] if n else items

    def resize(self, maxlen: int) -> None:
        with self._lock:
            self._history = deque(self._history, maxlen=maxlen)
