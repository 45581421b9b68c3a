"""``%load_ext flx_ipy`` in a real ipykernel 7, driven through jupyter_client as a notebook is.

How a reload is observed without running a cell: the test plugin's ``start()`` appends a line
(its version, the thread it ran on, how many cells were running) to a marker file. Reading that
file from the test process is an outside observer: it does not touch the kernel, so "no cell
ran" is checked on iopub (no ``execute_input`` since the save) while the marker proves the new
code started. The in-place status line is checked on iopub too (``update_display_data``).
"""

from __future__ import annotations

import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from iopub import IOPub, running_kernel

from flx_ipy.testing import plugin_source, wait_for, write_plugin

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[2]


def body(marker: Path, tag: str) -> str:
    return textwrap.dedent(f"""
        def start(self):
            import threading
            from flx_ipy.extension import current
            ext = current()
            cells = ext.scheduler.running if ext else -1
            with open({str(marker)!r}, "a") as fh:
                fh.write(f"{{self.metadata.version}} {{threading.current_thread().name}} {{cells}}\\n")

        def tag(self):
            return {tag!r}
    """)


class Kernel(IOPub):
    """One kernel and everything it said on iopub."""

    def __init__(self, km: Any, kc: Any) -> None:
        super().__init__(kc)
        self.km = km

    def wait(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15.0,
             start: int = 0) -> dict[str, Any]:
        return self.find(predicate, timeout, start)[1]

    def submit(self, code: str, subshell: str | None = None) -> str:
        msg = self.kc.session.msg("execute_request", {
            "code": textwrap.dedent(code), "silent": False, "store_history": True,
            "user_expressions": {}, "allow_stdin": False, "stop_on_error": True})
        if subshell is not None:
            msg["header"]["subshell_id"] = subshell
        self.kc.shell_channel.send(msg)
        return str(msg["header"]["msg_id"])

    def finish(self, msg_id: str, timeout: float = 30.0) -> str:
        """Wait for a submitted cell to end; return its stdout+stderr text (fails on error)."""
        self.wait(lambda m: m["msg_type"] == "status" and m["content"]["execution_state"] == "idle"
                  and m["parent_header"].get("msg_id") == msg_id, timeout)
        mine = [m for m in self.seen if m["parent_header"].get("msg_id") == msg_id]
        errors = [m for m in mine if m["msg_type"] == "error"]
        if errors:
            c = errors[0]["content"]
            raise AssertionError(f"cell failed: {c['ename']}: {c['evalue']}")
        return "".join(m["content"]["text"] for m in mine if m["msg_type"] == "stream")

    def run(self, code: str, timeout: float = 30.0, subshell: str | None = None) -> str:
        return self.finish(self.submit(code, subshell), timeout)

    def evaluate(self, expr: str) -> str:
        msg_id = self.submit(expr)
        out = self.wait(lambda m: m["msg_type"] == "execute_result" and m["parent_header"].get("msg_id") == msg_id)
        self.finish(msg_id)
        return str(out["content"]["data"]["text/plain"])

    def cells_since(self, start: int) -> list[dict[str, Any]]:
        return [m for m in self.seen[start:] if m["msg_type"] == "execute_input"]

    def create_subshell(self) -> str:
        msg = self.kc.session.msg("create_subshell_request", {})
        self.kc.control_channel.send(msg)
        while True:
            reply = self.kc.get_control_msg(timeout=10)
            if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                return str(reply["content"]["subshell_id"])


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[Kernel]:
    with running_kernel(tmp_path) as (km, kc):
        yield Kernel(km, kc)


class Plugin:
    def __init__(self, folder: Path) -> None:
        self.path = folder / f"kcounter_{uuid.uuid4().hex[:8]}.py"
        self.marker = folder / "marker.log"

    def write(self, version: str, tag: str | None = None, source: str | None = None) -> None:
        write_plugin(self.path, source if source is not None else
                     plugin_source("counter", version, body(self.marker, tag or version)))

    def starts(self) -> list[list[str]]:
        try:
            return [line.split() for line in self.marker.read_text().splitlines()]
        except FileNotFoundError:
            return []

    def wait_started(self, version: str, timeout: float = 15.0) -> list[str]:
        return wait_for(lambda: next((s for s in self.starts() if s[0] == version), None), timeout)  # type: ignore[no-any-return]


