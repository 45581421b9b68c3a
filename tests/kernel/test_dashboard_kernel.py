"""The dashboard in a real ipykernel, driven through jupyter_client as a notebook frontend would.

What matters: a reload that happens while the kernel is idle — applied by a background thread
or by the manager's watcher, with no cell running — reaches the frontend as ``comm_msg``
updates of the dashboard's widgets on iopub. This test plays the frontend: it reads iopub, and
for the click test it sends the ``click`` message a rendered button sends.
"""

from __future__ import annotations

import json
import os
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from iopub import IOPub, running_kernel

from flx_ipy.testing import plugin_source, write_plugin

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[2]
HEALTH = 'def health_check(self):\n    return HealthStatus.healthy("ticking")\n'
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


class Frontend(IOPub):
    """Just enough of a notebook frontend: run cells, read iopub, message widgets."""

    def wait(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15.0,
             start: int = 0) -> tuple[int, dict[str, Any]]:
        return self.find(predicate, timeout, start)

    def execute(self, code: str) -> str:
        """Run a cell to completion (kernel idle again); returns its msg_id."""
        msg_id = self.kc.execute(textwrap.dedent(code))
        reply = self.kc.get_shell_msg(timeout=30)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=30)
        if reply["content"]["status"] != "ok":
            c = reply["content"]
            raise AssertionError(f"cell failed: {c.get('ename')}: {c.get('evalue')}\n" + "".join(c["traceback"]))
        self.wait(lambda m: m["msg_type"] == "status" and m["content"]["execution_state"] == "idle"
                  and m["parent_header"].get("msg_id") == msg_id)
        return msg_id

    def evaluate(self, expr: str) -> str:
        msg_id = self.kc.execute(expr)
        _, out = self.wait(lambda m: m["msg_type"] == "execute_result"
                           and m["parent_header"].get("msg_id") == msg_id)
        self.wait(lambda m: m["msg_type"] == "status" and m["content"]["execution_state"] == "idle"
                  and m["parent_header"].get("msg_id") == msg_id)
        return str(out["content"]["data"]["text/plain"])

    def widget_update(self, model_id: str, contains: str, start: int) -> tuple[int, dict[str, Any]]:
        """The first update of widget ``model_id`` whose ``value`` contains ``contains``."""
        return self.wait(lambda m: m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == model_id
                         and m["content"]["data"].get("method") == "update"
                         and contains in str(m["content"]["data"]["state"].get("value", "")), start=start)

    def click(self, model_id: str) -> None:
        self.kc.shell_channel.send(self.kc.session.msg("comm_msg", {
            "comm_id": model_id, "data": {"method": "custom", "content": {"event": "click"}}}))

    def cells_run_between(self, start: int, end: int) -> list[str]:
        return [m["content"]["code"] for m in self.seen[start:end + 1] if m["msg_type"] == "execute_input"]


@pytest.fixture
def frontend(tmp_path: Path) -> Iterator[Frontend]:
    with running_kernel(tmp_path) as (_km, kc):
        yield Frontend(kc)


@pytest.fixture
def plugin_file(tmp_path: Path) -> Path:
    folder = tmp_path / "plugins"
    return write_plugin(folder / f"dashcounter_{uuid.uuid4().hex[:8]}.py", plugin_source("counter", "1.0.0", HEALTH))


def show_dashboard(fe: Frontend, plugin_file: Path) -> dict[str, str]:
    """Load the plugin, display the dashboard; returns the model ids of the row's widgets."""
    fe.execute(f"""
        import json, flx_ipy
        from flx_ipy.widgets import dashboard
        pm = flx_ipy.get_manager()
        pm.load({str(plugin_file)!r}, start=True)
        pm.health()
        board = dashboard(pm)
        display(board)
    """)
    ids = fe.evaluate("""json.dumps({
        "board": board.model_id, "badge": board.rows["counter"].badge.model_id,
        "version": board.rows["counter"].version.model_id,
        "reload": board.rows["counter"].last_reload.model_id,
        "stop": board.rows["counter"].buttons["stop"].model_id,
        "plot": board.plot.model_id, "log": board.event_log.model_id, "watcher": board.watcher.model_id})""")
    return dict(json.loads(ids.strip("'")))


def test_background_thread_reload_updates_widgets_with_no_cell_run(frontend: Frontend, plugin_file: Path,
                                                                    tmp_path: Path) -> None:
    ids = show_dashboard(frontend, plugin_file)
    flag = tmp_path / "go"
    frontend.execute(f"""
        import threading, pathlib, time
        def _later():
            flag = pathlib.Path({str(flag)!r})
            while not flag.exists():  # polls for the test's signal, sent once the kernel is idle
                time.sleep(0.005)
            pm.reload("counter")
        threading.Thread(target=_later, daemon=True).start()
    """)
    mark = len(frontend.seen)  # the kernel is idle from here on
    write_plugin(plugin_file, plugin_source("counter", "1.0.1", HEALTH))
    flag.write_text("go")
    i_version, _ = frontend.widget_update(ids["version"], "1.0.1", mark)
    i_reload, _ = frontend.widget_update(ids["reload"], "ok in", mark)
    i_plot, _ = frontend.widget_update(ids["plot"], "flx-latency-bar", mark)
    i_log, _ = frontend.widget_update(ids["log"], "counter reloaded", mark)
    assert frontend.cells_run_between(mark, max(i_version, i_reload, i_plot, i_log)) == []


