"""``flx-ipy serve`` as a real process on 127.0.0.1, driven over real HTTP with httpx."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from flx_ipy.testing import plugin_source, wait_for, write_plugin

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
parser = pytest.importorskip("prometheus_client.parser")

TOKEN = "s3cret-token"
ROOT = Path(__file__).resolve().parents[1]


def stopper(tag: str) -> str:
    return f"""
    def stop(self):
        with open(os.environ["FLX_TEST_STOP_LOG"], "a") as fh:
            fh.write("{tag}\\n")
"""


APP_BODY = """
    def start(self):
        self.calls = getattr(self, "calls", 0)
    def health_check(self):
        if os.path.exists(os.environ["FLX_TEST_FLAG"]):
            return HealthStatus.unhealthy("flag file present")
        return HealthStatus.healthy("fine")
    def hello(self):
        return "{tag}"
"""


def write_app(folder: Path, version: str, tag: str) -> Path:
    return write_plugin(folder / "app.py", plugin_source(
        "app", version, APP_BODY.replace("{tag}", tag) + stopper("app"), requires=("base>=1.0",),
        header="import os\n"))


@dataclass
class Served:
    proc: subprocess.Popen[str]
    url: str
    folder: Path
    stop_log: Path
    flag: Path
    lines: list[str]

    def client(self, token: str | None = TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)


def start_server(tmp_path: Path, *extra: str, token: bool = True) -> Served:
    folder = tmp_path / "plugins"
    folder.mkdir(exist_ok=True)
    write_plugin(folder / "base.py", plugin_source("base", "1.0.0", stopper("base"), header="import os\n"))
    write_app(folder, "1.0.0", "v1")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FLX_TEST_STOP_LOG": str(tmp_path / "stops.txt"),
           "FLX_TEST_FLAG": str(tmp_path / "unhealthy.flag")}
    env.pop("FLX_IPY_TOKEN", None)
    cmd = [sys.executable, "-m", "flx_ipy", "serve", str(folder), "--port", "0", "--health-interval", "0.05",
           *(("--token", TOKEN) if token else ()), *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("serving ("):
            break
    else:
        raise AssertionError(f"serve exited: {proc.wait()} {proc.stderr.read() if proc.stderr else ''}")
    # keep draining stdout so the server never blocks on a full pipe
    threading.Thread(target=lambda: lines.extend(ln.rstrip("\n") for ln in proc.stdout or ()), daemon=True).start()
    url = lines[0].split()[-1]
    return Served(proc, url, folder, tmp_path / "stops.txt", tmp_path / "unhealthy.flag", lines)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    s = start_server(tmp_path)
    try:
        yield s
    finally:
        if s.proc.poll() is None:
            s.proc.send_signal(signal.SIGTERM)
            try:
                s.proc.wait(10)
            except subprocess.TimeoutExpired:
                s.proc.kill()
                s.proc.wait()


def test_startup_prints_url_and_plugins_and_probes_answer(served: Served) -> None:
    assert served.url.startswith("http://127.0.0.1:")
    assert served.lines[1] == "token: (as given)"
    assert any("app 1.0.0 running" in ln for ln in served.lines)
    with served.client(None) as c:
        assert c.get("/livez").status_code == 200
        r = wait_for(lambda: (lambda r: r if r.status_code == 200 else None)(c.get("/readyz")), timeout=10)
        assert r.text == "ok\n"
        verbose = c.get("/readyz?verbose").text
        assert "[+]plugin:app ok" in verbose and "[+]plugin:base ok" in verbose and "readyz check passed" in verbose
        plugins = c.get("/api/plugins").json()
        assert [p["name"] for p in plugins] == ["app", "base"]
        app = plugins[0]
        assert (app["version"], app["status"], app["isolated"], app["revision"]) == ("1.0.0", "running", False, 1)
        assert set(app) >= {"name", "version", "status", "health", "isolated", "signature"}
        one = c.get("/api/plugins/app").json()
        assert one["history"][0]["reason"] == "load" and "start" in one["metrics"]["hooks"]
        missing = c.get("/api/plugins/nope")
        assert missing.status_code == 404 and "nope" in missing.json()["error"]


def test_actions_need_the_bearer_token(served: Served) -> None:
    with served.client(None) as c:
        r = c.post("/api/plugins/app/stop")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    with served.client("wrong") as c:
        assert c.post("/api/plugins/app/stop").status_code == 403
    with served.client(f"{TOKEN}x") as c:
        assert c.post("/api/plugins/app/stop").status_code == 403
    with served.client() as c:
        assert c.get("/api/plugins/app").json()["status"] == "running"  # nothing was done
        r = c.post("/api/plugins/app/stop")
        assert r.status_code == 200 and r.json()["plugin"]["status"] == "stopped"


def test_readyz_flips_with_health(served: Served) -> None:
    with served.client(None) as c:
        wait_for(lambda: c.get("/readyz").status_code == 200, timeout=10)
        served.flag.write_text("x")
        r = wait_for(lambda: (lambda r: r if r.status_code == 503 else None)(c.get("/readyz")), timeout=10)
        assert "[-]plugin:app failed: unhealthy: flag file present" in r.text and "base" not in r.text
        verbose = c.get("/readyz?verbose").text
        assert "[+]plugin:base ok" in verbose and "[-]plugin:app" in verbose and "readyz check failed" in verbose
        served.flag.unlink()
        wait_for(lambda: c.get("/readyz").status_code == 200, timeout=10)


def test_actions_reload_rollback_start_stop(served: Served) -> None:
    with served.client() as c:
        assert c.post("/api/plugins/app/stop").status_code == 200
        assert c.get("/readyz").status_code == 200  # stopped on purpose is not "not ready"
        assert c.post("/api/plugins/app/stop").status_code == 409  # not running: clear conflict
        assert c.post("/api/plugins/app/start").json()["plugin"]["status"] == "running"
        write_app(served.folder, "1.1.0", "v2")
        r = c.post("/api/plugins/app/reload")
        assert r.status_code == 200 and r.json()["ok"] and r.json()["plugin"]["version"] == "1.1.0"
        r = c.post("/api/plugins/app/rollback")
        assert r.status_code == 200 and r.json()["plugin"]["version"] == "1.0.0"
        assert (served.folder / "app.py").read_text().count("version='1.1.0'") == 1  # files untouched
        r = c.post("/api/plugins/app/rollback", json={"to": 2})
        assert r.status_code == 200 and r.json()["plugin"]["version"] == "1.1.0"
        history = c.get("/api/plugins/app").json()["history"]
        assert [(h["revision"], h["reason"], h["rollback_of"]) for h in history] == [
            (1, "load", None), (2, "reload", None), (3, "rollback", 1), (4, "rollback", 2)]
        r = c.post("/api/plugins/app/rollback?to=99")
        assert r.status_code == 409 and "no revision 99" in r.json()["error"]
        assert c.post("/api/plugins/app/rollback", json={"to": "x"}).status_code == 400
        assert c.post("/api/plugins/app/explode").status_code == 404
        assert c.post("/api/plugins/nope/start").status_code == 404
        write_plugin(served.folder / "app.py", "def broken(:\n")
        r = c.post("/api/plugins/app/reload")
        assert r.status_code == 409 and r.json()["result"]["rolled_back"] and "compile" in r.json()["error"]
        assert c.get("/api/plugins/app").json()["version"] == "1.1.0"


def test_metrics_parse_with_prometheus_client(served: Served) -> None:
    with served.client() as c:
        write_app(served.folder, "1.1.0", "v2")
        c.post("/api/plugins/app/reload")
        wait_for(lambda: c.get("/readyz").status_code == 200, timeout=10)
        r = c.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    fams = {f.name: f for f in parser.text_string_to_metric_families(r.text)}
    up = {s.labels["plugin"]: s.value for s in fams["flx_ipy_plugin_up"].samples}
    assert up == {"app": 1.0, "base": 1.0}
    reloads = {(s.labels["plugin"], s.labels["outcome"]): s.value for s in fams["flx_ipy_plugin_reloads"].samples
               if s.name == "flx_ipy_plugin_reloads_total"}
    assert reloads[("app", "ok")] == 1.0 and reloads[("app", "rolled_back")] == 0.0
    hist = fams["flx_ipy_plugin_hook_duration_seconds"]
    assert hist.type == "histogram"
    counts = {(s.labels["plugin"], s.labels["hook"]): s.value for s in hist.samples if s.name.endswith("_count")}
    assert counts[("app", "start")] == 2.0 and counts[("app", "health_check")] >= 1
    inf = [s for s in hist.samples if s.name.endswith("_bucket") and s.labels.get("le") == "+Inf"
           and s.labels["plugin"] == "app" and s.labels["hook"] == "start"]
    assert inf[0].value == 2.0


def test_event_stream_sends_manager_events(served: Served) -> None:
    got: list[dict[str, object]] = []
    ready = threading.Event()

    def listen() -> None:
        with httpx.Client(base_url=served.url, timeout=10) as c, c.stream("GET", "/api/events") as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            for line in r.iter_lines():
                ready.set()
                if line.startswith("data: "):
                    got.append(json.loads(line[6:]))
                    if got[-1]["kind"] == "reloaded":
                        return

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    assert ready.wait(10)
    with served.client() as c:
        assert c.post("/api/plugins/app/reload").status_code == 200
    t.join(10)
    kinds = [e["kind"] for e in got]
    assert "reloading" in kinds and kinds[-1] == "reloaded" and got[-1]["plugin"] == "app"
    assert got[-1]["details"]["revision"] == 2


def test_sigterm_stops_plugins_dependants_first(served: Served) -> None:
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(15) == 0
    assert served.stop_log.read_text().split() == ["app", "base"]
    assert "stopped app, base" in (served.proc.stderr.read() if served.proc.stderr else "")


def test_watch_reloads_on_save(tmp_path: Path) -> None:
    s = start_server(tmp_path, "--watch", token=False)
    try:
        assert s.lines[1].startswith("token: ") and len(s.lines[1]) > 20  # generated and printed
        with s.client(None) as c:
            write_app(s.folder, "1.2.0", "v3")
            wait_for(lambda: c.get("/api/plugins/app").json()["version"] == "1.2.0", timeout=15)
            assert c.get("/api/plugins/app").json()["history"][-1]["reason"] == "reload"
        with s.client(s.lines[1].split()[-1]) as c:
            assert c.post("/api/plugins/app/rollback").json()["plugin"]["version"] == "1.0.0"
    finally:
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(15) == 0


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "flx_ipy", "serve"], capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "--entry-points" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.py").write_text("from flx_ipy import Plugin\nclass B(Plugin):\n    metadata = 3\n")
    r = subprocess.run([sys.executable, "-m", "flx_ipy", "serve", str(bad), "--port", "0"], capture_output=True,
                       text=True, env=env, timeout=60)
    assert r.returncode == 1 and "broken.py" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "flx_ipy", "serve", str(tmp_path / "nowhere.py")],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2 and "no such file" in r.stderr
    helptext = subprocess.run([sys.executable, "-m", "flx_ipy", "serve", "--help"], capture_output=True, text=True,
                              env=env, timeout=60).stdout
    assert "entry point" in helptext and "folder" in helptext and "--watch" in helptext


def test_grpc_health_one_service_per_plugin(tmp_path: Path) -> None:
    grpc = pytest.importorskip("grpc")
    health_pb2 = pytest.importorskip("grpc_health.v1.health_pb2")
    from grpc_health.v1 import health_pb2_grpc

    s = start_server(tmp_path, "--grpc-port", "0")
    try:
        line = next(ln for ln in s.lines if ln.startswith("grpc health: "))
        target = line.split()[-1]
        with grpc.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)

            def status(service: str) -> int:
                return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status

            serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
            wait_for(lambda: status("") == serving, timeout=10)
            assert status("app") == serving and status("base") == serving
            s.flag.write_text("x")
            wait_for(lambda: status("app") == not_serving, timeout=10)
            assert status("") == not_serving and status("base") == serving
            with pytest.raises(grpc.RpcError) as err:
                status("nope")
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
            s.flag.unlink()
            wait_for(lambda: status("") == serving, timeout=10)
    finally:
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(15) == 0


def test_serves_entry_point_plugins_by_name_and_all(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist = site / "flx_ep_demo-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: flx-ep-demo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[flx_ipy.plugins]\nepone = flx_ep_one:One\neptwo = flx_ep_two:Two\n")
    write_plugin(site / "flx_ep_one.py", plugin_source("epone", "1.0.0", cls="One"))
    write_plugin(site / "flx_ep_two.py", plugin_source("eptwo", "2.0.0", cls="Two"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(site)])}
    for args, expected in ((["epone"], ["epone"]), (["--entry-points"], ["epone", "eptwo"])):
        proc = subprocess.Popen([sys.executable, "-m", "flx_ipy", "serve", *args, "--port", "0"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        try:
            assert proc.stdout is not None
            lines = []
            for line in proc.stdout:
                lines.append(line.rstrip())
                if line.startswith("serving ("):
                    break
            else:
                raise AssertionError(proc.stderr.read() if proc.stderr else "serve exited")
            with httpx.Client(base_url=lines[0].split()[-1], timeout=10) as c:
                names = [p["name"] for p in c.get("/api/plugins").json()]
                assert [n for n in names if n.startswith("ep")] == expected
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0