@pytest.fixture
def plugin(tmp_path: Path) -> Plugin:
    folder = tmp_path / "plugins"
    folder.mkdir()
    p = Plugin(folder)
    p.write("1.0.0")
    return p


def setup(k: Kernel, p: Plugin) -> str:
    """Load, start, watch; returns the status line's display id."""
    k.run(f"""
        %load_ext flx_ipy
        %plugin load {p.path} --start
        %plugin watch
    """)
    p.wait_started("1.0.0")
    shown = k.wait(lambda m: m["msg_type"] == "display_data"
                   and "flx_ipy: watching" in m["content"]["data"].get("text/plain", ""))
    return str(shown["content"]["transient"]["display_id"])


def test_an_idle_kernel_applies_a_save_with_no_cell_run(kernel: Kernel, plugin: Plugin) -> None:
    display_id = setup(kernel, plugin)
    mark = len(kernel.seen)
    plugin.write("2.0.0")
    _version, thread, cells = plugin.wait_started("2.0.0")
    assert thread == "MainThread"  # applied on the kernel's loop, not in the watcher thread
    assert cells == "0"
    update = kernel.wait(lambda m: m["msg_type"] == "update_display_data"
                         and m["content"]["transient"]["display_id"] == display_id
                         and "counter reloaded" in m["content"]["data"]["text/plain"], start=mark)
    assert "counter 2.0.0 running" in update["content"]["data"]["text/plain"]
    assert kernel.cells_since(mark) == [], "a cell ran"
    assert kernel.evaluate("__import__('flx_ipy.extension').extension.current().scheduler.last_where") \
        == "'idle'"


WAIT_IN_CELL = """
    import {sleep_import}, pathlib, time, flx_ipy
    from flx_ipy.extension import current
    sched = current().scheduler
    p = flx_ipy.get_manager().get("counter")
    before, n = p.tag(), sched.handed
    pathlib.Path({ready!r}).touch()
    deadline = time.monotonic() + 20
    while sched.handed == n and time.monotonic() < deadline:
        {sleep}
    # the watcher has handed the save over; give the kernel's loop more turns to (wrongly) apply it
    for _ in range(20):
        {sleep}
    print("seen:", before, p.tag(), sched.handed > n)
"""


@pytest.mark.parametrize("style", ["sync", "await"])
def test_a_save_during_a_running_cell_is_applied_right_after_it(kernel: Kernel, plugin: Plugin,
                                                                 tmp_path: Path, style: str) -> None:
    setup(kernel, plugin)
    ready = tmp_path / f"ready-{style}"
    sleep = "time.sleep(0.005)" if style == "sync" else "await asyncio.sleep(0.005)"
    msg_id = kernel.submit(WAIT_IN_CELL.format(sleep_import="asyncio", ready=str(ready), sleep=sleep))
    wait_for(ready.exists, timeout=15)
    plugin.write("2.0.0", tag="two")
    out = kernel.finish(msg_id)
    assert "seen: 1.0.0 1.0.0 True" in out  # one cell, one version, though the save was seen
    *_, cells = plugin.wait_started("2.0.0")
    assert cells == "0"
    assert kernel.evaluate("__import__('flx_ipy.extension').extension.current().scheduler.last_where") \
        == "'after cell'"
    assert kernel.evaluate("__import__('flx_ipy').get_manager().get('counter').tag()") == "'two'"


