"""The UI state model: snapshot first, then one delta per manager event, with no kernel."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from flx_ipy import PluginManager
from flx_ipy.core.events import EventBus
from flx_ipy.testing import plugin_source, write_plugin
from flx_ipy.uistate import UIState, event_view, summarize

HEALTH_BODY = """
def health_check(self):
    return HealthStatus.degraded("queue is long")
"""


@pytest.fixture
def pm() -> Any:
    manager = PluginManager(entry_points=False)
    yield manager
    manager.close()


@pytest.fixture
def plugin_file(tmp_path: Path) -> Path:
    # a unique module name per test: the loader keys modules by file
    return write_plugin(tmp_path / f"uistate_{uuid.uuid4().hex[:8]}.py",
                        plugin_source("counter", "1.0.0", HEALTH_BODY))


@pytest.fixture
def ui(pm: Any) -> Any:
    state = UIState(pm).attach()
    yield state
    state.detach()


def test_empty_snapshot(ui: UIState) -> None:
    snap = ui.snapshot()
    assert snap["plugins"] == []
    assert snap["events"] == []
    assert snap["watcher"] == {"watching": False, "paths": [], "saves_waiting": 0}
    assert snap["flx_version"]


def test_listener_gets_snapshot_then_deltas(pm: Any, ui: UIState, plugin_file: Path) -> None:
    got: list[dict[str, Any]] = []
    ui.listen(got.append)
    pm.load(str(plugin_file), start=True)
    assert got[0]["kind"] == "snapshot"
    assert [m["kind"] for m in got[1:]] == ["delta"] * (len(got) - 1)
    seqs = [m["seq"] for m in got[1:]]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    row = got[-1]["upsert"][0]
    assert row["name"] == "counter"
    assert row["state"] == "running"
    assert row["version"] == "1.0.0"
    assert row["source"] == str(plugin_file)


def test_snapshot_row_has_everything_a_ui_shows(pm: Any, ui: UIState, plugin_file: Path) -> None:
    pm.load(str(plugin_file), start=True)
    pm.health("counter")
    write_plugin(plugin_file, plugin_source("counter", "1.0.1", HEALTH_BODY))
    pm.reload("counter")
    (row,) = ui.snapshot()["plugins"]
    assert row["version"] == "1.0.1"
    assert row["state"] == "running"
    assert row["health"] is not None
    assert row["health"]["status"] == "degraded"
    assert row["health"]["message"] == "queue is long"
    reload = row["last_reload"]
    assert reload is not None
    assert reload["ok"]
    assert not reload["rolled_back"]
    assert reload["duration_ms"] is not None
    assert reload["duration_ms"] > 0
    assert reload["finished_at"] is not None
    assert row["error"] is None


def test_rolled_back_reload_shows_why_and_keeps_running(pm: Any, ui: UIState, plugin_file: Path) -> None:
    pm.load(str(plugin_file), start=True)
    deltas: list[dict[str, Any]] = []
    ui.listen(deltas.append, snapshot=False)
    write_plugin(plugin_file, plugin_source("counter", "1.0.1", "def broken(:\n    pass"))
    result = pm.reload("counter")
    assert not result.ok
    failed = [d for d in deltas if d["event"]["kind"] == "reload_failed"]
    assert failed, [d["event"]["kind"] for d in deltas]
    row = failed[-1]["upsert"][0]
    assert row["state"] == "running"
    assert row["version"] == "1.0.0"
    assert row["last_reload"]["rolled_back"]
    assert "SyntaxError" in row["last_reload"]["error"]
    assert "SyntaxError" in row["error"]
    assert "previous version still running" in failed[-1]["event"]["summary"]


def test_stop_and_unload_become_deltas(pm: Any, ui: UIState, plugin_file: Path) -> None:
    pm.load(str(plugin_file), start=True)
    deltas: list[dict[str, Any]] = []
    ui.listen(deltas.append, snapshot=False)
    pm.stop("counter")
    assert deltas[-1]["upsert"][0]["state"] == "stopped"
    pm.unload("counter")
    assert deltas[-1]["remove"] == ["counter"]
    assert deltas[-1]["upsert"] == []
    assert ui.snapshot()["plugins"] == []


def test_late_ui_sees_history_and_current_rows(pm: Any, plugin_file: Path) -> None:
    pm.load(str(plugin_file), start=True)
    late = UIState(pm).attach()
    try:
        snap = late.snapshot()
        assert [p["name"] for p in snap["plugins"]] == ["counter"]
        assert [e["kind"] for e in snap["events"]][:1] == ["loaded"]
        assert snap["seq"] == snap["events"][-1]["seq"]
    finally:
        late.detach()


def test_events_are_bounded(pm: Any, plugin_file: Path) -> None:
    ui = UIState(pm, max_events=5).attach()
    try:
        pm.load(str(plugin_file), start=True)
        for _ in range(4):
            pm.stop("counter")
            pm.start("counter")
        events = ui.snapshot()["events"]
        assert len(events) == 5
        assert events[-1]["kind"] == "started"
    finally:
        ui.detach()


def test_detach_stops_deltas(pm: Any, plugin_file: Path) -> None:
    ui = UIState(pm).attach()
    got: list[Any] = []
    ui.listen(got.append, snapshot=False)
    ui.detach()
    pm.load(str(plugin_file))
    assert got == []
    assert not ui.attached


def test_a_raising_listener_does_not_starve_others(pm: Any, ui: UIState, plugin_file: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    def broken(_msg: Any) -> None:
        raise RuntimeError("ui bug")

    got: list[Any] = []
    ui.listen(broken, snapshot=False)
    ui.listen(got.append, snapshot=False)
    pm.load(str(plugin_file))
    assert got
    assert "listener" in caplog.text


def test_deltas_from_threads_never_precede_the_snapshot_or_go_missing() -> None:
    """Events published from several threads while UIs attach: each UI folds to the same end."""
    bus = EventBus()
    ui = UIState()
    unsubscribe = bus.subscribe(ui.apply)
    streams: list[list[dict[str, Any]]] = []

    def attach_late() -> None:
        stream: list[dict[str, Any]] = []
        streams.append(stream)
        ui.listen(stream.append)

    def publish(n: int, name: str) -> None:
        for i in range(n):
            bus.publish("loaded" if i == 0 else ("stopped" if i % 2 else "started"), name, version="1.0")

    threads = [threading.Thread(target=publish, args=(200, f"p{i}")) for i in range(3)]
    for t in threads:
        t.start()
    for _ in range(20):
        attach_late()
    for t in threads:
        t.join()
    unsubscribe()
    final = ui.snapshot()
    for stream in streams:
        assert stream[0]["kind"] == "snapshot"
        seen = stream[0]["state"]["seq"]
        rows = {p["name"]: p for p in stream[0]["state"]["plugins"]}
        for delta in stream[1:]:
            assert delta["kind"] == "delta"
            assert delta["seq"] > seen
            seen = delta["seq"]
            rows.update({p["name"]: p for p in delta["upsert"]})
        assert seen == final["seq"] == 600
        assert rows == {p["name"]: p for p in final["plugins"]}


def test_folding_without_a_manager() -> None:
    ui = UIState()
    bus = EventBus()
    bus.subscribe(ui.apply)
    bus.publish("loaded", "clock", version="1.0.0", source="clock.py")
    bus.publish("started", "clock", version="1.0.0")
    bus.publish("health_changed", "clock", status="unhealthy", message="no tick")
    bus.publish("reloading", "clock")
    bus.publish("reload_failed", "clock", phase="start", error="ValueError: bad", rolled_back=True)
    row = ui.plugin("clock")
    assert row is not None
    assert row["state"] == "running"
    assert row["source"] == "clock.py"
    assert row["health"] is not None
    assert (row["health"]["status"], row["health"]["message"]) == ("unhealthy", "no tick")
    assert row["last_reload"] is not None
    assert row["last_reload"]["rolled_back"]
    assert row["error"] == "ValueError: bad"
    bus.publish("reloading", "clock")
    bus.publish("reloaded", "clock", duration=0.002, version="1.1.0", previous_version="1.0.0")
    row = ui.plugin("clock")
    assert row is not None
    assert row["version"] == "1.1.0"
    assert row["error"] is None
    assert row["last_reload"] == {"ok": True, "rolled_back": False, "error": None, "duration_ms": 2.0,
                                  "finished_at": pytest.approx(row["last_reload"]["finished_at"]), "note": None}
    bus.publish("watch_started", None, paths=["/a", "/b"])
    assert ui.snapshot()["watcher"] == {"watching": True, "paths": ["/a", "/b"], "saves_waiting": 0}
    bus.publish("watch_stopped", None)
    assert ui.snapshot()["watcher"] == {"watching": False, "paths": [], "saves_waiting": 0}
    bus.publish("unloaded", "clock")
    assert ui.snapshot()["plugins"] == []


def test_repeated_events_are_folded_once() -> None:
    ui = UIState()
    bus = EventBus()
    ev = bus.publish("loaded", "a", version="1.0")
    assert ui.apply(ev) is not None
    assert ui.apply(ev) is None
    assert len(ui.snapshot()["events"]) == 1


@pytest.mark.parametrize(
    ("kind", "details", "expected"),
    [
        ("reloaded", {"duration": 0.0021, "version": "1.1", "previous_version": "1.0"},
         "counter reloaded in 2.1 ms (from 1.0 to 1.1)"),
        ("reload_failed", {"phase": "compile", "error": "SyntaxError: x", "rolled_back": True},
         "counter reload failed in compile: SyntaxError: x — previous version still running"),
        ("health_changed", {"status": "degraded", "message": "slow"}, "counter health: degraded — slow"),
        ("failed", {"error": "ImportError: y"}, "counter failed: ImportError: y"),
        ("started", {}, "counter started"),
    ],
)
def test_event_summaries(kind: str, details: dict[str, Any], expected: str) -> None:
    assert summarize(kind, "counter", details) == expected


def test_event_view_accepts_dicts() -> None:
    view = event_view({"kind": "stopped", "plugin": "x", "time": 1.0, "seq": 4, "details": {}})
    assert view["summary"] == "x stopped"
    assert view["seq"] == 4


def test_importing_the_state_model_imports_no_ui_library() -> None:
    code = ("import sys, flx_ipy.uistate, flx_ipy.protocol; "
            "print([m for m in ('IPython', 'ipywidgets', 'comm', 'ipykernel') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_rows_carry_revisions_and_timings(pm: Any, ui: UIState, plugin_file: Path) -> None:
    pm.load(str(plugin_file), start=True)
    write_plugin(plugin_file, plugin_source("counter", "1.0.1", HEALTH_BODY))
    pm.reload("counter")
    row = ui.plugin("counter")
    assert row is not None
    revs = row["revisions"]
    assert [(r["revision"], r["version"], r["reason"], r["current"]) for r in revs] == [
        (1, "1.0.0", "load", False), (2, "1.0.1", "reload", True)]
    assert revs[0]["code_sha256"] == pm.history("counter")[0].code_sha256[:12]
    m = row["metrics"]
    assert m is not None and m["reloads"] == 1 and m["reloads_failed"] == 0
    assert m["reload_last_ms"] == pytest.approx(pm.metrics()["counter"]["reloads"]["last_duration"] * 1000, rel=1e-3)
    assert m["slowest_hook"] in pm.metrics()["counter"]["hooks"]


def test_refresh_sends_rows_whose_figures_moved_without_an_event(pm: Any, ui: UIState, plugin_file: Path) -> None:
    pm.load(str(plugin_file), start=True)
    pm.health()
    got: list[Any] = []
    ui.listen(got.append, snapshot=False)
    seq = ui.seq
    calls = ui.plugin("counter")["metrics"]["hook_calls"]  # type: ignore[index]
    pm.health()  # same verdict: no event, but one more health_check call
    assert got == []
    delta = ui.refresh()
    assert delta is not None and got == [delta]
    assert delta["event"] is None and delta["seq"] == seq
    assert [r["name"] for r in delta["upsert"]] == ["counter"]
    assert delta["upsert"][0]["metrics"]["hook_calls"] == calls + 1  # type: ignore[index]
    assert ui.refresh() is None  # nothing moved since: nothing sent
    assert len(got) == 1


def test_a_background_health_round_refreshes_attached_uis(pm: Any, ui: UIState, plugin_file: Path) -> None:
    import asyncio

    from flx_ipy.health_poll import HealthPoller
    from flx_ipy.testing import wait_for

    pm.load(str(plugin_file), start=True)
    pm.health()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    class Idle:
        running = False

        def idle_loop(self) -> Any:
            return loop

    got: list[Any] = []
    ui.listen(lambda m: got.append(m) if m["event"] is None else None, snapshot=False)
    poller = HealthPoller(pm, Idle(), 0.02).start()
    try:
        wait_for(lambda: got, timeout=10)
        assert got[0]["upsert"][0]["name"] == "counter"
    finally:
        poller.stop()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
    ui.detach()
    assert not ui.attached
