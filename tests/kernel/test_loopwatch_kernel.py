"""The loop-lag watchdog in a real ipykernel 7: a plugin's callback that blocks the idle
kernel's loop is named once; a long cell is not an offence."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest
from iopub import running_kernel

from flx_ipy.testing import plugin_source, write_plugin

pytestmark = pytest.mark.kernel

HOG = """
async def start(self):
    import asyncio
    asyncio.get_running_loop().call_later(0.3, self.hog)  # runs on the kernel's loop, after the cell

def hog(self):
    import time
    deadline = time.monotonic() + 0.4
    while time.monotonic() < deadline:  # CPU-bound work on the event loop
        pass
"""


def evaluate(kc, expr: str):  # type: ignore[no-untyped-def]
    reply = kc.execute_interactive("", user_expressions={"x": expr}, timeout=60)
    out = reply["content"]["user_expressions"]["x"]
    assert out["status"] == "ok", out
    return ast.literal_eval(out["data"]["text/plain"])


def test_a_plugin_blocking_the_idle_loop_is_named_once(tmp_path: Path) -> None:
    path = write_plugin(tmp_path / "hogger.py", plugin_source("hogger", "1.0.0", HOG))
    with running_kernel(tmp_path) as (_km, kc):
        for cell in ("%load_ext flx_ipy", f"%plugin load {path}", "%plugin start hogger"):  # awaited on the loop
            reply = kc.execute_interactive(cell, timeout=60)
            assert reply["content"]["status"] == "ok"
        events = ("[(e.plugin, e.details['where']) for e in "
                  "__import__('flx_ipy').get_manager().events.history(kinds=['loop_blocked'])]")
        deadline = time.monotonic() + 20
        found: list[tuple[str, str]] = []
        while not found and time.monotonic() < deadline:
            found = evaluate(kc, events)
        assert len(found) == 1, found
        plugin, where = found[0]
        assert plugin == "hogger" and where.startswith(str(path) + ":")
        reply = kc.execute_interactive("import time; time.sleep(0.5)", timeout=60)  # a long cell: not an offence
        assert reply["content"]["status"] == "ok"
        assert len(evaluate(kc, events)) == 1
