"""Per-plugin timings, taken where every hook call passes: the manager hands each ``HookCall``
to its runner (``pm.hooks``, in-process or a worker) and times it there (``observe``).

What VS Code's "Running Extensions" and Home Assistant show — which plugin is slow, in which
hook — needs only counts, totals, maxima and a latency histogram per hook, and reload outcomes
with their durations. Recording is a dict lookup, a few adds and a bisect (0.45 to 1.2 us a
call with the clock reads, ``benchmarks/bench_ops.py``); nothing is formatted until someone asks
(``pm.metrics()``, the ``/metrics`` scrape), so the hot path carries no cost for exporters.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any

from .steps import HookCall
from .types import Event

#: histogram bucket upper bounds in seconds: one per decade from 100 µs (most hooks of an
#: in-process plugin finish in microseconds) to 10 s. Few buckets on purpose: every bucket is a
#: series per plugin and hook, and the scrape's cost grows with them (benchmarks/bench_ops.py)
BUCKETS: tuple[float, ...] = (0.0001, 0.001, 0.01, 0.1, 1.0, 10.0)


class HookStats:
    __slots__ = ("buckets", "count", "errors", "max", "total")

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self.total = 0.0
        self.max = 0.0
        self.buckets = [0] * (len(BUCKETS) + 1)  # last: above the largest bound (+Inf)

    def to_dict(self) -> dict[str, Any]:
        cum, out = 0, []
        for bound, n in zip((*BUCKETS, "+Inf"), self.buckets, strict=True):
            cum += n
            out.append((bound, cum))  # cumulative, as Prometheus counts; "+Inf" keeps it JSON-safe
        return {"count": self.count, "errors": self.errors, "total": self.total, "max": self.max,
                "mean": self.total / self.count if self.count else 0.0, "buckets": out}


class ReloadStats:
    __slots__ = ("by_outcome", "last", "max", "total")

    def __init__(self) -> None:
        self.by_outcome: dict[str, int] = {"ok": 0, "rolled_back": 0, "failed": 0}
        self.total = 0.0
        self.max = 0.0
        self.last: float | None = None

    def to_dict(self) -> dict[str, Any]:
        n = sum(self.by_outcome.values())
        return {"count": n, **self.by_outcome, "total_duration": self.total, "max_duration": self.max,
                "mean_duration": self.total / n if n else 0.0, "last_duration": self.last}


class HookMetrics:
    """Collected per manager. ``observe`` is the hot path; everything else is for readers."""

    def __init__(self) -> None:
        self._hooks: dict[tuple[str, str], HookStats] = {}
        self._reloads: dict[str, ReloadStats] = {}
        self._lock = threading.Lock()
        self.enabled = True

    def observe(self, plugin: str, hook: str, seconds: float, failed: bool = False) -> None:
        # No lock: a lost increment under a rare race is cheaper than a lock on every hook call
        # (counters are monotonic; a reader sees a consistent-enough snapshot).
        st = self._hooks.get((plugin, hook))
        if st is None:
            st = self._hooks.setdefault((plugin, hook), HookStats())
        st.count += 1
        st.total += seconds
        if seconds > st.max:
            st.max = seconds
        st.buckets[bisect_left(BUCKETS, seconds)] += 1
        if failed:
            st.errors += 1

    def timed(self, invoke: Callable[[HookCall], Any], call: HookCall) -> Any:
        """``invoke(call)``, timed: two clock reads and one ``observe`` around the runner."""
        t0 = perf_counter()
        try:
            result = invoke(call)
        except BaseException:
            self.observe(call.plugin, call.hook, perf_counter() - t0, True)
            raise
        self.observe(call.plugin, call.hook, perf_counter() - t0, False)
        return result

    async def atimed(self, ainvoke: Callable[[HookCall], Awaitable[Any]], call: HookCall) -> Any:
        t0 = perf_counter()
        try:
            result = await ainvoke(call)
        except BaseException:
            self.observe(call.plugin, call.hook, perf_counter() - t0, True)
            raise
        self.observe(call.plugin, call.hook, perf_counter() - t0, False)
        return result

    def observe_reload(self, plugin: str, outcome: str, seconds: float) -> None:
        with self._lock:
            st = self._reloads.get(plugin)
            if st is None:
                st = self._reloads[plugin] = ReloadStats()
            st.by_outcome[outcome] = st.by_outcome.get(outcome, 0) + 1
            st.total += seconds
            st.max = max(st.max, seconds)
            st.last = seconds

    def on_event(self, registry: Any, ev: Event) -> None:
        """Reload outcomes come from the manager's events (no cost inside the transaction)."""
        if ev.kind == "reloaded":
            self.observe_reload(ev.plugin or "?", "ok", float(ev.details.get("duration") or 0.0))
        elif ev.kind == "reload_failed":
            rec = registry.get(ev.plugin)
            last = getattr(rec, "last_reload", None)
            outcome = "rolled_back" if ev.details.get("rolled_back") else "failed"
            self.observe_reload(ev.plugin or "?", outcome, float(getattr(last, "duration", 0.0) or 0.0))

    def forget(self, plugin: str) -> None:
        for key in [k for k in list(self._hooks) if k[0] == plugin]:
            self._hooks.pop(key, None)
        self._reloads.pop(plugin, None)

    def for_plugin(self, plugin: str) -> dict[str, Any]:
        """One plugin's entry of :meth:`snapshot`, without formatting every other plugin's
        (a panel re-reads one row per event)."""
        hooks = {hook: st.to_dict() for (p, hook), st in list(self._hooks.items()) if p == plugin}
        rst = self._reloads.get(plugin)
        return {"hooks": hooks, "reloads": (rst or ReloadStats()).to_dict(),
                "slowest_hook": max(hooks, key=lambda h: hooks[h]["max"]) if hooks else None}

    def snapshot(self, also: Any = ()) -> dict[str, dict[str, Any]]:
        """``{plugin: {"hooks": {hook: stats}, "reloads": stats, "slowest_hook": name|None}}``
        for every plugin seen, plus the names in ``also`` (loaded plugins with no calls yet)."""
        names = {p for p, _ in list(self._hooks)} | set(self._reloads) | set(also)
        out: dict[str, dict[str, Any]] = {n: {"hooks": {}, "reloads": ReloadStats().to_dict(), "slowest_hook": None}
                                          for n in names}
        for (plugin, hook), st in list(self._hooks.items()):
            if plugin in out:
                out[plugin]["hooks"][hook] = st.to_dict()
        for plugin, rst in list(self._reloads.items()):
            if plugin in out:
                out[plugin]["reloads"] = rst.to_dict()
        for entry in out.values():
            hooks = entry["hooks"]
            if hooks:
                entry["slowest_hook"] = max(hooks, key=lambda h: hooks[h]["max"])
        return out
