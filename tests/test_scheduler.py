"""``ReloadScheduler`` rules with threads standing in for ipykernel's main shell and subshells.

Driven through IPython's own ``EventManager`` so the callbacks are registered exactly as in a
shell; every wait is on an event with a timeout, never a sleep.
"""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from IPython.core.events import EventManager, available_events

from flx_ipy.scheduler import ReloadScheduler
from flx_ipy.testing import wait_for


def fake_shell(loop: Any = None) -> Any:
    kernel = SimpleNamespace(io_loop=SimpleNamespace(asyncio_loop=loop)) if loop is not None else None
    return SimpleNamespace(events=EventManager(None, available_events), kernel=kernel)


class Cell(threading.Thread):
    """A cell running on its own thread (a subshell) until released."""

    def __init__(self, sched: ReloadScheduler) -> None:
        super().__init__(daemon=True, name="subshell")
        self.sched, self.started_cell, self.release = sched, threading.Event(), threading.Event()

    def run(self) -> None:
        self.sched.pre_execute()
        self.started_cell.set()
        self.release.wait(10)
        self.sched.post_execute()


def test_a_change_waits_for_every_running_cell_and_runs_after_the_last() -> None:
    sched = ReloadScheduler(fake_shell()).install()
    applied: list[str] = []
    sched.pre_execute()  # the main shell's cell
    sub = Cell(sched)
    sub.start()
    assert sub.started_cell.wait(5)
    assert sched.running == 2
    sched.applier(lambda: applied.append(threading.current_thread().name))
    assert sched.drain("idle") == 0 and applied == []
    sched.post_execute()  # main cell ends; the subshell's still runs
    assert applied == []
    sub.release.set()
    sub.join(5)
    assert applied == ["subshell"] and sched.last_where == "after cell"
    assert sched.running == 0


def test_an_unpaired_post_execute_does_not_go_negative() -> None:
    sched = ReloadScheduler(fake_shell()).install()
    sched.post_execute()  # an empty cell: IPython fires post_execute without pre_execute
    assert sched.running == 0
    sched.pre_execute()
    applied: list[int] = []
    sched.applier(lambda: applied.append(1))
    assert sched.drain() == 0
    sched.post_execute()
    assert applied == [1]


def test_without_a_loop_the_next_cell_applies_first() -> None:
    sched = ReloadScheduler(fake_shell()).install()
    order: list[str] = []
    sched.applier(lambda: order.append("reload"))
    assert order == []  # nothing runs the queue between cells in a loop-less terminal
    sched.ip.events.trigger("pre_execute")
    order.append("cell")
    sched.ip.events.trigger("post_execute")
    assert order == ["reload", "cell"] and sched.last_where == "before cell"


def test_a_cell_starting_elsewhere_waits_for_a_reload_in_progress() -> None:
    sched = ReloadScheduler(fake_shell()).install()
    inside, finish = threading.Event(), threading.Event()
    order: list[str] = []

    def slow_reload() -> None:
        inside.set()
        finish.wait(10)
        order.append("reload done")

    sched.applier(slow_reload)
    applier = threading.Thread(target=sched.drain, daemon=True)
    applier.start()
    assert inside.wait(5)

    def cell() -> None:
        sched.pre_execute()
        order.append("cell started")
        sched.post_execute()

    t = threading.Thread(target=cell, daemon=True)
    t.start()
    t.join(0.05)  # not a sleep for correctness: the cell must still be blocked either way
    assert order == []
    finish.set()
    t.join(5)
    applier.join(5)
    assert order == ["reload done", "cell started"]


def test_an_idle_loop_applies_on_its_own_thread() -> None:
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, name="kernel-loop", daemon=True)
    runner.start()
    try:
        sched = ReloadScheduler(fake_shell(loop)).install()
        seen: list[str] = []
        sched.applier(lambda: seen.append(threading.current_thread().name))
        wait_for(lambda: seen, timeout=5)
        assert seen == ["kernel-loop"] and sched.last_where == "idle"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join(5)
        loop.close()


def test_failures_become_one_notice_per_plugin() -> None:
    sched = ReloadScheduler(fake_shell()).install()
    bad = SimpleNamespace(plugin="counter", ok=False, summary=lambda: "counter: reload failed in exec")
    good = SimpleNamespace(plugin="counter", ok=True)
    sched.applier(lambda: [bad])
    sched.drain()
    sched.applier(lambda: [bad])
    sched.drain()
    notices = sched.take_notices()
    assert len(notices) == 1 and "counter: reload failed" in notices[0] and "%plugin error counter" in notices[0]
    sched.applier(lambda: [bad])
    sched.drain()
    sched.applier(lambda: [good])  # fixed before anyone looked: nothing stale to report
    sched.drain()
    assert sched.take_notices() == []


