"""Isolated plugins: what the worker process costs, beside what a user would reach for instead.

Run: ``python benchmarks/bench_isolation.py [--calls 20000] [--no-write]``

- **Call round trip** through ``pm.get(name)`` of an isolated plugin (``p.echo(1)``), p50/p99
  over ``--calls`` calls, beside the same call on the same plugin loaded in-process, a
  ``concurrent.futures.ProcessPoolExecutor(1).submit(f, 1).result()`` and a ``multiprocessing``
  ``Pipe`` echo to a child process (the floor a hand-made worker would have). The debounced
  checkpoint (one ``save_state`` about a second after calls) is left on: it is part of the cost.
- **Isolated start**: ``pm.load(path, start=True, isolated=True)`` (spawn → sandboxed → plugin
  imported → initialize → start → first checkpoint), median of 20; beside the same in-process and
  beside a bare ``python -I -c pass`` (the floor of any new process).
- **Crash → serving again**: SIGKILL the worker, time until a call through the proxy taken before
  returns the state it had (includes noticing the death, respawn, sandbox, import, restore_state,
  start), median of 20. The crash-loop rule (> 3 in 10 min → failed) is lifted for this run.
- **Save → live**: a watched plugin, a file saved with a changed method body, time until the
  proxy returns the new value; isolated beside in-process, p50/p99 of 40 saves each.
- **Memory**: RSS of an idle worker, and the kernel's RSS before/after 100 reloads and 20 restarts.

Results are appended to ``benchmarks/RESULTS.md`` under "## Isolation".
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import append_results, machine, med, pct, ratio, table

from flx_ipy import PluginManager
from flx_ipy.core.worker import process, supervise

PLUGIN = '''
from flx_ipy import Plugin, PluginMetadata, PluginState

TAG = {tag}

class Bench(Plugin):
    metadata = PluginMetadata(name="{name}", version="1.0.{tag}")

    def __init__(self):
        self.count = 0

    def echo(self, x):
        return x

    def inc(self):
        self.count += 1
        return self.count

    def tag(self):
        return TAG

    def save_state(self):
        return PluginState("{name}", "1.0", runtime_data={{"count": self.count}})

    def restore_state(self, st):
        self.count = st.runtime_data["count"]
'''


def write(folder: Path, name: str, tag: int = 0) -> Path:
    p = folder / f"{name}.py"
    tmp = p.with_suffix(".tmp")
    tmp.write_text(PLUGIN.format(name=name, tag=tag))
    os.replace(tmp, p)
    return p


def rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def wait_spare(timeout: float = 10.0) -> None:
    """Let the spare worker (started in the background after each take) be ready, as it is
    when loads and crashes are not back to back."""
    deadline = time.monotonic() + timeout
    while not (process._spare is not None and process._spare.alive and process._spare.is_warm()):
        if time.monotonic() > deadline:
            raise TimeoutError("no spare worker")
        time.sleep(0.005)


def timed_calls(fn, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    for _ in range(min(500, n)):
        fn()
    out = []
    clock = time.perf_counter
    for _ in range(n):
        t = clock()
        fn()
        out.append(clock() - t)
    return out


def _echo(x: int) -> int:
    return x


def _pipe_child(conn) -> None:  # type: ignore[no-untyped-def]
    while True:
        x = conn.recv()
        if x is None:
            return
        conn.send(x)


def round_trips(pm: PluginManager, folder: Path, n: int) -> list[list[str]]:
    pm.load(write(folder, "rt_iso"), start=True, isolated=True)
    pm.load(write(folder, "rt_inproc"), start=True)
    iso, inproc = pm.get("rt_iso"), pm.get("rt_inproc")
    t_iso = timed_calls(lambda: iso.echo(1), n)
    t_in = timed_calls(lambda: inproc.echo(1), n)
    with concurrent.futures.ProcessPoolExecutor(1) as ex:
        t_pool = timed_calls(lambda: ex.submit(_echo, 1).result(), n)
    a, b = multiprocessing.Pipe()
    child = multiprocessing.get_context("spawn").Process(target=_pipe_child, args=(b,))
    child.start()

    def pipe_call() -> None:
        a.send(1)
        a.recv()

    t_pipe = timed_calls(pipe_call, n)
    a.send(None)
    child.join()
    pm.unload("rt_iso")
    pm.unload("rt_inproc")
    us = lambda v: f"{v * 1e6:.1f}"  # noqa: E731
    rows = []
    for label, t in [("flx_ipy isolated proxy `p.echo(1)`", t_iso), ("in-process call (same plugin)", t_in),
                     ("ProcessPoolExecutor(1).submit().result()", t_pool), ("multiprocessing Pipe echo", t_pipe)]:
        rows.append([label, us(pct(t, 50)), us(pct(t, 99)), ratio(pct(t_iso, 50), pct(t, 50))])
    return rows


def starts(pm: PluginManager, folder: Path, n: int = 20) -> tuple[list[str], list[str], list[str], list[str]]:
    iso, cold, inproc, floor = [], [], [], []
    for i in range(n):
        p = write(folder, f"st{i}")
        wait_spare()
        t = time.perf_counter()
        pm.load(p, start=True, isolated=True)
        iso.append(time.perf_counter() - t)
        pm.unload(f"st{i}")
        process.KEEP_SPARE = False
        process.discard_spare()
        p = write(folder, f"stc{i}")
        t = time.perf_counter()
        pm.load(p, start=True, isolated=True)
        cold.append(time.perf_counter() - t)
        pm.unload(f"stc{i}")
        process.KEEP_SPARE = True
        process._refill()
        p2 = write(folder, f"sti{i}")
        t = time.perf_counter()
        pm.load(p2, start=True)
        inproc.append(time.perf_counter() - t)
        pm.unload(f"sti{i}")
        t = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-c", "pass"], check=True)
        floor.append(time.perf_counter() - t)
    ms = lambda v: f"{v * 1000:.1f}"  # noqa: E731
    return ([ms(med(iso)), ms(pct(iso, 90))], [ms(med(cold)), ms(pct(cold, 90))],
            [ms(med(inproc)), ms(pct(inproc, 90))], [ms(med(floor)), ms(pct(floor, 90))])


def crashes(pm: PluginManager, folder: Path, n: int = 20) -> tuple[list[float], float, float]:
    supervise.CRASH_LOOP = (10**6, 600.0)  # lifted for this measurement only
    rec = pm.load(write(folder, "crashy"), start=True, isolated=True)
    p = pm.get("crashy")
    before = rss_mb()
    out = []
    for _i in range(n):
        p.inc()
        rec.worker.checkpoint_now()
        want = p.count
        pid = rec.worker.pid
        wait_spare()
        t = time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        while True:
            try:
                if rec.worker.pid != pid and p.count == want:
                    break
            except Exception:
                pass
        out.append(time.perf_counter() - t)
    after = rss_mb()
    idle = rec.worker.stats()["rss_mb"]
    pm.unload("crashy")
    return out, after - before, idle


def save_to_live(pm: PluginManager, folder: Path, isolated: bool, n: int = 40) -> list[float]:
    name = "live_iso" if isolated else "live_in"
    path = write(folder, name, 0)
    pm.load(path, start=True, isolated=isolated)
    p = pm.get(name)
    pm.watch([folder], step=5, settle=0.008)
    out = []
    try:
        for k in range(1, n + 1):
            t = time.perf_counter()
            write(folder, name, k)
            deadline = t + 5
            while p.tag() != k:
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"save {k} not live after 5 s")
                time.sleep(0.0002)
            out.append(time.perf_counter() - t)
            time.sleep(0.03)
    finally:
        pm.unwatch()
        pm.unload(name)
    return out


def reload_growth(pm: PluginManager, folder: Path, n: int = 100) -> float:
    path = write(folder, "grow", 0)
    pm.load(path, start=True, isolated=True)
    before = rss_mb()
    for k in range(1, n + 1):
        write(folder, "grow", k)
        pm.reload("grow")
    after = rss_mb()
    pm.unload("grow")
    return after - before


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="flx-bench-iso-"))
    pm = PluginManager(entry_points=False, data_root=folder / "data")
    try:
        rt_rows = round_trips(pm, folder, args.calls)
        iso_s, cold_s, in_s, floor_s = starts(pm, folder)
        crash_t, crash_growth, idle_rss = crashes(pm, folder)
        live_iso = save_to_live(pm, folder, True)
        live_in = save_to_live(pm, folder, False)
        growth = reload_growth(pm, folder)
        rec_layers = pm.load(write(folder, "layers"), isolated=True).worker
        enforced, unavailable = list(rec_layers.enforced), dict(rec_layers.unavailable)
    finally:
        pm.close()
    ms = lambda v: f"{v * 1000:.1f}"  # noqa: E731
    text = machine(" ".join(["python", *sys.argv])) + "\n"
    text += f"Layers in force on this machine: {', '.join(enforced)}" + (
        f"; unavailable: {unavailable}" if unavailable else "; none unavailable") + "\n\n"
    text += f"Call round trip, µs over {args.calls:,} calls (ratio: isolated p50 / this p50)\n\n"
    text += table(["call", "p50 µs", "p99 µs", "isolated ÷ this"], rt_rows) + "\n"
    text += table(["start (load + start)", "median ms", "p90 ms"],
                  [["flx_ipy isolated, spare worker ready (sandboxed → imported → running)", *iso_s],
                   ["flx_ipy isolated, cold (spawn an interpreter first)", *cold_s],
                   ["flx_ipy in-process", *in_s],
                   ["floor: `python -I -c pass`", *floor_s]]) + "\n"
    text += table(["crash → serving again with state", "median ms", "p90 ms", "max ms"],
                  [["SIGKILL → proxy returns the kept state", ms(med(crash_t)), ms(pct(crash_t, 90)),
                    ms(max(crash_t))]]) + "\n"
    text += table(["save → new code live", "p50 ms", "p99 ms", "isolated ÷ in-process (p50)"],
                  [["isolated", ms(pct(live_iso, 50)), ms(pct(live_iso, 99)),
                    ratio(pct(live_iso, 50), pct(live_in, 50))],
                   ["in-process", ms(pct(live_in, 50)), ms(pct(live_in, 99)), ""]]) + "\n"
    text += table(["memory", "MB"], [["RSS of an idle worker", f"{idle_rss:.1f}"],
                                     ["kernel RSS growth over 20 crash/restarts", f"{crash_growth:+.1f}"],
                                     ["kernel RSS growth over 100 isolated reloads", f"{growth:+.1f}"]])
    print(text)
    if not args.no_write:
        append_results("## Isolation", "Isolated plugins (`benchmarks/bench_isolation.py`): the proxy's round "
                       "trip beside an in-process call, a ProcessPoolExecutor and a multiprocessing Pipe; "
                       "start, crash → serving again, save → live, memory.", text)


if __name__ == "__main__":
    main()
