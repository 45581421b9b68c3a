"""One reload of a ~200-line plugin: flx_ipy vs IPython's autoreload and importlib.reload.

Run: ``python benchmarks/bench_reload.py [--reloads 1000] [--big 3000000] [--no-write]``

Every scenario runs in a FRESH subprocess (so no tool's caches or heap leak into another's):

- **flx_ipy** ``pm.reload(name)`` of a running plugin (``benchmarks/_common.plugin_text``: ~190
  lines, state + every lifecycle hook): the whole transaction — read + compile, validate,
  ``save_state``, ``stop``, re-execute in place + patch the class, ``restore_state``, ``start``,
  events. An instance taken before runs the new code (checked on every reload).
- **autoreload (deduper)**: IPython 9.18's ``ModuleReloader.check()`` with the module marked
  reloadable (``check_all`` off, so only this module is stat'ed — the reload alone, not the
  per-cell scan of ``sys.modules``; see ``bench_latency.py`` for that). The edit changes one method
  body, the case its ``DeduperReloader`` patches without re-executing the module.
- **autoreload (superreload)**: ``superreload(module, reload, old_objects)`` — what
  ``%autoreload`` falls back to for any other edit (and always with ``--full``); it re-executes
  the module and walks the heap (``gc.get_referrers``) for instances of each class.
- **importlib.reload**: re-execute only; old instances keep the OLD class (checked on a new one).

Peers do no lifecycle and no state handling: they only swap code. Each scenario runs with a
small heap and with ``--big`` extra GC-tracked live objects (a list of one-element lists).
Each reload edits the same method body (``tag()`` returns a new number); the file write is not
timed. Memory growth: tracemalloc (a separate run of the same reloads, after 20 warm-up reloads
and ``gc.collect()``) and RSS over the timed run.

Results are appended to ``benchmarks/RESULTS.md`` under "## Reload".
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, append_results, machine, med, ms, pct, plugin_text, ratio, table

SCENARIOS = ("flx_ipy", "deduper", "superreload", "importlib")
LABEL = {
    "flx_ipy": "flx_ipy pm.reload (state + lifecycle)",
    "deduper": "autoreload ModuleReloader.check (deduper)",
    "superreload": "autoreload superreload",
    "importlib": "importlib.reload",
}


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _setup(kind: str, tmp: Path):  # type: ignore[no-untyped-def]
    """Returns (reload_fn, write_fn(i), check_fn(i))."""
    sys.dont_write_bytecode = True  # no stale .pyc for the peers (ours compiles fresh anyway)
    if kind == "flx_ipy":
        from flx_ipy import PluginManager

        path = tmp / "benchplug.py"
        path.write_text(plugin_text(0, name="bench", body_variant=0))
        pm = PluginManager(entry_points=False)
        pm.load(str(path), start=True)
        inst = pm.get("bench")

        def write(i: int) -> None:
            path.write_text(plugin_text(0, name="bench", body_variant=i))

        def reload() -> None:
            res = pm.reload("bench")
            if not res.ok:
                raise RuntimeError(res.error)

        def check(i: int) -> None:
            assert inst.tag() == i and pm.get("bench") is inst, (inst.tag(), i)

        return reload, write, check

    sys.path.insert(0, str(tmp))
    path = tmp / "benchmod.py"
    path.write_text(plugin_text(0, name="bench", body_variant=0))
    import importlib

    mod = importlib.import_module("benchmod")
    inst = mod.BenchPlugin()
    mtime = [os.stat(path).st_mtime]

    def write(i: int) -> None:
        path.write_text(plugin_text(0, name="bench", body_variant=i))
        mtime[0] += 1.0  # autoreload compares mtimes: make every save visibly newer
        os.utime(path, (mtime[0], mtime[0]))

    if kind == "deduper":
        from IPython.extensions.autoreload import ModuleReloader

        r = ModuleReloader()
        r.enabled = True
        r.check_all = False
        r.mark_module_reloadable("benchmod")
        r.check()  # record the mtime baseline

        def reload() -> None:
            r.check()

        def check(i: int) -> None:
            assert inst.tag() == i, (inst.tag(), i)

        return reload, write, check
    if kind == "superreload":
        from IPython.extensions.autoreload import superreload

        old_objects: dict = {}

        def reload() -> None:
            superreload(mod, importlib.reload, old_objects)

        def check(i: int) -> None:
            assert inst.tag() == i, (inst.tag(), i)

        return reload, write, check

    def reload() -> None:
        importlib.reload(mod)

    def check(i: int) -> None:
        assert mod.BenchPlugin().tag() == i  # old instances keep the old class

    return reload, write, check


def worker(kind: str, big: int, reloads: int, mem: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="flx-bench-reload-") as td:
        tmp = Path(td)
        heap = [[i] for i in range(big)] if big else []
        gc.collect()
        reload, write, check = _setup(kind, tmp)
        for i in range(1, 21):  # warm-up
            write(i)
            reload()
            check(i)
        gc.collect()
        times: list[float] = []
        rss0 = _rss()
        if mem:
            tracemalloc.start()
            t_before = tracemalloc.get_traced_memory()[0]
        for i in range(21, 21 + reloads):
            write(i)
            t0 = time.perf_counter()
            reload()
            times.append(time.perf_counter() - t0)
            check(i)
        gc.collect()
        out = {"times": times, "rss_growth": _rss() - rss0}
        if mem:
            out["traced_growth"] = tracemalloc.get_traced_memory()[0] - t_before
            tracemalloc.stop()
        del heap
        return out


def run_worker(kind: str, big: int, reloads: int, mem: bool) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, str(big), str(reloads), "1" if mem else "0"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(ROOT), check=False)
    if p.returncode:
        raise RuntimeError(f"{kind} worker failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reloads", type=int, default=1000)
    ap.add_argument("--big", type=int, default=3_000_000, help="extra live objects for the big-heap runs")
    ap.add_argument("--super-reloads", type=int, default=200,
                    help="reloads for superreload, small heap and tracemalloc (it takes ~60-90 ms each)")
    ap.add_argument("--super-big-reloads", type=int, default=20,
                    help="reloads for superreload with the big heap (each one grows: ~0.2 s, then +0.14 s "
                         "per reload, since it walks the heap once per old class version still alive)")
    ap.add_argument("--no-write", action="store_true", help="do not append to benchmarks/RESULTS.md")
    ap.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        kind, big, reloads, mem = args.worker
        print(json.dumps(worker(kind, int(big), int(reloads), mem == "1")))
        return

    n = args.reloads
    res: dict[tuple[str, int], dict] = {}
    for kind in SCENARIOS:
        for big in (0, args.big):
            count = n if kind != "superreload" else (args.super_big_reloads if big else args.super_reloads)
            print(f"... {kind} heap+{big:,} x{count}", file=sys.stderr, flush=True)
            res[(kind, big)] = run_worker(kind, big, count, mem=False)
        count = n if kind != "superreload" else args.super_reloads
        print(f"... {kind} tracemalloc x{count}", file=sys.stderr, flush=True)
        res[(kind, -1)] = run_worker(kind, 0, count, mem=True)

    rows = []
    for big in (0, args.big):
        ours = res[("flx_ipy", big)]["times"]
        for kind in SCENARIOS:
            t = res[(kind, big)]["times"]
            w = min(100, max(1, len(t) // 3))
            first, last = t[:w], t[-w:]
            rows.append((LABEL[kind], f"+{big:,}" if big else "small", len(t), ms(med(t)), ms(pct(t, 99)),
                         ms(max(t)), f"{ms(med(first))} / {ms(med(last))}",
                         "—" if kind == "flx_ipy" else ratio(med(ours), med(t))))
    header = ("reload", "heap (extra live objects)", "reloads", "median ms", "p99 ms", "max ms",
              "median first / last 100 ms (or a third)", "flx_ipy / peer (median)")
    mem_rows = []
    for kind in SCENARIOS:
        traced = res[(kind, -1)]["traced_growth"]
        rss = res[(kind, 0)]["rss_growth"]
        mem_rows.append((LABEL[kind], len(res[(kind, -1)]["times"]), f"{traced / 1e6:.2f}", f"{rss / 1e6:.2f}",
                         "—" if kind == "flx_ipy" else ratio(res[("flx_ipy", -1)]["traced_growth"], traced)))
    mem_header = ("reloader", "reloads", "tracemalloc growth MB", "RSS growth MB (small heap)",
                  "flx_ipy / peer (tracemalloc)")
    o_small = med(res[("flx_ipy", 0)]["times"])
    o_big = med(res[("flx_ipy", args.big)]["times"])
    verdict = (f"Targets: ≤ 3 ms, heap-independent, flat over {n} reloads; growth < 5 MB. "
               f"flx_ipy median {ms(o_small)} ms small heap, {ms(o_big)} ms with +{args.big:,} objects; "
               f"tracemalloc growth {res[('flx_ipy', -1)]['traced_growth'] / 1e6:.2f} MB.")
    cmd = f"python benchmarks/bench_reload.py --reloads {n} --big {args.big}"
    cmd += f" --super-reloads {args.super_reloads} --super-big-reloads {args.super_big_reloads}"
    text = (machine(cmd) + "\n" + table(header, rows) + "\n" + table(mem_header, mem_rows) + "\n" + verdict + "\n")
    print(text)
    if not args.no_write:
        append_results("## Reload", "`benchmarks/bench_reload.py`: one reload of a ~190-line plugin with state "
                       "and every lifecycle hook, small heap and with millions of extra live objects, each "
                       "scenario in a fresh process; peers only swap code (no state, no lifecycle). Target: "
                       "≤ 3 ms, heap-independent, flat over 1,000 reloads; memory growth < 5 MB.", text)


if __name__ == "__main__":
    main()