def test_watcher_reload_of_a_broken_save_shows_the_rollback_while_idle(frontend: Frontend,
                                                                       plugin_file: Path) -> None:
    ids = show_dashboard(frontend, plugin_file)
    frontend.execute("pm.watch()")
    _, armed = frontend.widget_update(ids["watcher"], "watching 1 folder", 0)
    assert str(plugin_file.parent) in armed["content"]["data"]["state"]["value"]
    mark = len(frontend.seen)
    write_plugin(plugin_file, plugin_source("counter", "2.0.0", HEALTH))
    i_ok, _ = frontend.widget_update(ids["version"], "2.0.0", mark)
    write_plugin(plugin_file, "class Broken(:\n")  # a save that does not compile: rolled back
    i_back, _ = frontend.widget_update(ids["reload"], "rolled back: SyntaxError", i_ok)
    assert frontend.cells_run_between(mark, i_back) == []
    frontend.execute("pm.unwatch()")


def test_clicking_a_button_runs_the_action_in_the_kernel(frontend: Frontend, plugin_file: Path) -> None:
    ids = show_dashboard(frontend, plugin_file)
    mark = len(frontend.seen)
    frontend.click(ids["stop"])  # what a rendered "stop" button sends
    frontend.widget_update(ids["badge"], "flx-state-stopped", mark)
    assert frontend.evaluate("str(pm.status('counter'))") == "'stopped'"


def test_display_pm_shows_the_dashboard_with_text_fallbacks(frontend: Frontend, plugin_file: Path) -> None:
    frontend.execute(f"""
        import flx_ipy
        pm = flx_ipy.get_manager()
        pm.load({str(plugin_file)!r}, start=True)
    """)
    msg_id = frontend.execute("display(pm)")
    _, shown = frontend.wait(lambda m: m["msg_type"] == "display_data"
                             and m["parent_header"].get("msg_id") == msg_id)
    data = shown["content"]["data"]
    assert WIDGET_MIME in data  # the live dashboard ...
    assert "counter" in data["text/plain"] and "running" in data["text/plain"]  # ... and nbclient's view
    assert "flx-row-counter" in data["text/html"]
    model_id = data[WIDGET_MIME]["model_id"]
    assert frontend.evaluate("flx_ipy.widgets.dashboard(pm).model_id") == repr(model_id)  # shared


def test_plugin_panel_magic_updates_live_when_the_extension_applies_a_save(frontend: Frontend,
                                                                          plugin_file: Path) -> None:
    """Through ``%load_ext``: the extension applies saves on the kernel's loop, between cells."""
    frontend.execute(f"""
        %load_ext flx_ipy
        %plugin load {plugin_file} --start
    """)
    msg_id = frontend.execute("%plugin panel")
    _, shown = frontend.wait(lambda m: m["msg_type"] == "execute_result"
                             and m["parent_header"].get("msg_id") == msg_id)
    assert WIDGET_MIME in shown["content"]["data"]
    version_id = frontend.evaluate("import flx_ipy.widgets as fw; fw.dashboard().rows['counter'].version.model_id")
    frontend.execute("%plugin watch")
    mark = len(frontend.seen)
    write_plugin(plugin_file, plugin_source("counter", "1.5.0", HEALTH))
    i, _ = frontend.widget_update(version_id.strip("'"), "1.5.0", mark)
    assert frontend.cells_run_between(mark, i) == []
    frontend.execute("%plugin unwatch")


def test_nbclient_output_keeps_a_readable_text_and_html_fallback(plugin_file: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """nbclient drops widget updates, so an executed notebook must read well from its bundle alone."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        f"import flx_ipy\npm = flx_ipy.get_manager()\npm.load({str(plugin_file)!r}, start=True)\npm.health()\npm")])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    data = nb.cells[0].outputs[-1]["data"]
    assert WIDGET_MIME in data
    assert "counter" in data["text/plain"] and "healthy: ticking" in data["text/plain"]
    assert "flx-row-counter" in data["text/html"]


def test_picking_a_revision_and_clicking_rollback_runs_it_in_the_kernel(frontend: Frontend,
                                                                        plugin_file: Path) -> None:
    """The rollback picker and button, driven as a rendered dashboard would: the frontend sets
    the dropdown's ``index`` and sends the button's click; the kernel runs ``pm.rollback`` through
    the one ``run_action`` path and the row's version widget says so."""
    ids = show_dashboard(frontend, plugin_file)
    for version in ("1.0.1", "1.0.2"):
        write_plugin(plugin_file, plugin_source("counter", version, HEALTH))
        frontend.execute('pm.reload("counter")')
    picker = json.loads(frontend.evaluate("""json.dumps({
        "picker": board.rows["counter"].revision_picker.model_id,
        "rollback": board.rows["counter"].buttons["rollback"].model_id,
        "options": [v for _, v in board.rows["counter"].revision_picker.options]})""").strip("'"))
    assert picker["options"] == [2, 1]
    mark = len(frontend.seen)
    frontend.kc.shell_channel.send(frontend.kc.session.msg("comm_msg", {
        "comm_id": picker["picker"], "data": {"method": "update", "state": {"index": 1}, "buffer_paths": []}}))
    assert frontend.evaluate("board.rows['counter'].revision_picker.value") == "1"  # the pick reached the kernel
    frontend.click(picker["rollback"])
    frontend.widget_update(ids["version"], "1.0.0", mark)
    last = frontend.evaluate("(pm.history('counter')[-1].reason, pm.history('counter')[-1].rollback_of)")
    assert last == "('rollback', 1)"
    assert "1.0.2" in plugin_file.read_text()  # files on disk untouched
