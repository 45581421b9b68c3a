"""Discovery of 100 entry-point plugins: flx_ipy vs importlib.metadata, pluggy and stevedore.

Run: ``python benchmarks/bench_discovery.py [--runs N] [--no-write]``

Builds fake site-packages folders as pip leaves them (``*.dist-info`` with METADATA, RECORD,
WHEEL, some with ``entry_points.txt`` of other groups): 100 plugin distributions among ~100 and
~1,000 other distributions. First-call figures come from FRESH subprocesses (median of
``--runs``), each with ``sys.path`` set to the fake site plus the standard library only, so every
tool sees the same distributions. Warm figures are the median of repeated calls in one process.

What each figure covers (the call only; import costs are their own rows):

- flx_ipy ``Discovery().scan()``: lists candidates with validated metadata read from source, no
  plugin imported (checked in the worker).
- ``importlib.metadata.entry_points(group=...)``: lists entry point objects only (no metadata).
- stevedore ``_cache.get_group_all``: listing via its on-disk JSON cache (miss: empty cache dir;
  hit: a cache written by an earlier process). Its in-process warm call is a dict lookup that
  never notices a package installed meanwhile.
- stevedore ``ExtensionManager(invoke_on_load=False)`` and pluggy
  ``PluginManager.load_setuptools_entrypoints``: these IMPORT every plugin module (that is what
  they are for), so they do more work than listing; shown because they are what plugin hosts use.

Results are appended to ``benchmarks/RESULTS.md`` under "## Discovery".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

GROUP = "flx_ipy.plugins"
ROOT = Path(__file__).resolve().parents[1]

PLUGIN = textwrap.dedent('''\
    """Benchmark plugin {i}: a realistic small module."""
    from __future__ import annotations

    from flx_ipy import HealthStatus, Plugin, PluginMetadata, PluginState


    class Plugin{i}(Plugin):
        """Counts ticks."""

        metadata = PluginMetadata(
            name="bench_{i}",
            version="1.{i}.0",
            description="benchmark plugin number {i}",
            requires={requires},
            capabilities=["ticks"],
        )

        def initialize(self, ctx):
            self.ctx = ctx
            self.count = 0

        def start(self):
            self.running = True

        def stop(self):
            self.running = False

        def health_check(self):
            return HealthStatus.healthy(f"{{self.count}} ticks")

        def save_state(self):
            return PluginState("bench_{i}", "1.{i}.0", runtime_data={{"count": self.count}})

        def restore_state(self, state):
            self.count = state.runtime_data.get("count", 0)
    ''')


def build_site(site: Path, n_plugins: int, n_other: int) -> None:
    """Write ``n_plugins`` plugin distributions and ``n_other`` unrelated ones into ``site``."""
    site.mkdir(parents=True)

    def dist(name: str, version: str, files: list[str], eps: str | None) -> None:
        info = site / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                       f"Summary: fake distribution {name}\nRequires-Dist: packaging\n\n"
                                       + "Long description.\n" * 20)
        (info / "WHEEL").write_text(
            "Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        (info / "RECORD").write_text("".join(f"{f},sha256=abc,123\n" for f in files)
                                     + f"{info.name}/METADATA,,\n{info.name}/RECORD,,\n")
        (info / "top_level.txt").write_text(files[0].split("/")[0].removesuffix(".py") + "\n")
        if eps is not None:
            (info / "entry_points.txt").write_text(eps)

    for i in range(n_plugins):
        mod = f"flxb_plug_{i}"
        requires = '["bench_0>=1.0"]' if i % 3 == 1 else "[]"
        (site / f"{mod}.py").write_text(PLUGIN.format(i=i, requires=requires))
        scripts = f"\n[console_scripts]\nb{i} = x:y\n" if i % 2 else ""
        eps = f"[{GROUP}]\nbench_{i} = {mod}:Plugin{i}\n{scripts}"
        dist(f"flxb_plugin_{i}", f"1.{i}.0", [f"{mod}.py"], eps)
    for j in range(n_other):
        eps = None
        if j % 3 == 0:
            eps = f"[console_scripts]\nother{j} = other_pkg_{j}.cli:main\n"
        elif j % 7 == 1:
            eps = f"[pytest11]\nother{j} = other_pkg_{j}.plugin\n\n[other.group]\nx = y:z\n"
        pkg = site / f"other_pkg_{j}"
        pkg.mkdir()
        (pkg / "__init__.py").write_text("raise RuntimeError('never imported')\n")
        dist(f"other_pkg_{j}", f"2.{j}", [f"other_pkg_{j}/__init__.py"], eps)


# --------------------------------------------------------------------------- worker side

def _worker(measure: str, site: str, repeat: int) -> dict[str, float]:
    """Runs in a fresh interpreter: import what the measure needs, then time the call(s)."""
    t0 = time.perf_counter()
    if measure.startswith("ours"):
        import flx_ipy.core.discovery as disc
    elif measure.startswith("importlib"):
        import importlib.metadata as im
    elif measure.startswith("pluggy"):
        import pluggy

        import flx_ipy  # plugins import it; not part of pluggy's figure
    else:
        import stevedore
        from stevedore import _cache

        import flx_ipy  # noqa: F401
    import_s = time.perf_counter() - t0
    sys.path[:] = [site] + [p for p in sys.path if p and "site-packages" not in p and "work/main" not in p]
    calls: list[float] = []
    if measure.startswith("ours"):
        discovery = disc.Discovery()  # one per manager: the cache lives on it
    for _ in range(repeat):
        t0 = time.perf_counter()
        if measure.startswith("ours"):
            found = discovery.scan()
        elif measure.startswith("importlib"):
            found = list(im.entry_points(group=GROUP))
        elif measure == "pluggy":
            pm = pluggy.PluginManager("bench")
            n = pm.load_setuptools_entrypoints(GROUP)
            found = [None] * n
        elif measure.startswith("stevedore-list"):
            found = _cache.get_group_all(GROUP)
        else:
            stevedore.ExtensionManager.ENTRY_POINT_CACHE.clear()
            found = list(stevedore.ExtensionManager(namespace=GROUP, invoke_on_load=False))
        calls.append(time.perf_counter() - t0)
        if measure == "pluggy":
            break  # a second load would register nothing new
    if measure.startswith("ours"):
        assert len(found) == 100, len(found)
        assert all(c.ok for c in found), [c for c in found if not c.ok][:3]
        imported = [m for m in sys.modules if m.startswith("flxb_plug_")]
        assert not imported, f"listing imported {imported[:3]}"
    else:
        assert len(found) == 100, len(found)
    return {"import": import_s, "first": calls[0],
            "warm": statistics.median(calls[1:]) if len(calls) > 1 else float("nan")}


def run_fresh(measure: str, site: Path, repeat: int = 1, env: dict[str, str] | None = None) -> dict[str, float]:
    """One fresh interpreter running one measure; its figures in seconds."""
    out = subprocess.run(
        [sys.executable, __file__, "--worker", measure, str(site), str(repeat)],
        capture_output=True, text=True, cwd=ROOT, check=False,
        env={**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)})
    if out.returncode:
        raise SystemExit(f"worker {measure} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run_interleaved(specs: dict[str, tuple[str, int, dict[str, str], object]], site: Path,
                    runs: int) -> dict[str, dict[str, float]]:
    """Median over ``runs`` rounds; each round runs every measure once, so a busy moment on the
    machine hits all of them alike rather than whichever happened to be running."""
    results: dict[str, list[dict[str, float]]] = {label: [] for label in specs}
    for _ in range(runs):
        for label, (measure, repeat, env, before) in specs.items():
            if callable(before):
                before()
            results[label].append(run_fresh(measure, site, repeat, env))
    return {label: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for label, rs in results.items()}


def ms(s: float) -> str:
    return "n/a" if s != s else f"{s * 1e3:.3f}" if s < 0.01 else f"{s * 1e3:.2f}"


def scenario(tmp: Path, n_other: int, runs: int) -> list[tuple[str, str, str, str, str]]:
    site = tmp / f"site-{n_other}"
    build_site(site, 100, n_other)
    ndist = 100 + n_other
    cache_miss = tmp / f"sv-miss-{n_other}"
    cache_hit = tmp / f"sv-hit-{n_other}"

    def clear_miss() -> None:
        shutil.rmtree(cache_miss, ignore_errors=True)

    miss, hit = {"XDG_CACHE_HOME": str(cache_miss)}, {"XDG_CACHE_HOME": str(cache_hit)}
    run_fresh("stevedore-list", site, 1, hit)  # write stevedore's disk cache for the "hit" figures
    r = run_interleaved({
        "ours": ("ours", 300, {}, None),
        "importlib": ("importlib", 30, {}, None),
        "pluggy": ("pluggy", 1, {}, None),
        "sv_miss": ("stevedore-list", 1, miss, clear_miss),
        "sv_hit": ("stevedore-list", 30, hit, None),
        "em_miss": ("stevedore-em", 1, miss, clear_miss),
        "em_hit": ("stevedore-em", 1, hit, None),
    }, site, runs)
    ours, imp, plug, sv_miss, sv_hit, em_miss, em_hit = (r[k] for k in (
        "ours", "importlib", "pluggy", "sv_miss", "sv_hit", "em_miss", "em_hit"))
    tag = f"{ndist} dists"
    rows = [
        (f"first call, listing ({tag})", ms(ours["first"]), "importlib.metadata.entry_points(group=)",
         ms(imp["first"]), f"{ours['first'] / imp['first']:.2f}"),
        (f"first call, listing ({tag})", ms(ours["first"]), "stevedore listing, cache miss",
         ms(sv_miss["first"]), f"{ours['first'] / sv_miss['first']:.2f}"),
        (f"first call, listing ({tag})", ms(ours["first"]), "stevedore listing, disk cache hit",
         ms(sv_hit["first"]), f"{ours['first'] / sv_hit['first']:.2f}"),
        (f"first call vs loaders ({tag})", ms(ours["first"]), "pluggy load_setuptools_entrypoints (imports)",
         ms(plug["first"]), f"{ours['first'] / plug['first']:.2f}"),
        (f"first call vs loaders ({tag})", ms(ours["first"]), "stevedore ExtensionManager miss (imports)",
         ms(em_miss["first"]), f"{ours['first'] / em_miss['first']:.2f}"),
        (f"first call vs loaders ({tag})", ms(ours["first"]), "stevedore ExtensionManager hit (imports)",
         ms(em_hit["first"]), f"{ours['first'] / em_hit['first']:.2f}"),
        (f"warm call ({tag})", ms(ours["warm"]), "importlib.metadata.entry_points(group=)",
         ms(imp["warm"]), f"{ours['warm'] / imp['warm']:.3f}"),
        (f"warm call ({tag})", ms(ours["warm"]), "stevedore listing, in-process (never invalidated)",
         ms(sv_hit["warm"]), f"{ours['warm'] / sv_hit['warm']:.2f}"),
        (f"module import ({tag})", ms(ours["import"]) + " (all of flx_ipy)", "import importlib.metadata",
         ms(imp["import"]), f"{ours['import'] / imp['import']:.2f}"),
    ]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="fresh subprocesses per first-call figure")
    ap.add_argument("--no-write", action="store_true", help="do not append to benchmarks/RESULTS.md")
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        measure, site, repeat = args.worker
        print(json.dumps(_worker(measure, site, int(repeat))))
        return
    rows: list[tuple[str, str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="flx-bench-discovery-") as tmp:
        for n_other in (100, 1000):
            rows += scenario(Path(tmp), n_other, args.runs)
    header = ("figure", "flx_ipy ms", "peer", "peer ms", "ratio (flx/peer)")
    table = [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}"]
    table += [f"| {' | '.join(r)} |" for r in rows]
    uname = " ".join(platform.uname())
    machine = (f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}\n- machine: `{uname}`, nproc {os.cpu_count()}\n"
               f"- python: {platform.python_version()}\n- command: `python benchmarks/bench_discovery.py "
               f"--runs {args.runs}`; first calls: median of {args.runs} fresh subprocesses\n")
    text = machine + "\n" + "\n".join(table) + "\n"
    print(text)
    if not args.no_write:
        _append_results(text)


def _append_results(text: str) -> None:
    """Add a run under '## Discovery', keeping every other benchmark's section as it is."""
    path = ROOT / "benchmarks" / "RESULTS.md"
    doc = path.read_text() if path.exists() else "# Benchmark results\n"
    heading = "## Discovery"
    run = f"\n### Run {time.strftime('%Y-%m-%d %H:%M')}\n\n{text}"
    if heading not in doc:
        doc = (doc.rstrip("\n") + f"\n\n{heading}\n\n`benchmarks/bench_discovery.py`: 100 entry-point "
               "plugins among other distributions; targets: warm ≤ 1 ms, first call ≤ importlib.metadata's, "
               "no plugin imported to list.\n" + run)
    else:
        start = doc.index(heading)
        nxt = doc.find("\n## ", start + len(heading))
        end = len(doc) if nxt < 0 else nxt
        doc = doc[:end].rstrip("\n") + "\n" + run + doc[end:]
    path.write_text(doc)


if __name__ == "__main__":
    main()
