"""The lab bridge in a real ipykernel, driven through jupyter_client as JupyterLab would.

This test plays the side panel: it opens comms to the kernel's ``flx_ipy`` target, reads
``comm_msg``s from iopub and sends actions. The important property: a plugin reloaded while
the kernel is idle (watcher or background thread, no cell running) reaches the panel.
"""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from iopub import IOPub, running_kernel

from flx_ipy.protocol import PROTOCOL_VERSION
from flx_ipy.testing import plugin_source, write_plugin

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[2]
HEALTH = 'def health_check(self):\n    return HealthStatus.healthy("ticking")\n'


class Panel(IOPub):
    """A fake side panel (and notebook) talking to one kernel."""

    def wait(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0,
             start: int = 0) -> dict[str, Any]:
        return self.find(predicate, timeout, start)[1]

    def execute(self, code: str, timeout: float = 20.0) -> None:
        msg_id = self.kc.execute(textwrap.dedent(code))
        reply = self.kc.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=timeout)
        content = reply["content"]
        if content["status"] != "ok":
            raise AssertionError(f"cell failed: {content.get('ename')}: {content.get('evalue')}\n"
                                 + "".join(content.get("traceback", [])))
        self.wait(lambda m: m["msg_type"] == "status" and m["content"]["execution_state"] == "idle"
                  and m["parent_header"].get("msg_id") == msg_id, timeout)

    def evaluate(self, expr: str) -> str:
        msg_id = self.kc.execute(expr)
        out = self.wait(lambda m: m["msg_type"] == "execute_result"
                        and m["parent_header"].get("msg_id") == msg_id)
        return str(out["content"]["data"]["text/plain"])

    def open(self, data: dict[str, Any], target: str = "flx_ipy") -> str:
        comm_id = uuid.uuid4().hex
        self.kc.shell_channel.send(self.kc.session.msg(
            "comm_open", {"comm_id": comm_id, "target_name": target, "data": data}))
        return comm_id

    def send(self, comm_id: str, data: dict[str, Any]) -> None:
        self.kc.shell_channel.send(self.kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data}))

    def close(self, comm_id: str) -> None:
        self.kc.shell_channel.send(self.kc.session.msg("comm_close", {"comm_id": comm_id, "data": {}}))

    def comm_msg(self, comm_id: str, kind: str, where: Callable[[dict[str, Any]], bool] = lambda d: True,
                 timeout: float = 10.0, start: int = 0) -> dict[str, Any]:
        msg = self.wait(lambda m: m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == comm_id
                        and m["content"]["data"].get("kind") == kind and where(m["content"]["data"]),
                        timeout, start)
        return dict(msg["content"]["data"])


def hello(replaces: str | None = None, version: str = "1.0") -> dict[str, Any]:
    return {"kind": "hello", "protocol": version, "client": "test", "replaces": replaces}


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[Panel]:
    # as Jupyter Server starts a notebook's kernel: a panel may be listening for the doorbell
    with running_kernel(tmp_path, JPY_SESSION_NAME=str(tmp_path / "panel.ipynb")) as (_km, kc):
        yield Panel(kc)


@pytest.fixture
def plugin_file(tmp_path: Path) -> Path:
    return write_plugin(tmp_path / f"labcounter_{uuid.uuid4().hex[:8]}.py",
                        plugin_source("counter", "1.0.0", HEALTH))


def setup_bridge(panel: Panel, plugin_file: Path) -> None:
    panel.execute(f"""
        import flx_ipy
        from flx_ipy.lab_bridge import LabBridge
        pm = flx_ipy.get_manager()
        pm.load({str(plugin_file)!r}, start=True)
        bridge = LabBridge(pm).attach()
    """)


def test_announces_itself_to_open_panels(kernel: Panel, plugin_file: Path) -> None:
    setup_bridge(kernel, plugin_file)
    opened = kernel.wait(lambda m: m["msg_type"] == "comm_open"
                         and m["content"]["target_name"] == "flx_ipy.panel")
    assert opened["content"]["data"]["kind"] == "announce"
    assert opened["content"]["data"]["protocol"] == PROTOCOL_VERSION
    comm_id = opened["content"]["comm_id"]
    kernel.wait(lambda m: m["msg_type"] == "comm_close" and m["content"]["comm_id"] == comm_id)