def test_a_subshell_cell_also_holds_the_reload_back(kernel: Kernel, plugin: Plugin, tmp_path: Path) -> None:
    setup(kernel, plugin)
    sub = kernel.create_subshell()
    ready = tmp_path / "ready-sub"
    msg_id = kernel.submit(WAIT_IN_CELL.format(sleep_import="asyncio", ready=str(ready),
                                               sleep="time.sleep(0.005)"), subshell=sub)
    wait_for(ready.exists, timeout=15)
    plugin.write("2.0.0", tag="two")
    out = kernel.finish(msg_id)  # the main shell was idle the whole time
    assert "seen: 1.0.0 1.0.0 True" in out
    _version, thread, cells = plugin.wait_started("2.0.0")
    assert cells == "0" and thread != "MainThread"  # applied by the subshell as its cell ended
    assert kernel.evaluate("__import__('flx_ipy').get_manager().get('counter').tag()") == "'two'"


def test_a_broken_save_is_reported_and_the_old_version_keeps_running(kernel: Kernel, plugin: Plugin) -> None:
    display_id = setup(kernel, plugin)
    mark = len(kernel.seen)
    plugin.write("2.0.0", source="from flx_ipy import Plugin\nclass Counter(Plugin:\n")
    update = kernel.wait(lambda m: m["msg_type"] == "update_display_data"
                         and m["content"]["transient"]["display_id"] == display_id
                         and "reload failed" in m["content"]["data"]["text/plain"], start=mark)
    assert "previous version still running" in update["content"]["data"]["text/plain"]
    assert kernel.cells_since(mark) == []
    out = kernel.run("x = 1")
    assert "flx_ipy: counter: reload failed" in out and "%plugin error counter" in out
    assert kernel.run("y = 2") == ""  # said once
    assert "reload failed" in kernel.evaluate("%plugin log")
    assert kernel.evaluate("str(__import__('flx_ipy').get_manager().status('counter'))") == "'running'"
    assert [s[0] for s in plugin.starts()] == ["1.0.0"]
    plugin.write("3.0.0")  # fixing the file reloads normally, still with no cell run
    mark = len(kernel.seen)
    plugin.wait_started("3.0.0")
    assert kernel.cells_since(mark) == []


def test_reload_ext_is_clean(kernel: Kernel, plugin: Plugin) -> None:
    setup(kernel, plugin)
    probe = """
        ip = get_ipython(); import comm
        (len(ip.events.callbacks['pre_execute']), len(ip.events.callbacks['post_execute']),
         len(ip.input_transformers_post), sorted(comm.get_comm_manager().targets))
    """
    before = kernel.evaluate(probe)
    for _ in range(3):
        kernel.run("%reload_ext flx_ipy")
    assert kernel.evaluate(probe) == before
    assert kernel.evaluate("__import__('flx_ipy').get_manager().watching") == "False"
    kernel.run("%plugin watch")
    mark = len(kernel.seen)
    plugin.write("2.0.0")
    plugin.wait_started("2.0.0")
    assert kernel.cells_since(mark) == []
    kernel.run("%unload_ext flx_ipy")
    assert "flx_ipy" not in kernel.evaluate("sorted(__import__('comm').get_comm_manager().targets)")
    assert [s[0] for s in plugin.starts()] == ["1.0.0", "2.0.0"]  # exactly one apply per save


def test_shutdown_with_watching_on_is_quick(tmp_path: Path, plugin: Plugin) -> None:
    with running_kernel(tmp_path) as (km, kc):
        k = Kernel(km, kc)
        setup(k, plugin)
        assert k.evaluate("__import__('flx_ipy').get_manager().watching") == "True"
        process = km.provisioner.process
        kc.stop_channels()
        t0 = time.monotonic()
        km.shutdown_kernel(now=False)
        took = time.monotonic() - t0
    assert not km.is_alive()
    # the kernel exited by itself (a watcher holding it open ends in SIGTERM: returncode -15)
    assert process.returncode == 0, f"kernel did not exit cleanly: returncode {process.returncode}"
    # typically ~0.3 s here; the bound is loose because the returncode above is the real proof
    assert took < 2.0, f"shutdown took {took:.2f} s with watching on"
