"""An isolated plugin in a real ipykernel: crash while idle, restart with state, and no worker
left behind when the kernel shuts down."""

from __future__ import annotations

import ast
import os
import select
import signal
import sys
from pathlib import Path

import pytest
from iopub import running_kernel
from test_kernel_reload import Kernel

from flx_ipy.testing import plugin_source, wait_for, write_plugin

pytestmark = [pytest.mark.kernel,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="worker sandbox is Linux-only")]

BODY = """
def bump(self):
    self.count = getattr(self, "count", 0) + 1
    return self.count
"""


def gone(pid: int, timeout: float = 10.0) -> bool:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def test_isolated_plugin_in_a_kernel_restarts_with_state_and_leaves_nothing(tmp_path: Path) -> None:
    path = write_plugin(tmp_path / "plugins" / "kiso.py", plugin_source("kiso", "1.0.0", BODY))
    with running_kernel(tmp_path) as (km, kc):
        k = Kernel(km, kc)
        k.run(f"""
            %load_ext flx_ipy
            %plugin load {path} --isolated --start
            from flx_ipy import get_manager
            pm = get_manager()
            p = pm.get("kiso")
            p.bump(); p.bump()
            assert pm.plugins["kiso"].worker.checkpointed.wait(10)
        """)
        pid = int(k.evaluate('pm.plugins["kiso"].worker.pid'))
        os.kill(pid, signal.SIGKILL)  # while the kernel is idle
        assert gone(pid)
        wait_for(lambda: k.evaluate('pm.plugins["kiso"].worker.restarts') == "1", timeout=20, interval=0.05)
        assert k.evaluate("p.bump()") == "3"  # the proxy taken before the crash, state kept
        assert k.evaluate('str(pm.status("kiso"))') == "'running'"
        workers = ast.literal_eval(k.evaluate(
            "[w.pid for w in __import__('flx_ipy.core.worker.process', fromlist=['x'])._live if w.alive]"))
        assert workers
        km.shutdown_kernel(now=False)
        for w in workers:
            assert gone(w), f"worker {w} outlived the kernel"
