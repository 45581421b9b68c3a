"""Shared helpers for the reload, latency and soak benchmarks (not a benchmark itself).

* ``plugin_text(...)``: a realistic ~200-line plugin module (constants, module-level helpers, a
  helper class, a plugin class with state, every lifecycle hook and ~20 methods), with knobs the
  benchmarks and the soak turn: the value ``tag()`` returns, extra methods, a class attribute, the
  shape of ``save_state``, and a few ways to break it.
* ``machine()``, ``pct()``, ``append_results()``: report the same way as ``bench_discovery.py``,
  each benchmark under its own ``## ...`` heading of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "RESULTS.md"


# ---------------------------------------------------------------------------- the plugin
BROKEN_KINDS = ("syntax", "start_raises", "import_error", "validation", "restore_raises", "name_change")


def plugin_text(tag: int = 0, *, name: str = "bench", extras: Iterable[int] = (), limit: int = 10,
                shape: int = 1, broken: str | None = None, with_state: bool = True,
                body_variant: int = 0) -> str:
    """A ~200-line plugin module. ``tag()`` returns ``tag + body_variant`` (a change of
    ``body_variant`` alone edits one method body: the case IPython's deduper patches in place);
    ``inc()`` adds one to ``self.count``.

    ``shape`` selects what ``save_state`` returns (1: ``{"count": n}``, 2: ``{"counter": {"value":
    n}}``, 3: ``{"c": [n]}``); every ``restore_state`` reads all three, as a plugin migrating its
    state across versions must. ``broken`` makes the version fail in one phase of the reload.
    """
    extras = sorted(set(extras))
    top_import = "import flx_ipy_no_such_module_xyz  # broken: import error\n" if broken == "import_error" else ""
    meta_name = f"{name}_renamed" if broken == "name_change" else name
    start_line = ("        raise RuntimeError('broken: start fails')\n" if broken == "start_raises" else "")
    restore_line = ("        raise ValueError('broken: restore_state fails')\n"
                    if broken == "restore_raises" else "")
    tag_line = (f"        return TAG + {body_variant}\n" if body_variant else "        return TAG\n")
    if broken == "syntax":
        tag_line = "        return TAG +\n"
    if shape == 1:
        save_body = "        data = {'count': self.count}\n"
    elif shape == 2:
        save_body = "        data = {'counter': {'value': self.count}}\n"
    else:
        save_body = "        data = {'c': [self.count]}\n"
    extra_methods = "".join(
        f"    def extra_{k}(self, x=0):\n        '''Extra method {k}.'''\n        return x + {k} + self.LIMIT\n\n"
        for k in extras)
    state_hooks = ""
    if with_state:
        state_hooks = (
            "    def save_state(self):\n"
            "        '''Hand the count (and some history) to the next version.'''\n"
            f"{save_body}"
            "        data['history'] = list(self.history[-5:])\n"
            "        return PluginState(self.metadata.name, self.metadata.version, runtime_data=data)\n"
            "\n"
        )
        if broken != "validation":  # a save_state without restore_state fails validation
            state_hooks += (
                "    def restore_state(self, state):\n"
                "        '''Accept every shape an earlier version may have saved.'''\n"
                f"{restore_line}"
                "        data = state.runtime_data\n"
                "        if 'count' in data:\n"
                "            self.count = int(data['count'])\n"
                "        elif 'counter' in data:\n"
                "            self.count = int(data['counter']['value'])\n"
                "        elif 'c' in data:\n"
                "            self.count = int(data['c'][0])\n"
                "        else:\n"
                "            raise ValueError(f'unknown state shape: {sorted(data)}')\n"
                "        self.history = list(data.get('history', []))\n"
                "\n"
            )
    return f'''"""A benchmark plugin: a small ring buffer of readings with a counter. Generated."""
from __future__ import annotations

import math
import statistics
from collections import deque

{top_import}from flx_ipy import HealthStatus, Plugin, PluginContext, PluginMetadata, PluginState

TAG = {tag}
WINDOW = 16
THRESHOLD = 0.75
UNITS = ("ms", "s", "min")


def clamp(value, low=0.0, high=1.0):
    """Clamp ``value`` into ``[low, high]``."""
    return max(low, min(high, value))


def mean(values):
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def spread(values):
    values = list(values)
    if len(values) < 2:
        return 0.0
    return statistics.pstdev(values)


def fmt_duration(seconds):
    if seconds < 1:
        return f"{{seconds * 1000:.1f}} {{UNITS[0]}}"
    if seconds < 60:
        return f"{{seconds:.2f}} {{UNITS[1]}}"
    return f"{{seconds / 60:.1f}} {{UNITS[2]}}"


class Window:
    """A fixed-size window of readings."""

    def __init__(self, size=WINDOW):
        self.size = size
        self.items = deque(maxlen=size)

    def push(self, value):
        self.items.append(float(value))
        return len(self.items)

    def full(self):
        return len(self.items) == self.size

    def stats(self):
        return {{"mean": mean(self.items), "spread": spread(self.items), "n": len(self.items)}}

    def clear(self):
        self.items.clear()


class BenchPlugin(Plugin):
    """Keeps a counter and a window of readings; reports degraded when readings spread."""

    metadata = PluginMetadata(
        name={meta_name!r},
        version="1.0.{tag % 1000}",
        description="benchmark plugin with state and lifecycle",
        capabilities=["readings", "counter"],
    )
    LIMIT = {limit}

    def initialize(self, ctx: PluginContext) -> None:
        self.ctx = ctx
        self.count = getattr(self, "count", 0)
        self.history = getattr(self, "history", [])
        self.window = Window()
        self.started = 0
        self.stopped = 0

    def start(self) -> None:
{start_line}        if not hasattr(self, "count"):  # no read-modify-write: another thread may be counting
            self.count = 0
        self.running = True
        self.started += 1

    def stop(self) -> None:
        self.running = False
        self.stopped += 1

    def health_check(self) -> HealthStatus:
        s = self.window.stats()
        if s["n"] and s["spread"] > THRESHOLD:
            return HealthStatus("degraded", f"spread {{s['spread']:.2f}}")
        return HealthStatus("healthy", f"{{self.count}} counted")

{state_hooks}    def tag(self):
        """Which version of the code is running."""
{tag_line}
    def inc(self):
        """Add one to the counter (the soak checks that no increment is ever lost)."""
        self.count += 1
        return self.count

    def record(self, value):
        self.window.push(clamp(value, 0.0, 10.0))
        self.history.append(value)
        if len(self.history) > 100:
            del self.history[:50]
        return self.window.stats()

    def summary(self):
        s = self.window.stats()
        return f"n={{s['n']}} mean={{s['mean']:.3f}} spread={{s['spread']:.3f}} count={{self.count}}"

    def rate(self, seconds):
        return self.count / seconds if seconds > 0 else math.inf

    def describe(self, seconds=0.5):
        return f"{{self.metadata.name}} v{{self.metadata.version}}: {{fmt_duration(seconds)}}"

    def over_limit(self):
        return self.count > self.LIMIT

    def reset_window(self):
        self.window.clear()
        return self.window.full()

    def last(self, n=3):
        return list(self.history[-n:])

    def ratio(self, a, b):
        return a / b if b else 0.0

    def scaled(self, factor=2):
        return [v * factor for v in self.window.items]

    def peak(self):
        return max(self.window.items, default=0.0)

    def trough(self):
        return min(self.window.items, default=0.0)

    def normalised(self):
        hi, lo = self.peak(), self.trough()
        span = hi - lo
        return [(v - lo) / span if span else 0.0 for v in self.window.items]

    def to_dict(self):
        return {{"count": self.count, "window": list(self.window.items), "tag": self.tag()}}

    @property
    def doubled(self):
        return self.count * 2

    @staticmethod
    def unit(i=0):
        return UNITS[i % len(UNITS)]

    @classmethod
    def label(cls):
        return f"{{cls.__name__}}:{{cls.LIMIT}}"

{extra_methods}'''


# ---------------------------------------------------------------------------- reporting
def pct(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank over sorted values)."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, round(q / 100 * (len(s) - 1))))
    return s[k]


def med(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(ours: float, peer: float) -> str:
    if not peer or peer != peer or ours != ours:
        return "n/a"
    return f"{ours / peer:.3g}×"


def machine(command: str) -> str:
    uname = " ".join(platform.uname())
    return (f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}\n- machine: `{uname}`, nproc {os.cpu_count()}\n"
            f"- python: {platform.python_version()} ({sys.executable})\n- command: `{command}`\n")


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    out = [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}"]
    out += [f"| {' | '.join(str(c) for c in r)} |" for r in rows]
    return "\n".join(out) + "\n"


def append_results(heading: str, intro: str, text: str) -> None:
    """Add a run under ``heading`` (e.g. ``"## Reload"``), leaving every other section as is."""
    doc = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    run = f"\n### Run {time.strftime('%Y-%m-%d %H:%M')}\n\n{text}"
    if heading not in doc.splitlines():
        doc = doc.rstrip("\n") + f"\n\n{heading}\n\n{intro}\n" + run
    else:
        start = doc.index("\n" + heading + "\n") + 1 if not doc.startswith(heading) else 0
        nxt = doc.find("\n## ", start + len(heading))
        end = len(doc) if nxt < 0 else nxt
        doc = doc[:end].rstrip("\n") + "\n" + run + doc[end:]
    RESULTS.write_text(doc)


def ms(x: float) -> str:
    return f"{x * 1000:.3g}" if x == x else "n/a"
