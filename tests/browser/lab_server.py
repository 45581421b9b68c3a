"""Start a real ``jupyter lab`` for the browser tests and ``benchmarks/bench_panel.py``.

Isolated ``JUPYTER_*`` dirs, a token, 127.0.0.1 only, the news/update toast off, ``PYTHONPATH``
set to this checkout so its kernels import the flx_ipy under test. The side panel comes from the
installed wheel's ``share/jupyter/labextensions`` if there is one (what a user gets), else from
this checkout's build output ``flx_ipy/labextension`` (a development tree built with ``jlpm build``).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EXT_NAME = "flx_ipy-labextension"


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


@contextmanager
def running_lab(base_dir: Path, *, root: Path = ROOT) -> Iterator[LabServer]:
    """A ``jupyter lab`` on 127.0.0.1 with its own dirs under ``base_dir``, kernels importing the
    flx_ipy of ``root``; stopped (SIGTERM, so it shuts its kernels down) on exit."""
    dirs = {name: base_dir / name for name in ("config", "data", "runtime", "settings", "workspaces",
                                               "ipython", "notebooks", "path")}
    for d in dirs.values():
        d.mkdir(parents=True)
    # No news/update toast over the panel.
    notif = dirs["settings"] / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notif.parent.mkdir(parents=True)
    notif.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(dirs["config"]), JUPYTER_DATA_DIR=str(dirs["data"]),
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]), JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
        JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]), IPYTHONDIR=str(dirs["ipython"]),
        PYTHONPATH=os.pathsep.join(p for p in [str(root), os.environ.get("PYTHONPATH", "")] if p),
        JUPYTER_PLATFORM_DIRS="1",
    )
    installed = Path(sys.prefix, "share", "jupyter", "labextensions", EXT_NAME)
    if not installed.exists():
        # development tree: serve this checkout's build output
        (dirs["path"] / "labextensions").mkdir()
        (dirs["path"] / "labextensions" / EXT_NAME).symlink_to(root / "flx_ipy" / "labextension")
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


