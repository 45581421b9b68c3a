"""Issue 11 in a real ipykernel (jupyter_client / nbclient): what the status line, the manager's
records and a headless run show stays true.

* A save back to the running version clears a kept reload failure — seen on iopub as the
  status line's in-place update, with no cell run.
* A save made while a cell runs is announced ("1 save waiting for the running cell") while
  that cell still runs, and the count returns to 0 once it is applied.
* A headless run (nbclient, as papermill and nbconvert use it) logs no "No handler found for
  comm target 'flx_ipy.panel'": without a Jupyter server session there is no doorbell.
* The dashboard carries its own kernel-restart notice (a frontend shows it once ipywidgets
  marks the dashboard disconnected).
"""

from __future__ import annotations

import logging
import os
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from iopub import running_kernel
from test_kernel_reload import WAIT_IN_CELL, Kernel, Plugin, setup

from flx_ipy.testing import plugin_source, wait_for, write_plugin

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[Kernel]:
    with running_kernel(tmp_path) as (km, kc):
        yield Kernel(km, kc)


@pytest.fixture
def plugin(tmp_path: Path) -> Plugin:
    folder = tmp_path / "plugins"
    folder.mkdir()
    p = Plugin(folder)
    p.write("1.0.0")
    return p


def status_update(kernel: Kernel, display_id: str, contains: str, start: int) -> str:
    msg = kernel.wait(lambda m: m["msg_type"] == "update_display_data"
                      and m["content"]["transient"]["display_id"] == display_id
                      and contains in m["content"]["data"]["text/plain"], start=start)
    return str(msg["content"]["data"]["text/plain"])


def test_undo_and_save_clears_the_error_everywhere(kernel: Kernel, plugin: Plugin) -> None:
    display_id = setup(kernel, plugin)
    good = plugin.path.read_text()
    mark = len(kernel.seen)
    plugin.write("1.0.0", source=good + "\n    def oops(self:\n")
    text = status_update(kernel, display_id, "reload failed", mark)
    assert "counter 1.0.0 running ✗" in text
    mark = len(kernel.seen)
    plugin.write("1.0.0", source=good)  # undo + save: byte-identical to what runs
    text = status_update(kernel, display_id, "error cleared", mark)
    assert "source matches the running version" in text and "✗" not in text
    assert kernel.cells_since(mark) == [], "a cell ran"
    assert kernel.evaluate("__import__('flx_ipy').get_manager().plugins['counter'].error is None") == "True"
    assert "! counter" not in kernel.evaluate("%plugin list")
    assert kernel.run("x = 1") == ""  # the kept notice went with the error


def test_a_save_waiting_for_the_running_cell_is_announced(kernel: Kernel, plugin: Plugin, tmp_path: Path) -> None:
    display_id = setup(kernel, plugin)
    ready = tmp_path / "ready"
    mark = len(kernel.seen)
    msg_id = kernel.submit(WAIT_IN_CELL.format(sleep_import="asyncio", ready=str(ready), sleep="time.sleep(0.005)"))
    wait_for(ready.exists, timeout=15)
    plugin.write("2.0.0", tag="two")
    text = status_update(kernel, display_id, "1 save waiting for the running cell", mark)
    assert "counter 1.0.0 running" in text  # announced while the cell still runs, before the reload
    out = kernel.finish(msg_id)
    assert "seen: 1.0.0 1.0.0 True" in out
    text = status_update(kernel, display_id, "counter reloaded", mark)
    assert "waiting" not in text
    assert kernel.evaluate("__import__('flx_ipy.extension').extension.current().scheduler.saves_waiting") == "0"


def test_the_dashboard_carries_a_kernel_restart_notice(kernel: Kernel, plugin: Plugin) -> None:
    setup(kernel, plugin)
    mark = len(kernel.seen)
    kernel.run("%plugin panel")
    opened = [m for m in kernel.seen[mark:] if m["msg_type"] == "comm_open"
              and "kernel restarted" in str(m["content"]["data"].get("state", {}).get("value", ""))]
    assert opened, "no widget carries the restart notice"
    value = opened[0]["content"]["data"]["state"]["value"]
    assert ".jupyter-widgets-disconnected" in value and "%plugin panel" in value
    shown = next(m for m in kernel.seen[mark:] if m["msg_type"] in ("display_data", "execute_result")
                 and "application/vnd.jupyter.widget-view+json" in m["content"]["data"])
    assert "not live" in shown["content"]["data"]["text/html"]  # the static fallback says it is a snapshot


def test_headless_runs_log_no_comm_target_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    path = write_plugin(tmp_path / f"hl_{uuid.uuid4().hex[:8]}.py", plugin_source("headless", "1.0.0"))
    cells = ["%load_ext flx_ipy", f"%plugin load {path} --start", "%plugin watch", "%plugin panel",
             "import flx_ipy; flx_ipy.get_manager()", "%plugin unwatch"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(textwrap.dedent(c)) for c in cells])
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger(f"nbclient-test-{uuid.uuid4().hex[:6]}")
    logger.addHandler(Keep())
    logger.setLevel(logging.DEBUG)
    client = nbclient.NotebookClient(nb, timeout=60, kernel_name="python3", log=logger,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    said = [r.getMessage() for r in records]
    assert not [m for m in said if "No handler found for comm target" in m], said
    outputs = "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                      for c in nb.cells for o in c.get("outputs", []))
    assert "No handler found" not in outputs and "flx_ipy.panel" not in outputs
    assert "headless 1.0.0 running" in outputs  # the run itself worked