def test_snapshot_then_delta_when_a_plugin_reloads_while_idle(kernel: Panel, plugin_file: Path) -> None:
    setup_bridge(kernel, plugin_file)
    comm = kernel.open(hello())
    snap = kernel.comm_msg(comm, "snapshot")
    (row,) = snap["state"]["plugins"]
    assert (row["name"], row["state"], row["version"]) == ("counter", "running", "1.0.0")
    assert row["source"] == str(plugin_file)

    # A reload from a background thread half a second after the cell ends: the kernel is
    # idle, no cell runs, and the delta must still arrive.
    write_plugin(plugin_file, plugin_source("counter", "1.0.1", HEALTH))
    kernel.execute("import threading; threading.Timer(0.5, pm.reload, args=['counter']).start()")
    idle_at = len(kernel.seen)
    delta = kernel.comm_msg(comm, "delta", lambda d: d["event"]["kind"] == "reloaded", start=idle_at)
    assert delta["upsert"][0]["version"] == "1.0.1"
    assert delta["upsert"][0]["last_reload"]["ok"] is True
    assert delta["seq"] > snap["state"]["seq"]
    assert not [m for m in kernel.seen[idle_at:] if m["msg_type"] == "execute_input"], "a cell ran"


def test_watching_reloads_reach_the_panel_with_no_cell_run(kernel: Panel, plugin_file: Path) -> None:
    setup_bridge(kernel, plugin_file)
    comm = kernel.open(hello())
    kernel.comm_msg(comm, "snapshot")
    kernel.execute(f"pm.watch([{str(plugin_file.parent)!r}])")
    kernel.comm_msg(comm, "delta", lambda d: d["watcher"] is not None and d["watcher"]["watching"])
    mark = len(kernel.seen)
    write_plugin(plugin_file, plugin_source("counter", "2.0.0", HEALTH))
    delta = kernel.comm_msg(comm, "delta", lambda d: d["event"]["kind"] == "reloaded", start=mark)
    assert delta["upsert"][0]["version"] == "2.0.0"
    assert not [m for m in kernel.seen[mark:] if m["msg_type"] == "execute_input"]
    kernel.execute("pm.unwatch()")


def test_actions_are_obeyed_and_replied(kernel: Panel, plugin_file: Path) -> None:
    setup_bridge(kernel, plugin_file)
    comm = kernel.open(hello())
    kernel.comm_msg(comm, "snapshot")

    kernel.send(comm, {"kind": "action", "protocol": "1.0", "request_id": "r1", "action": "stop",
                       "plugin": "counter"})
    reply = kernel.comm_msg(comm, "reply", lambda d: d["request_id"] == "r1")
    assert reply["ok"] is True
    assert reply["message"] == "counter stopped"
    assert kernel.evaluate("str(pm.status('counter'))") == "'stopped'"
    stopped = kernel.comm_msg(comm, "delta", lambda d: d["event"]["kind"] == "stopped")
    assert stopped["upsert"][0]["state"] == "stopped"

    kernel.send(comm, {"kind": "action", "protocol": "1.0", "request_id": "r2", "action": "stop",
                       "plugin": "counter"})
    refused = kernel.comm_msg(comm, "reply", lambda d: d["request_id"] == "r2")
    assert refused["ok"] is False
    assert "not running" in refused["message"]

    kernel.send(comm, {"kind": "action", "protocol": "1.0", "request_id": "r3", "action": "reload",
                       "plugin": "counter"})
    reloaded = kernel.comm_msg(comm, "reply", lambda d: d["request_id"] == "r3")
    assert reloaded["ok"] is True
    assert "reloaded" in reloaded["message"]

    kernel.send(comm, {"kind": "action", "protocol": "1.0", "request_id": "r4", "action": "refresh",
                       "plugin": None})
    mark = len(kernel.seen)
    kernel.comm_msg(comm, "reply", lambda d: d["request_id"] == "r4")
    snap = kernel.comm_msg(comm, "snapshot", start=mark)
    assert snap["state"]["plugins"][0]["health"] is not None

    kernel.send(comm, {"kind": "action", "protocol": "1.0", "request_id": "r5", "action": "unload",
                       "plugin": "counter"})
    kernel.comm_msg(comm, "reply", lambda d: d["request_id"] == "r5" and d["ok"])
    gone = kernel.comm_msg(comm, "delta", lambda d: d["remove"] == ["counter"])
    assert gone["event"]["kind"] == "unloaded"
    assert kernel.evaluate("list(pm.plugins)") == "[]"


