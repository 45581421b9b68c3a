"""A real ``jupyter lab`` on 127.0.0.1 and Debian's headless Chromium, driven by Playwright.

One server and one browser for the whole session (starting them is most of the cost); every
test gets a fresh page, a fresh workspace URL and a notebook of its own, so tests do not see
each other's layout or kernels. Nothing waits a fixed time: every wait is on a condition with
a timeout.

The server runs with isolated ``JUPYTER_*`` dirs and with ``PYTHONPATH`` set to this checkout,
so its kernels import the flx_ipy under test. The side panel comes from the installed wheel's
``share/jupyter/labextensions`` if there is one (what a user gets), else from this checkout's
build output ``flx_ipy/labextension`` (a development tree built with ``jlpm build``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("FLX_CHROMIUM", "/usr/bin/chromium")
EXT_NAME = "flx_ipy-labextension"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]


def _missing_requirement() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium; scripts/setup does it as root)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    installed = Path(sys.prefix, "share", "jupyter", "labextensions", EXT_NAME, "package.json")
    built = ROOT / "flx_ipy" / "labextension" / "package.json"
    if not installed.exists() and not built.exists():
        return "the side panel is not built (pip install -e . or jlpm build in labextension/)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    problem = _missing_requirement()
    if problem is None:
        return
    for item in items:
        if "browser" in item.keywords:
            if os.environ.get("CI"):
                # In CI a missing browser is a broken setup, not a reason to pass.
                item.add_marker(pytest.mark.xfail(reason=problem, run=False, strict=True))
            else:
                item.add_marker(pytest.mark.skip(reason=problem))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http(method: str, url: str, body: Any = None, timeout: float = 10.0) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


@dataclass
class LabServer:
    base: str
    token: str
    root: Path

    def api(self, method: str, path: str, body: Any = None) -> Any:
        sep = "&" if "?" in path else "?"
        return _http(method, f"{self.base}{path}{sep}token={self.token}", body)

    def new_notebook(self, cells: list[str], stem: str = "panel") -> str:
        """Create a notebook of code cells through the contents API; returns its path."""
        name = f"{stem}-{uuid.uuid4().hex[:8]}.ipynb"
        nb = {
            "nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "cells": [{"cell_type": "code", "id": uuid.uuid4().hex[:8], "metadata": {}, "source": src,
                       "outputs": [], "execution_count": None} for src in cells],
        }
        self.api("PUT", f"/api/contents/{name}", {"type": "notebook", "format": "json", "content": nb})
        return name

    def url(self, notebook: str) -> str:
        """A fresh workspace per page: no layout carried over from another test."""
        return f"{self.base}/lab/workspaces/t{uuid.uuid4().hex[:8]}/tree/{notebook}?token={self.token}"


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    base_dir = tmp_path_factory.mktemp("lab")
    dirs = {name: base_dir / name for name in ("config", "data", "runtime", "settings", "workspaces",
                                               "ipython", "notebooks", "path")}
    for d in dirs.values():
        d.mkdir()
    # No news/update toast over the panel.
    notif = dirs["settings"] / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notif.parent.mkdir(parents=True)
    notif.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(dirs["config"]), JUPYTER_DATA_DIR=str(dirs["data"]),
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]), JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
        JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]), IPYTHONDIR=str(dirs["ipython"]),
        PYTHONPATH=os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH", "")] if p),
        JUPYTER_PLATFORM_DIRS="1",
    )
    installed = Path(sys.prefix, "share", "jupyter", "labextensions", EXT_NAME)
    if not installed.exists():
        # development tree: serve this checkout's build output
        (dirs["path"] / "labextensions").mkdir()
        (dirs["path"] / "labextensions" / EXT_NAME).symlink_to(ROOT / "flx_ipy" / "labextension")
        env["JUPYTER_PATH"] = str(dirs["path"])
    port, token = _free_port(), secrets.token_hex(16)
    log = open(base_dir / "server.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={dirs['notebooks']}",
         "--LabApp.expose_app_in_browser=True", "--ServerApp.disable_check_xsrf=False"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=dirs["notebooks"],
    )
    server = LabServer(f"http://127.0.0.1:{port}", token, dirs["notebooks"])
    deadline = time.monotonic() + 60
    while True:
        try:
            server.api("GET", "/api/status")
            break
        except (urllib.error.URLError, ConnectionError, OSError):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log.close()
                tail = (base_dir / 'server.log').read_text()[-3000:]
                raise RuntimeError(f"jupyter lab did not start:\n{tail}") from None
            time.sleep(0.1)  # polling the port, not waiting for an outcome
    try:
        yield server
    finally:
        proc.send_signal(signal.SIGTERM)  # lets the server shut its kernels down
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Module-scoped on purpose: Playwright's sync API keeps an asyncio loop marked running on
    the main thread while it is open, which would break every later test using asyncio.run."""
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 850},
        )
        context.set_default_timeout(20_000)
        try:
            yield context
        finally:
            context.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser_context: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        out = ROOT / "test-results"
        out.mkdir(exist_ok=True)
        page.screenshot(path=str(out / f"{request.node.name}.png"))
    page.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report
