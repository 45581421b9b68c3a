"""What the dashboard's new figures cost per manager event: one row re-read with its revisions
and timings (``plugin_view(rec, pm)``) beside the row from the record alone (the floor, what a
row cost before), and a whole snapshot of 50 plugins; 50 running plugins with a health check.

Usage: ``python benchmarks/bench_dashboard.py [--plugins 50] [--rounds 3000] [--no-write]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _common import append_results, machine, med, pct, table

from flx_ipy import PluginManager
from flx_ipy.testing import plugin_source, write_plugin
from flx_ipy.uistate import UIState, plugin_view

HEALTH = 'def health_check(self):\n    return HealthStatus.healthy("ok")\n'


def timed(fn, rounds: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e6)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--plugins", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3000)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        pm = PluginManager(entry_points=False, data_root=d / "data")
        try:
            for i in range(args.plugins):
                path = write_plugin(d / f"dash_bench_{i}.py", plugin_source(f"p{i}", "1.0", HEALTH, cls=f"P{i}"))
                pm.load(str(path), start=True)
                write_plugin(path, plugin_source(f"p{i}", "1.1", HEALTH, cls=f"P{i}"))
                pm.reload(f"p{i}")  # two revisions and a reload in the metrics
            for _ in range(3):
                pm.health()
            rec = pm.plugins["p7"]
            floor = timed(lambda: plugin_view(rec), args.rounds)
            ours = timed(lambda: plugin_view(rec, pm), args.rounds)
            ui = UIState(pm)
            snap = timed(ui.snapshot, max(50, args.rounds // 30))
        finally:
            pm.close()
    rows = [
        ["one row per event, with revisions + timings (median / p99 µs)", f"{med(ours):.1f} / {pct(ours, 99):.1f}",
         f"{med(floor):.1f} / {pct(floor, 99):.1f}", f"{med(ours) / med(floor):.2f}×"],
        [f"whole snapshot, {args.plugins} plugins (median / p99 µs)", f"{med(snap):.0f} / {pct(snap, 99):.0f}",
         "", ""],
    ]
    text = (machine(" ".join(["python", "benchmarks/bench_dashboard.py", *sys.argv[1:]]))
            + f"- plugins: {args.plugins} running, 2 revisions each; rounds: {args.rounds}\n\n"
            + table(["figure", "flx_ipy", "floor: row from the record alone", "ratio"], rows))
    print(text)
    if not args.no_write:
        append_results("## Dashboard rows", "`benchmarks/bench_dashboard.py`: what a row with its revisions "
                       "(rollback picker) and hook/reload timings costs per manager event.", text)


if __name__ == "__main__":
    main()
