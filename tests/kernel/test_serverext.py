"""The Jupyter server extension in a real ``jupyter server`` with a real kernel: it answers from
the kernel's manager, also while a cell runs (ipykernel 7 subshell), and says "kernel busy"
when it cannot. Enabled through the same config file the wheel installs."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from flx_ipy.testing import plugin_source, wait_for, write_plugin

httpx = pytest.importorskip("httpx")
pytest.importorskip("jupyter_server")
jupyter_client = pytest.importorskip("jupyter_client")

pytestmark = pytest.mark.kernel
ROOT = Path(__file__).resolve().parents[2]
TOKEN = "flx-test-token"
CONFIG = ROOT / "jupyter-config" / "jupyter_server_config.d" / "flx_ipy.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    env: dict[str, str]
    runtime: Path

    def client(self, token: str | None = TOKEN) -> httpx.Client:
        headers = {"Authorization": f"token {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=20)

    def kernel_client(self, kernel_id: str):  # type: ignore[no-untyped-def]
        cf = wait_for(lambda: next(iter(self.runtime.glob(f"kernel-{kernel_id}.json")), None), timeout=30)
        kc = jupyter_client.BlockingKernelClient(connection_file=str(cf))
        kc.load_connection_file()
        kc.start_channels()
        # not wait_for_ready(): its heartbeat check calls a slow (loaded) machine's kernel dead
        msg_id = kc.kernel_info()
        while kc.get_shell_msg(timeout=60)["parent_header"].get("msg_id") != msg_id:
            pass
        return kc


def start_server(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[bytes], Server]:
    config_dir = tmp_path / "config"
    (config_dir / "jupyter_server_config.d").mkdir(parents=True)
    shutil.copy(CONFIG, config_dir / "jupyter_server_config.d" / "flx_ipy.json")  # the file pip installs
    runtime = tmp_path / "runtime"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JUPYTER_CONFIG_DIR": str(config_dir),
           "JUPYTER_RUNTIME_DIR": str(runtime), "JUPYTER_PLATFORM_DIRS": "1"}
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", f"--ServerApp.port={port}", "--ServerApp.ip=127.0.0.1",
         "--ServerApp.open_browser=False", "--allow-root", f"--IdentityProvider.token={TOKEN}",
         f"--ServerApp.root_dir={tmp_path}",
         *extra], env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "server.log", "wb"), cwd=tmp_path)
    server = Server(f"http://127.0.0.1:{port}", env, runtime)

    def up() -> bool:
        try:
            with server.client() as c:
                return c.get("/api/status").status_code == 200
        except httpx.TransportError:
            return False

    wait_for(up, timeout=60, interval=0.1)
    return proc, server


@pytest.fixture
def jserver(tmp_path: Path) -> Iterator[Server]:
    proc, server = start_server(tmp_path)
    try:
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def kernel_with_plugin(server: Server, tmp_path: Path):  # type: ignore[no-untyped-def]
    with server.client() as c:
        kid = c.post("/api/kernels", json={"name": "python3"}).json()["id"]
    kc = server.kernel_client(kid)
    path = write_plugin(tmp_path / "plugins" / "sx_counter.py", plugin_source("counter", "1.2.3"))
    reply = kc.execute_interactive(
        f"%load_ext flx_ipy\nimport flx_ipy\nflx_ipy.get_manager().load({str(path)!r}, start=True)", timeout=60)
    assert reply["content"]["status"] == "ok", reply["content"]
    return kid, kc


def test_extension_answers_from_the_kernel_also_while_a_cell_runs(jserver: Server, tmp_path: Path) -> None:
    kid, kc = kernel_with_plugin(jserver, tmp_path)
    try:
        with jserver.client() as c:
            r = c.get(f"/flx_ipy/api/kernels/{kid}/plugins")
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["kernel_id"] == kid and body["manager"] is True
            plugins = [(p["name"], p["version"], p["status"]) for p in body["plugins"]]
            assert plugins == [("counter", "1.2.3", "running")]
            ready = c.get(f"/flx_ipy/api/kernels/{kid}/readyz?verbose")
            assert ready.status_code == 200 and "[+]plugin:counter ok" in ready.text
            # a long cell in the main shell; the extension asks a subshell meanwhile
            msg_id = kc.execute("import time; time.sleep(6)")
            wait_for(lambda: _busy(kc), timeout=20)
            t0 = time.monotonic()
            r = c.get(f"/flx_ipy/api/kernels/{kid}/plugins")
            assert r.status_code == 200 and r.json()["plugins"][0]["name"] == "counter"
            assert time.monotonic() - t0 < 5  # answered before the cell ended
            assert not _replied(kc, msg_id)  # and the cell is indeed still running
            assert c.get("/flx_ipy/api/kernels/no-such-kernel/plugins").status_code == 404
        with jserver.client(None) as anon:
            assert anon.get(f"/flx_ipy/api/kernels/{kid}/plugins").status_code == 403  # Jupyter's own auth
    finally:
        kc.stop_channels()


def test_without_subshells_a_busy_kernel_is_a_clear_503(tmp_path: Path) -> None:
    proc, server = start_server(tmp_path, "--FlxIpyServerExtension.use_subshells=False")
    try:
        kid, kc = kernel_with_plugin(server, tmp_path)
        with server.client() as c:
            assert c.get(f"/flx_ipy/api/kernels/{kid}/plugins").status_code == 200  # idle: main shell answers
            kc.execute("import time; time.sleep(5)")
            wait_for(lambda: c.get(f"/api/kernels/{kid}").json()["execution_state"] == "busy", timeout=20)
            r = c.get(f"/flx_ipy/api/kernels/{kid}/plugins")
            assert r.status_code == 503 and "kernel busy" in r.json()["error"]
        kc.stop_channels()
    finally:
        proc.terminate()
        proc.wait(20)


def test_listed_by_jupyter_server_extension_list(tmp_path: Path) -> None:
    config_dir = tmp_path / "config" / "jupyter_server_config.d"
    config_dir.mkdir(parents=True)
    shutil.copy(CONFIG, config_dir / "flx_ipy.json")
    assert json.loads(CONFIG.read_text()) == {"ServerApp": {"jpserver_extensions": {"flx_ipy": True}}}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    out = subprocess.run([sys.executable, "-m", "jupyter_server.extension.serverextension", "list"],
                         capture_output=True, text=True, env=env, timeout=120)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)  # colours
    mine = text.split(str(tmp_path / "config"))[1].split("Config dir:")[0]  # the section of our config dir
    assert "flx_ipy enabled" in mine and re.search(r"flx_ipy \S+ OK", mine), text
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"etc/jupyter/jupyter_server_config.d/flx_ipy.json"' in pyproject  # what pip installs


def _busy(kc) -> bool:  # type: ignore[no-untyped-def]
    try:
        while True:
            msg = kc.get_iopub_msg(timeout=0.1)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "busy":
                return True
    except Exception:
        return False


def _replied(kc, msg_id: str) -> bool:  # type: ignore[no-untyped-def]
    try:
        while True:
            msg = kc.get_shell_msg(timeout=0.05)
            if msg["parent_header"].get("msg_id") == msg_id:
                return True
    except Exception:
        return False
