"""Operations overheads: hook timing, the HTTP probes, the /metrics scrape, rollback vs reload.

Each figure beside its floor, measured in the same run:

* hook-call timing: ``hooks.invoke_sync`` with the metrics sink vs the same call untimed
  (target: ≤ 1 µs added per call);
* ``GET /readyz`` and ``GET /api/plugins`` with 50 running plugins over real HTTP (uvicorn on
  127.0.0.1, httpx keep-alive client) vs a bare Starlette route returning the same bytes under
  the same server (targets: ≤ 2 ms / ≤ 10 ms p50);
* the ``/metrics`` scrape with 50 plugins: rendering in-process and over HTTP;
* ``pm.rollback`` vs ``pm.reload`` of the same ~200-line plugin (target ≤ 1.2x).

Run: ``python benchmarks/bench_ops.py [--n 2000] [--write]`` (``--write`` appends to RESULTS.md).
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import append_results, machine, med, pct, plugin_text, ratio, table

from flx_ipy import PluginManager
from flx_ipy.core.steps import HookCall
from flx_ipy.testing import plugin_source, write_plugin


def us(x: float) -> str:
    return f"{x * 1e6:.3f}"


def ms(x: float) -> str:
    return f"{x * 1e3:.3f}"


# ---------------------------------------------------------------------------- hook timing
def bench_hooks(n: int) -> list[list[str]]:
    """The manager hands every HookCall to its runner (``pm.hooks``) through ``pm._invoke``,
    which times it; the floor is the same call handed to the runner directly."""
    def hook() -> None:
        return None

    pm = PluginManager(entry_points=False)
    call = HookCall("p", "start", hook)
    best_plain, best_timed = [], []
    for _ in range(7):
        invoke = pm.hooks.invoke
        t0 = time.perf_counter()
        for _ in range(n):
            invoke(call)
        best_plain.append((time.perf_counter() - t0) / n)
        invoke = pm._invoke
        t0 = time.perf_counter()
        for _ in range(n):
            invoke(call)
        best_timed.append((time.perf_counter() - t0) / n)
    pm.close()
    p, t = min(best_plain), min(best_timed)
    return [["hook call through the runner (pm.hooks.invoke), untimed (floor)", us(p), "", ""],
            ["same call as operations make it (pm._invoke: timed into pm.metrics())", us(t), us(p), ratio(t, p)],
            ["added per call", us(t - p), "target ≤ 1.000", ""]]


# ---------------------------------------------------------------------------- HTTP
def _serve(app: object) -> tuple[str, object]:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY (see serve.py)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server


def _latencies(client: object, path: str, n: int) -> list[float]:
    out = []
    for _ in range(min(50, n)):
        client.get(path)  # type: ignore[attr-defined]
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(path)  # type: ignore[attr-defined]
        out.append(time.perf_counter() - t0)
        assert r.status_code in (200, 503), r.status_code
    return out


def bench_http(n: int, tmp: Path) -> list[list[str]]:
    import httpx
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from flx_ipy.http import app as make_app
    from flx_ipy.http.prom import render

    folder = tmp / "fifty"
    folder.mkdir()
    body = 'def health_check(self):\n    return HealthStatus.healthy("fine")\ndef start(self):\n    self.n = 0\n'
    for i in range(50):
        write_plugin(folder / f"p{i:02d}.py", plugin_source(f"p{i:02d}", "1.0.0", body, cls=f"P{i:02d}"))
    pm = PluginManager(entry_points=False)
    for i in range(50):
        pm.load(str(folder / f"p{i:02d}.py"), start=True)
    pm.health()
    ours = make_app(pm, token="t", health_interval=0)
    url, server = _serve(ours)
    rows = []
    with httpx.Client(base_url=url) as c:
        ready_body = c.get("/readyz").content
        plugins_body = c.get("/api/plugins").content
        metrics_body = c.get("/metrics").content

        def fixed(content: bytes, media: str):  # type: ignore[no-untyped-def]
            async def endpoint(request: object) -> Response:
                return Response(content, media_type=media)
            return endpoint

        bare = Starlette(routes=[Route("/readyz", fixed(ready_body, "text/plain")),
                                 Route("/api/plugins", fixed(plugins_body, "application/json")),
                                 Route("/metrics", fixed(metrics_body, "text/plain"))])
        burl, bserver = _serve(bare)
        with httpx.Client(base_url=burl) as b:
            for path, target in (("/readyz", "≤ 2 ms"), ("/api/plugins", "≤ 10 ms"), ("/metrics", "")):
                o = _latencies(c, path, n)
                f = _latencies(b, path, n)
                rows.append([f"GET {path}, 50 plugins, p50 / p99 ms", f"{ms(med(o))} / {ms(pct(o, 99))}",
                             f"{ms(med(f))} / {ms(pct(f, 99))}", f"{ratio(med(o), med(f))} (target {target})"
                             if target else ratio(med(o), med(f))])
        bserver.should_exit = True  # type: ignore[attr-defined]
    cache: dict[str, object] = {}
    render(pm, cache)
    times = []
    for _ in range(200):
        t0 = time.perf_counter()
        render(pm, cache)
        times.append(time.perf_counter() - t0)
    rows.append(["/metrics render in-process, 50 plugins (median ms, bytes)",
                 f"{ms(med(times))} ({len(metrics_body)} B)", "", ""])
    server.should_exit = True  # type: ignore[attr-defined]
    pm.close()
    return rows


# ---------------------------------------------------------------------------- rollback vs reload
def bench_rollback(n: int, tmp: Path) -> list[list[str]]:
    path = tmp / "bench_plugin.py"
    write_plugin(path, plugin_text(0))
    pm = PluginManager(entry_points=False)
    pm.load(str(path), start=True)
    reloads, rollbacks = [], []
    for i in range(1, n + 1):
        write_plugin(path, plugin_text(i))
        r = pm.reload("bench")
        assert r.ok, r.error
        reloads.append(r.duration)
        r = pm.rollback("bench")
        assert r.ok, r.error
        rollbacks.append(r.duration)
    pm.close()
    a, b = med(rollbacks), med(reloads)
    return [["pm.reload of a ~200-line plugin (median / p99 ms)", f"{ms(b)} / {ms(pct(reloads, 99))}", "", ""],
            ["pm.rollback of the same plugin (median / p99 ms)", f"{ms(a)} / {ms(pct(rollbacks, 99))}",
             f"{ms(b)}", f"{ratio(a, b)} (target ≤ 1.2x)"]]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000, help="HTTP requests per endpoint")
    ap.add_argument("--hook-calls", type=int, default=200_000)
    ap.add_argument("--reloads", type=int, default=200)
    ap.add_argument("--write", action="store_true", help="append the run to benchmarks/RESULTS.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rows = bench_hooks(args.hook_calls)
        rows += bench_rollback(args.reloads, tmp)
        rows += bench_http(args.n, tmp)
    text = machine(" ".join(["python", *sys.argv])) + "\n" + table(
        ["figure", "flx_ipy (µs for hook rows)", "floor, same run", "ratio"], rows)
    print(text)
    if args.write:
        append_results("## Operations", "`benchmarks/bench_ops.py`: hook-call timing overhead (≤ 1 µs), "
                       "HTTP probes with 50 plugins beside a bare Starlette route (≤ 2 ms / ≤ 10 ms), "
                       "the /metrics scrape, rollback vs reload (≤ 1.2x).", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