def test_major_version_mismatch_is_refused_with_both_versions(kernel: Panel, plugin_file: Path) -> None:
    setup_bridge(kernel, plugin_file)
    comm = kernel.open(hello(version="2.0"))
    err = kernel.comm_msg(comm, "error")
    assert err["code"] == "version_mismatch"
    assert "2.0" in err["message"]
    assert PROTOCOL_VERSION in err["message"]
    assert "pip install" in err["message"]
    kernel.wait(lambda m: m["msg_type"] == "comm_close" and m["content"]["comm_id"] == comm)


def test_no_stale_comms_after_page_reload_or_close(kernel: Panel, plugin_file: Path) -> None:
    setup_bridge(kernel, plugin_file)
    first = kernel.open(hello())
    kernel.comm_msg(first, "snapshot")
    # the page reloads without closing its comm; the new page names the old comm
    second = kernel.open(hello(replaces=first))
    kernel.comm_msg(second, "snapshot")
    kernel.wait(lambda m: m["msg_type"] == "comm_close" and m["content"]["comm_id"] == first)
    assert kernel.evaluate("sorted(bridge.comm_ids)") == repr([second])
    kernel.close(second)
    assert kernel.evaluate("bridge.comm_ids") == "[]"


def test_not_loaded_kernel_closes_the_panel_comm(kernel: Panel) -> None:
    comm = kernel.open(hello())
    kernel.wait(lambda m: m["msg_type"] == "comm_close" and m["content"]["comm_id"] == comm)


def test_detach_closes_comms_and_unregisters(kernel: Panel, plugin_file: Path) -> None:
    setup_bridge(kernel, plugin_file)
    comm = kernel.open(hello())
    kernel.comm_msg(comm, "snapshot")
    kernel.execute("bridge.detach()")
    kernel.wait(lambda m: m["msg_type"] == "comm_close" and m["content"]["comm_id"] == comm)
    again = kernel.open(hello())
    kernel.wait(lambda m: m["msg_type"] == "comm_close" and m["content"]["comm_id"] == again)


def test_rollback_action_runs_the_picked_revision_and_replies(kernel: Panel, plugin_file: Path) -> None:
    setup_bridge(kernel, plugin_file)
    write_plugin(plugin_file, plugin_source("counter", "1.0.1", HEALTH))
    kernel.execute('pm.reload("counter")')
    comm = kernel.open(hello())
    snap = kernel.comm_msg(comm, "snapshot")
    revs = snap["state"]["plugins"][0]["revisions"]
    assert [(r["revision"], r["version"], r["current"]) for r in revs] == [(1, "1.0.0", False), (2, "1.0.1", True)]
    assert snap["state"]["plugins"][0]["metrics"]["reloads"] == 1

    kernel.send(comm, {"kind": "action", "protocol": "1.2", "request_id": "rb1", "action": "rollback",
                       "plugin": "counter", "revision": 1})
    reply = kernel.comm_msg(comm, "reply", lambda d: d["request_id"] == "rb1")
    assert reply["ok"] is True and "rolled back to revision 1" in reply["message"]
    row = kernel.comm_msg(comm, "delta", lambda d: bool(d["upsert"]) and d["upsert"][0]["version"] == "1.0.0")
    assert row["upsert"][0]["revisions"][-1]["reason"] == "rollback"
    assert row["upsert"][0]["revisions"][-1]["rollback_of"] == 1

    kernel.send(comm, {"kind": "action", "protocol": "1.2", "request_id": "rb2", "action": "rollback",
                       "plugin": "counter", "revision": 42})
    refused = kernel.comm_msg(comm, "reply", lambda d: d["request_id"] == "rb2")
    assert refused["ok"] is False and "42" in refused["message"] and "\n" not in refused["message"]
    kernel.send(comm, {"kind": "action", "protocol": "1.2", "request_id": "rb3", "action": "rollback",
                       "plugin": "counter", "revision": "one"})
    bad = kernel.comm_msg(comm, "error")
    assert "revision number" in bad["message"]
    assert kernel.evaluate("pm.plugins['counter'].version") == "'1.0.0'"
