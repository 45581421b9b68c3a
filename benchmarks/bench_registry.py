"""Registry: `index build` over 200 wheels, `search` over a 1,000-entry index, and — in real
kernels, same run — `%plugin install` + load against the ritual users do today
(`%pip install` + kernel restart + re-import).

Floors, measured in the same run: for build, hashing every wheel and reading its METADATA from
the zip (the least any index has to do); for search, `json.loads` of the same index file. For install, the
peer is the ritual, timed from the first cell to the plugin running in both cases, with the same
wheel files, both installing with `--target` into a fresh folder (so the shared venv is left as
it was) and both with `--no-deps`.

    .venv/bin/python benchmarks/bench_registry.py [--rounds 5] [--no-write]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import zipfile
from pathlib import Path

from _common import ROOT, append_results, machine, ratio, table

from flx_ipy.registry import build_index, load_index, search
from flx_ipy.registry.wheelmaker import make_wheel, plugin_module

GROUP = "flx_ipy.plugins"


def wheels(folder: Path, n: int, prefix: str = "bench") -> list[Path]:
    out = []
    for i in range(n):
        name = f"{prefix}{i:04d}"
        source = plugin_module(name, "1.0.0", description=f"benchmark plugin {i}") + "\n" + "# padding\n" * 40
        out.append(make_wheel(folder, f"flx-{name}", "1.0.0", {f"flx_{name}/__init__.py": source},
                              entry_points={GROUP: {name: f"flx_{name}:{name.capitalize()}Plugin"}},
                              summary=f"benchmark plugin number {i}", requires_dist=["flx_ipy"]))
    return out


def bench_build(tmp: Path, n: int = 200, rounds: int = 5) -> list[list[str]]:
    d = tmp / "build"
    d.mkdir()
    files = wheels(d, n)
    cold, warm, floor = [], [], []
    for _ in range(rounds):
        (d / "index.json").unlink(missing_ok=True)
        t = time.perf_counter()
        build_index(d)
        cold.append(time.perf_counter() - t)
        t = time.perf_counter()
        assert not build_index(d).changed
        warm.append(time.perf_counter() - t)
        t = time.perf_counter()
        for f in files:  # the least any index must do: hash each wheel, open it, read its METADATA
            hashlib.sha256(f.read_bytes()).hexdigest()
            with zipfile.ZipFile(f) as zf:
                zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA")))
        floor.append(time.perf_counter() - t)
    c, w, f = (statistics.median(x) for x in (cold, warm, floor))
    floor_text = f"sha256 + open + read METADATA of each {f * 1000:.1f} ms"
    return [[f"index build, {n} wheels (writes index.json)", f"{c * 1000:.1f} ms", floor_text, ratio(c, f)],
            [f"index build, {n} wheels, unchanged (re-hashes, reuses entries, rewrites nothing)",
             f"{w * 1000:.1f} ms", f"{f * 1000:.1f} ms", ratio(w, f)]]


def bench_search(tmp: Path, n: int = 1000, rounds: int = 20) -> list[list[str]]:
    d = tmp / "search"
    d.mkdir()
    wheels(d, n)
    build_index(d)
    raw = (d / "index.json").read_bytes()
    loads, load_search, only = [], [], []
    for _ in range(rounds):
        t = time.perf_counter()
        json.loads(raw)
        loads.append(time.perf_counter() - t)
        t = time.perf_counter()
        idx = load_index(d)
        hits = search(idx, "bench0999")
        load_search.append(time.perf_counter() - t)
        assert [p["key"] for p in hits] == ["flx-bench0999"]
        t = time.perf_counter()
        search(idx, "number 42")
        only.append(time.perf_counter() - t)
    a, b, c = (statistics.median(x) for x in (loads, load_search, only))
    size = len(raw) / 1e6
    # what a user waits for: the command in a fresh process, beside a fresh python that only parses the file
    # with bytecode caches, as a user has them (this machine sets PYTHONDONTWRITEBYTECODE: keep them
    # in a temporary prefix instead of the checkout); the first, cache-writing run is not counted
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               PYTHONPYCACHEPREFIX=str(d / "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "flx_ipy", "search", "x", "--index", str(d)], env=env, check=True,
                   capture_output=True)
    cli, bare = [], []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "flx_ipy", "search", "bench0999", "--index", str(d)], env=env,
                       check=True, capture_output=True)
        cli.append(time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import json; json.load(open({str(d / 'index.json')!r}))"], env=env,
                       check=True, capture_output=True)
        bare.append(time.perf_counter() - t)
    e, f = statistics.median(cli), statistics.median(bare)
    return [[f"`flx-ipy search TERM` over {n} entries, fresh process", f"{e * 1000:.0f} ms",
             f"`python -c 'json.load(index.json)'` {f * 1000:.0f} ms", ratio(e, f)],
            [f"search, {n}-entry index ({size:.1f} MB): read + parse + search", f"{b * 1000:.1f} ms",
             f"json.loads of index.json {a * 1000:.1f} ms", ratio(b, a)],
            [f"search alone (substring over name/plugins/summary, {n} entries)", f"{c * 1000:.2f} ms", "—", "—"]]


# ----------------------------------------------------------------------------- kernels
def _run(kc, code: str, timeout: float = 120.0) -> str:
    out: list[str] = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append(f"ERROR {msg['content']['ename']}: {msg['content']['evalue']}")

    reply = kc.execute_interactive(textwrap.dedent(code), output_hook=hook, timeout=timeout)
    text = "".join(out)
    if reply["content"]["status"] != "ok" or "UsageError" in text or "ERROR" in text:
        raise RuntimeError(f"cell failed: {code!r}\n{text}")
    return text


def bench_install(tmp: Path, rounds: int) -> tuple[list[list[str]], str]:
    from jupyter_client.manager import start_new_kernel

    idx = tmp / "index"
    idx.mkdir()
    names = [f"kern{i}" for i in range(2 * rounds)]
    for name in names:
        make_wheel(idx, f"flx-{name}", "1.0.0", {f"flx_{name}/__init__.py": plugin_module(name, "1.0.0")},
                   entry_points={GROUP: {name: f"flx_{name}:{name.capitalize()}Plugin"}},
                   requires_dist=["flx_ipy"])
    build_index(idx)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    ours, ritual, restart_only, pip_only = [], [], [], []
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp), env=env)
    try:
        _run(kc, "%load_ext flx_ipy")
        for i in range(rounds):
            name = names[i]
            target = tmp / f"ours{i}"
            t = time.perf_counter()
            _run(kc, f"%plugin install {name} --index {idx} --target {target}")
            out = _run(kc, f"%plugin load {name} --start")
            ours.append(time.perf_counter() - t)
            assert "running" in out, out
            pip_only.append(float(_run(kc, "from flx_ipy.extension import current\n"
                                           "print(current().magics.last_install.result.pip_seconds)").strip()))
        for i in range(rounds):
            name = names[rounds + i]
            target = tmp / f"ritual{i}"
            wheel = next(idx.glob(f"flx_{name}-*.whl"))
            t = time.perf_counter()
            _run(kc, f"%pip install --no-deps --target {target} {wheel}")
            t_restart = time.perf_counter()
            km.restart_kernel(now=False)
            kc.wait_for_ready(timeout=60)
            _run(kc, f"import sys; sys.path.insert(0, {str(target)!r})\n%load_ext flx_ipy")
            restart_only.append(time.perf_counter() - t_restart)
            out = _run(kc, f"%plugin load {name} --start")
            ritual.append(time.perf_counter() - t)
            assert "running" in out, out
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    o, r, ro = (statistics.median(x) for x in (ours, ritual, restart_only))
    rows = [["`%plugin install` (pip, hash-checked) + `%plugin load --start`, same kernel",
             f"{o * 1000:.0f} ms", f"`%pip install` + restart + re-import + load {r * 1000:.0f} ms", ratio(o, r)],
            ["of which the pip subprocess (ours) / the restart + `%load_ext` (ritual)",
             f"{statistics.median(pip_only) * 1000:.0f} ms", f"{ro * 1000:.0f} ms", "—"]]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    note = (f"load average during the run: {load} (2 cores shared with other work). "
            f"Each median of {rounds} rounds; ours min/max {min(ours) * 1000:.0f}/{max(ours) * 1000:.0f} ms, "
            f"ritual {min(ritual) * 1000:.0f}/{max(ritual) * 1000:.0f} ms. The ritual also loses every "
            "variable of the session; ours keeps them.")
    return rows, note


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--no-kernel", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="flx-bench-registry-") as t:
        tmp = Path(t)
        rows = bench_build(tmp) + bench_search(tmp)
        note = ""
        if not args.no_kernel:
            krows, note = bench_install(tmp, args.rounds)
            rows += krows
    text = table(["measure", "flx_ipy", "floor / peer, same run", "ratio"], rows)
    print(text)
    if note:
        print(note)
    if not args.no_write:
        cmd = "python benchmarks/bench_registry.py " + " ".join(sys.argv[1:])
        append_results("## Registry", "Index build, search and install-into-a-running-kernel (`bench_registry.py`).",
                       machine(cmd.strip()) + "\n" + text + ("\n" + note + "\n" if note else ""))


if __name__ == "__main__":
    main()
