"""Save in JupyterLab → the side panel shows the new version, in a real browser.

Run: ``python benchmarks/bench_panel.py [--saves 30] [--no-write]`` (needs what the browser tests
need: Chromium, Playwright, the built extension; ``scripts/setup`` installs them).

A real ``jupyter lab`` (``tests/browser/lab_server.py``), headless Chromium, a notebook whose
kernel runs ``%load_ext flx_ipy``, loads and starts a plugin under the server root and watches
it, with the side panel open. Each save is made **from the page**, as JupyterLab's editor saves
(``serviceManager.contents.save``: the server writes the file), with the plugin's version
bumped. Timed in the page with ``performance.now()``:

- **panel**: from just before the save request until the panel's DOM shows the new version
  (a ``MutationObserver`` on the panel), and until the next animation frame after that (painted).
- **floor**, measured in the same run and the same page: the save request's own round trip
  (the server has written the file). Nothing can show a save before it is on disk.
- **for scale**: one kernel round trip of an empty cell (``execute_request`` of ``pass`` until
  its reply), what running a cell to look at the plugin would cost at least.
- **kernel reloaded**: the plugin's ``last_reload.finished_at`` (kernel clock) minus the save's
  start (page clock, same machine), to split the figure into "save → reloaded" and
  "reloaded → panel".

No peer tool shows a kernel's plugin state in JupyterLab, so the comparison is with the floor.
Results go to ``benchmarks/RESULTS.md`` under "## Save → side panel (browser)".
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "browser"), str(ROOT / "benchmarks")]

from _common import append_results, machine, pct, ratio, table  # noqa: E402
from lab_js import KERNEL_READY, RUN_CELL  # noqa: E402
from lab_server import running_lab  # noqa: E402

from flx_ipy.testing import plugin_source, write_plugin  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]

BODY = ("def start(self):\n    self.n = getattr(self, 'n', 0)\n\n"
        "def health_check(self):\n    return HealthStatus.healthy('ok')")

SAVE_AND_WATCH = """async ({ path, content, want }) => {
  const app = window.jupyterapp;
  const panel = document.querySelector("[data-testid='flx-panel']");
  const shows = () => {
    const el = panel.querySelector("[data-testid='flx-version-bench']");
    return !!el && el.textContent === want;
  };
  let observer = null;
  const t0 = performance.now();
  const epoch0 = Date.now() / 1000;
  const seen = new Promise(resolve => {
    observer = new MutationObserver(() => { if (shows()) { resolve(performance.now()); } });
    observer.observe(panel, { subtree: true, childList: true, characterData: true });
  });
  await app.serviceManager.contents.save(path, { type: 'file', format: 'text', content });
  const saved = performance.now();
  const dom = await seen;
  observer.disconnect();
  const painted = await new Promise(resolve => requestAnimationFrame(() => resolve(performance.now())));
  return { saved: saved - t0, dom: dom - t0, painted: painted - t0, epoch0 };
}"""

KERNEL_RTT = """async () => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const t0 = performance.now();
  await kernel.requestExecute({ code: 'pass', store_history: false, silent: true }).done;
  return performance.now() - t0;
}"""

KERNEL_VALUE = """async (code) => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const future = kernel.requestExecute({ code, store_history: false });
  let out = null;
  future.onIOPub = msg => { if (msg.header.msg_type === 'execute_result') { out = msg.content.data['text/plain']; } };
  await future.done;
  return out;
}"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--saves", type=int, default=30, help="timed saves (after 3 warm-up saves); at least 20")
    ap.add_argument("--pause", type=float, default=0.15, help="seconds between saves")
    ap.add_argument("--no-write", action="store_true", help="print only; do not append to RESULTS.md")
    args = ap.parse_args()
    if args.saves < 20:
        ap.error("--saves must be at least 20 for a p95")
    from playwright.sync_api import sync_playwright

    base = Path(tempfile.mkdtemp(prefix="flx-bench-panel-"))
    with running_lab(base / "lab") as server:
        work = server.root / "bench"
        plugin = write_plugin(work / "bench.py", plugin_source("bench", "1.0.0", BODY, cls="Bench"))
        rel = str(plugin.relative_to(server.root))
        notebook = server.new_notebook([
            "%load_ext flx_ipy\nimport flx_ipy\npm = flx_ipy.get_manager()",
            f"pm.load({str(plugin)!r}, start=True)",
            f"pm.watch([{str(work)!r}])",
        ], stem="bench")
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                str(base / "chromium"), executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 850})
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.goto(server.url(notebook))
            page.wait_for_function(KERNEL_READY, timeout=90_000)
            page.evaluate("() => window.jupyterapp.commands.execute('flx_ipy:open-panel')")
            for i in range(3):
                page.evaluate(RUN_CELL, i)
            page.wait_for_function("() => { const el = document.querySelector(\"[data-testid='flx-watcher']\");"
                                   " return !!el && el.dataset.watching === 'true'; }")
            page.wait_for_function(KERNEL_READY)
            rows = []
            for k in range(args.saves + 3):
                version = f"1.0.{k + 1}"
                content = plugin_source("bench", version, BODY, cls="Bench")
                r = page.evaluate(SAVE_AND_WATCH, {"path": rel, "content": content, "want": f"v{version}"})
                finished = page.evaluate(KERNEL_VALUE, "pm.plugins['bench'].last_reload.finished_at")
                rtt = page.evaluate(KERNEL_RTT)
                if k >= 3:
                    rows.append({**r, "rtt": rtt, "reloaded": (float(finished) - r["epoch0"]) * 1000})
                time.sleep(args.pause)  # a benchmark's pacing between saves, not a wait for an outcome
            context.close()

    def col(key: str) -> list[float]:
        return [r[key] for r in rows]

    floor = col("saved")
    p50, p95 = statistics.median(col("painted")), pct(col("painted"), 95)
    f50, f95 = statistics.median(floor), pct(floor, 95)
    fig = [
        ("save → panel DOM shows new version", statistics.median(col("dom")), pct(col("dom"), 95)),
        ("save → panel painted (next frame)", p50, p95),
        ("save → kernel reload finished", statistics.median(col("reloaded")), pct(col("reloaded"), 95)),
        ("floor: the save request's round trip (file written)", f50, f95),
        ("for scale: an empty cell's execute round trip", statistics.median(col("rtt")), pct(col("rtt"), 95)),
    ]
    text = machine(f"python benchmarks/bench_panel.py --saves {args.saves}") + (
        f"- {len(rows)} timed saves from the page (contents API), each bumping the plugin's version; "
        "real jupyter lab + headless Chromium + ipykernel, `pm.watch()` defaults\n\n")
    text += table(["figure", "p50 ms", "p95 ms"], [(n, f"{a:.1f}", f"{b:.1f}") for n, a, b in fig])
    text += f"\nratio to the floor (painted / floor): p50 {ratio(p50, f50)}, p95 {ratio(p95, f95)}\n"
    print(text)
    if not args.no_write:
        append_results(
            "## Save → side panel (browser)",
            "`benchmarks/bench_panel.py`: a save made in JupyterLab until the side panel shows the new "
            "version, in headless Chromium against a real server and kernel; next to the floor (the "
            "save request's own round trip) measured in the same page.",
            text)


if __name__ == "__main__":
    main()