def test_uninstall_removes_the_callbacks() -> None:
    ip = fake_shell()
    sched = ReloadScheduler(ip).install()
    sched.install()
    assert ip.events.callbacks["pre_execute"].count(sched.pre_execute) == 1
    sched.uninstall()
    assert sched.pre_execute not in ip.events.callbacks["pre_execute"]
    assert sched.post_execute not in ip.events.callbacks["post_execute"]
    with pytest.raises(ValueError, match="not registered"):
        ip.events.unregister("pre_run_cell", sched.pre_run_cell)


class FakeComm:
    """The kernel end of one panel's comm: records what the bridge sends."""

    def __init__(self) -> None:
        self.comm_id, self.sent, self.handler = "panel-1", [], None

    def send(self, data: Any) -> None:
        self.sent.append(data)

    def on_msg(self, fn: Any) -> None:
        self.handler = fn

    def on_close(self, fn: Any) -> None:
        pass

    def close(self) -> None:
        pass


def test_a_panel_click_during_a_running_cell_waits_for_the_cell(tmp_path: Any) -> None:
    """ipykernel 7 may deliver a comm message while a cell runs; the action must not run then."""
    from flx_ipy import PluginManager
    from flx_ipy.lab_bridge import LabBridge
    from flx_ipy.testing import plugin_source, write_plugin

    pm = PluginManager(entry_points=False)
    pm.load(str(write_plugin(tmp_path / "clicked.py", plugin_source("clicked"))), start=True)
    sched = ReloadScheduler(fake_shell()).install()
    registry = SimpleNamespace(register_target=lambda *a: None, unregister_target=lambda *a: None)
    bridge = LabBridge(pm, comm_manager=registry, create_comm=lambda **kw: FakeComm(),
                       defer=sched.applier).attach()
    try:
        comm = FakeComm()
        bridge._on_open(comm, {"content": {"data": {"kind": "hello", "protocol": "1.0", "client": "t",
                                                    "replaces": None}}})
        sched.pre_execute()  # a cell is running
        comm.handler({"content": {"data": {"kind": "action", "protocol": "1.0", "request_id": "r1",
                                           "action": "stop", "plugin": "clicked"}}})
        assert pm.status("clicked") == "running"
        assert not [m for m in comm.sent if m.get("kind") == "reply"]
        sched.post_execute()  # the cell ends: the click runs now, before any next cell
        assert pm.status("clicked") == "stopped"
        replies = [m for m in comm.sent if m.get("kind") == "reply"]
        assert [(r["request_id"], r["ok"]) for r in replies] == [("r1", True)]
    finally:
        bridge.detach()
        pm.close()


def test_health_is_rechecked_while_idle_and_not_while_a_cell_runs(tmp_path: Any) -> None:
    from flx_ipy import PluginManager
    from flx_ipy.health_poll import HealthPoller
    from flx_ipy.testing import plugin_source, write_plugin

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    pm = PluginManager(entry_points=False)
    flag = tmp_path / "db_down"
    body = (f"def health_check(self):\n    import os\n"
            f"    return 'unhealthy' if os.path.exists({str(flag)!r}) else 'healthy'")
    pm.load(str(write_plugin(tmp_path / "db.py", plugin_source("db", body=body))), start=True)
    sched = ReloadScheduler(fake_shell(loop)).install()
    poller = HealthPoller(pm, sched, 0.02).start()
    try:
        wait_for(lambda: poller.rounds >= 1, timeout=5)
        flag.touch()  # the database goes away: the next idle round notices, nobody clicks anything
        wait_for(lambda: pm.plugins["db"].health is not None and pm.plugins["db"].health.status == "unhealthy",
                 timeout=5)
        assert any(e.kind == "health_changed" and e.details["status"] == "unhealthy" for e in pm.events.history())
        sched.pre_execute()  # a cell runs: no rounds until it ends
        rounds = poller.rounds
        ticked = threading.Event()
        loop.call_soon_threadsafe(lambda: loop.call_later(0.1, ticked.set))  # several intervals pass
        assert ticked.wait(5)
        assert poller.rounds <= rounds + 1  # at most the round already started before the cell
        sched.post_execute()
    finally:
        poller.stop()
        pm.close()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
