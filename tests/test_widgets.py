"""The inline dashboard built and updated without a frontend.

No kernel here: ipywidgets' comms are inert, but every widget's model value is real, so the
tests assert what a frontend would render — the row's badge, version, last reload, the plot and
the log change when the manager emits events, and buttons call the manager.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flx_ipy import PluginManager
from flx_ipy.testing import ScriptedChanges, plugin_source, wait_for, write_plugin
from flx_ipy.widgets import Dashboard, dashboard, mimebundle, render

HEALTH = 'def health_check(self):\n    return HealthStatus.healthy("ticking")\n'


@pytest.fixture
def counter(pm: PluginManager, make_plugin: Any) -> Path:
    path: Path = make_plugin("counter", HEALTH)
    pm.load(str(path), start=True)
    return path


@pytest.fixture
def board(pm: PluginManager) -> Iterator[Dashboard]:
    b = Dashboard(pm)
    yield b
    b.close()


def bump(path: Path, version: str, body: str = HEALTH) -> None:
    write_plugin(path, plugin_source("counter", version, body))


def test_rows_classes_and_header_from_the_snapshot(pm: PluginManager, counter: Path, make_plugin: Any) -> None:
    pm.load(str(make_plugin("clock", cls="Clock")))
    b = Dashboard(pm)
    try:
        assert list(b.rows) == ["clock", "counter"]
        assert "flx-dashboard" in b._dom_classes
        row = b.rows["counter"]
        assert {"flx-row", "flx-row-counter"} <= set(row._dom_classes)
        assert "flx-btn-reload" in row.buttons["reload"]._dom_classes
        assert "flx-state-running" in row.badge.value and "#2e7d32" in row.badge.value  # green
        assert "flx-state-loaded" in b.rows["clock"].badge.value and "#1565c0" in b.rows["clock"].badge.value
        assert "1.0.0" in row.version.value
        assert "never reloaded" in row.last_reload.value
        assert "2 loaded" in b.header.value
        assert "not watching" in b.watcher.value
        assert row.buttons["start"].disabled and not row.buttons["stop"].disabled
        assert [r.name for r in b.row_box.children] == ["clock", "counter"]
    finally:
        b.close()


def test_empty_manager_says_how_to_load(board: Dashboard) -> None:
    assert board.rows == {}
    assert "%plugin load" in board.empty.value
    assert "no reloads yet" in board.plot.value


def test_reload_updates_badge_version_last_reload_plot_and_log(pm: PluginManager, counter: Path,
                                                                board: Dashboard) -> None:
    row = board.rows["counter"]
    before = (row.version.value, row.last_reload.value, board.plot.value, board.event_log.value)
    bump(counter, "1.0.1")
    assert pm.reload("counter").ok
    assert "1.0.1" in row.version.value
    assert "flx-reload-ok" in row.last_reload.value and "ok in" in row.last_reload.value
    assert "flx-state-running" in row.badge.value
    assert "flx-latency-bar" in board.plot.value and "last 1" in board.plot.value
    assert "counter reloaded" in board.event_log.value
    assert "reloading" not in board.event_log.value  # always followed by the outcome: noise
    after = (row.version.value, row.last_reload.value, board.plot.value, board.event_log.value)
    assert all(a != b for a, b in zip(before, after, strict=True))


def test_rolled_back_reload_shows_why_and_keeps_the_old_version(pm: PluginManager, counter: Path,
                                                               board: Dashboard) -> None:
    write_plugin(counter, "class Broken(:\n")
    result = pm.reload("counter")
    assert not result.ok and result.rolled_back
    row = board.rows["counter"]
    assert "flx-reload-rolled-back" in row.last_reload.value
    assert "rolled back: SyntaxError" in row.last_reload.value
    assert "1.0.0" in row.version.value and "flx-state-running" in row.badge.value
    assert "previous version still running" in row.error.value
    assert row.error.layout.display != "none"
    assert "1 rolled back" in board.plot.value
    assert "Traceback" not in row.error.value


def test_buttons_call_the_manager(pm: PluginManager, counter: Path, board: Dashboard) -> None:
    row = board.rows["counter"]
    row.buttons["stop"].click()
    assert pm.status("counter") == "stopped"
    assert "flx-state-stopped" in row.badge.value and "#757575" in row.badge.value
    assert not row.buttons["start"].disabled and row.buttons["stop"].disabled
    row.buttons["start"].click()
    assert pm.status("counter") == "running"
    bump(counter, "1.0.2")
    row.buttons["reload"].click()
    assert pm.plugins["counter"].version == "1.0.2" and "1.0.2" in row.version.value
    assert row.error.value == ""
    row.buttons["unload"].click()  # unload throws state away: the first click only asks
    assert "counter" in pm.plugins and row.confirming
    assert row.buttons["unload"].description == "confirm unload" and row.cancel.layout.display == ""
    row.cancel.click()
    assert "counter" in pm.plugins and not row.confirming and row.cancel.layout.display == "none"
    row.buttons["unload"].click()
    row.buttons["unload"].click()
    assert "counter" not in pm.plugins
    assert board.rows == {} and board.row_box.children == ()
    assert row.comm is None and row.badge.comm is None  # the removed row's widgets are closed


def test_a_refused_action_is_one_line_in_the_row_not_a_traceback(pm: PluginManager, counter: Path,
                                                                  board: Dashboard) -> None:
    row = board.rows["counter"]
    row.buttons["start"].click()  # already running: the manager refuses
    text = row.error.value
    assert "start counter failed" in text
    assert "\n" not in text and "Traceback" not in text
    assert pm.status("counter") == "running"
    row.buttons["stop"].click()  # the next event from the manager clears the stale error
    assert row.error.value == "" and row.error.layout.display == "none"


def test_failed_plugin_is_red_with_its_error(pm: PluginManager, make_plugin: Any, board: Dashboard) -> None:
    path = make_plugin("bad", "def start(self):\n    raise RuntimeError('no database')\n", cls="Bad")
    pm.load(str(path))
    with pytest.raises(Exception, match="no database"):
        pm.start("bad")
    row = board.rows["bad"]
    assert "flx-state-failed" in row.badge.value and "#c62828" in row.badge.value
    assert "no database" in row.error.value


def test_health_button_and_health_changes(pm: PluginManager, counter: Path, board: Dashboard) -> None:
    row = board.rows["counter"]
    board.health_button.click()
    assert "flx-health-healthy" in row.health.value and "ticking" in row.health.value
    assert "checked 1 plugin just now" in board.message.value and "1 changed" in board.message.value
    board.health_button.click()  # nothing changed: it still says the checks ran
    assert "checked 1 plugin just now" in board.message.value and "no change" in board.message.value
    bump(counter, "1.0.1", 'def health_check(self):\n    return HealthStatus.degraded("slow disk")\n')
    pm.reload("counter")
    pm.health("counter")
    assert "flx-health-degraded" in row.health.value and "slow disk" in row.health.value


def test_events_from_another_thread_update_the_widgets(pm: PluginManager, counter: Path,
                                                        board: Dashboard) -> None:
    bump(counter, "2.0.0")
    t = threading.Thread(target=pm.reload, args=("counter",))
    t.start()
    t.join(10)
    assert "2.0.0" in board.rows["counter"].version.value


def test_watcher_state_and_a_watched_save(pm: PluginManager, counter: Path, board: Dashboard) -> None:
    src = ScriptedChanges()
    pm.watch(source=src, settle=0.0)
    try:
        assert "flx-watcher-on" in board.watcher.value and str(counter.parent) in board.watcher.value
        bump(counter, "3.0.0")
        src.push(counter)
        wait_for(lambda: "3.0.0" in board.rows["counter"].version.value)  # applied by the watcher thread
    finally:
        pm.unwatch()
    assert "not watching" in board.watcher.value


def test_event_log_is_newest_first_and_bounded(pm: PluginManager, counter: Path) -> None:
    b = Dashboard(pm, log_size=3)
    try:
        for _ in range(3):
            pm.stop("counter")
            pm.start("counter")
        items = b.event_log.value.count("flx-log-item")
        assert items == 3
        assert b.event_log.value.index("counter started") < b.event_log.value.index("counter stopped")
    finally:
        b.close()


def test_close_unsubscribes_and_closes_widgets(pm: PluginManager, counter: Path) -> None:
    before = len(pm.events._subscribers)
    b = Dashboard(pm)
    assert len(pm.events._subscribers) == before + 1
    row = b.rows["counter"]
    b.close()
    assert len(pm.events._subscribers) == before
    assert b.closed and b.comm is None and row.comm is None and b.plot.comm is None
    pm.stop("counter")  # no error, nothing updates a closed dashboard
    b.close()  # idempotent


def test_dashboard_is_shared_per_manager_until_closed(pm: PluginManager, counter: Path) -> None:
    first = dashboard(pm)
    try:
        assert dashboard(pm) is first
        other = dashboard(pm, new=True)
        assert other is not first
        other.close()
    finally:
        first.close()
    again = dashboard(pm)
    assert again is not first
    again.close()


def test_widget_bundle_carries_text_and_html_fallbacks(pm: PluginManager, counter: Path,
                                                        board: Dashboard) -> None:
    bundle = board._repr_mimebundle_()
    assert bundle is not None
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == board.model_id
    assert "counter" in bundle["text/plain"] and "running" in bundle["text/plain"]
    assert "flx-row-counter" in bundle["text/html"]
    assert "counter" in str(board)


def test_manager_repr_mimebundle_without_a_kernel_is_text_and_html(pm: PluginManager, counter: Path) -> None:
    bundle = pm._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}  # terminal / no widget frontend: no widget made
    assert "counter" in bundle["text/plain"] and "healthy" not in bundle["text/plain"].split("\n")[0]
    assert "flx-dashboard-static" in bundle["text/html"]
    assert set(mimebundle(pm, include=["text/plain"])) == {"text/plain"}
    assert set(mimebundle(pm, exclude=["text/html"])) == {"text/plain"}


def test_text_fallback_shows_rolled_back_reload(pm: PluginManager, counter: Path) -> None:
    write_plugin(counter, "class Broken(:\n")
    pm.reload("counter")
    text = pm._repr_mimebundle_()["text/plain"]
    assert "rolled back: SyntaxError" in text
    assert "previous version still running" in text
    assert "recent events (newest first)" in text


def test_badge_colours_per_state() -> None:
    assert "--jp-warn-color1" in render.badge_html("reloading")  # the theme's warning colour
    assert "#ef6c00" in render.badge_html("reloading")  # and its light fallback (saved notebooks)
    assert "#1565c0" in render.badge_html("initialized")  # blue, as loaded
    assert "flx-state-odd" in render.badge_html("odd")  # unknown states still render


def test_latency_plot_scales_and_marks_rollbacks() -> None:
    pts = [render.Latency("a", 2.0, True), render.Latency("a", 8.0, True), render.Latency("b", None, False)]
    svg = render.latency_svg(pts)
    assert svg.count("flx-latency-bar") == 3
    assert "10.0 ms" in svg  # the axis top is a round number above the max
    assert "p50 8.0 ms" in svg and "1 rolled back" in svg
    assert render._nice_ceiling(0.37) == pytest.approx(0.5)
    assert render._nice_ceiling(120) == pytest.approx(200)


def test_importing_the_package_loads_no_ipywidgets_and_dashboard_stays_a_function() -> None:
    import subprocess
    import sys

    code = ("import sys, flx_ipy, flx_ipy.widgets as fw; assert 'ipywidgets' not in sys.modules; "
            "import flx_ipy.widgets.board; assert callable(fw.dashboard) and not isinstance(fw.dashboard, type(sys))")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


def test_buttons_follow_the_protocols_table_of_allowed_actions(pm: PluginManager, make_plugin: Any,
                                                               board: Dashboard) -> None:
    """One table (protocol.ALLOWED_ACTIONS, narrowed per row by row_actions) decides; a failed
    plugin offers no reload or rollback, which the manager would refuse."""
    from flx_ipy.protocol import ALLOWED_ACTIONS, allowed_actions, row_actions

    path = make_plugin("bad", "def start(self):\n    raise RuntimeError('no database')\n", cls="Bad")
    pm.load(str(path))
    row = board.rows["bad"]
    enabled = {a for a, b in row.buttons.items() if not b.disabled}
    assert enabled == set(ALLOWED_ACTIONS["loaded"]) - {"rollback"}  # one revision: nothing to go back to
    assert enabled == set(row_actions(row.view))
    assert "no earlier revision" in row.buttons["rollback"].tooltip
    with pytest.raises(Exception, match="no database"):
        pm.start("bad")
    assert pm.status("bad") == "failed"
    assert row.buttons["reload"].disabled and "not possible" in row.buttons["reload"].tooltip
    assert row.buttons["rollback"].disabled
    assert allowed_actions("failed") == ("start", "unload")
    with pytest.raises(Exception, match="not reloaded"):
        pm.reload("bad")  # the table says what the manager really does
    for state, actions in ALLOWED_ACTIONS.items():
        assert set(actions) <= {"start", "stop", "reload", "rollback", "unload"}, state


def test_rollback_picker_lists_revisions_and_runs_the_picked_one(pm: PluginManager, counter: Path,
                                                                 board: Dashboard) -> None:
    row = board.rows["counter"]
    assert row.buttons["rollback"].disabled and row._picker_line.layout.display == "none"
    bump(counter, "1.0.1")
    pm.reload("counter")
    bump(counter, "1.0.2")
    pm.reload("counter")
    labels = [label for label, _ in row.revision_picker.options]
    # r3 (1.0.2) runs; the picker offers r2 and r1, newest first
    assert [v for _, v in row.revision_picker.options] == [2, 1]
    assert labels[0].startswith("r2 · 1.0.1 · reload · ") and labels[1].startswith("r1 · 1.0.0 · load")
    sha = pm.history("counter")[0].code_sha256[:12]
    assert labels[1].endswith(sha)
    assert row.revision_picker.value == 2 and not row.buttons["rollback"].disabled
    row.revision_picker.value = 1
    assert row.act("rollback")
    assert pm.plugins["counter"].version == "1.0.0" and pm.status("counter") == "running"
    assert row.view["version"] == "1.0.0"
    last = pm.history("counter")[-1]
    assert (last.revision, last.reason, last.rollback_of) == (4, "rollback", 1)
    assert [v for _, v in row.revision_picker.options] == [3, 2, 1]  # r4 (the rollback) is current
    assert row.revision_picker.value == 3  # a new revision resets the choice to the one before
    assert counter.read_text().count("1.0.2") == 1  # the file on disk is untouched


def test_a_refused_rollback_is_one_line_in_the_row(pm: PluginManager, counter: Path, board: Dashboard) -> None:
    row = board.rows["counter"]
    bump(counter, "1.0.1")
    pm.reload("counter")
    assert not row.act("rollback", revision=99)
    text = row.error.value
    assert "rollback counter failed" in text and "99" in text and "Traceback" not in text
    assert pm.plugins["counter"].version == "1.0.1"


def test_row_details_show_slowest_hook_and_reload_times(pm: PluginManager, counter: Path,
                                                        board: Dashboard) -> None:
    bump(counter, "1.0.1")
    pm.reload("counter")
    board.check_health()  # a health round refreshes the figures that move without an event
    row = board.rows["counter"]
    m = pm.metrics()["counter"]
    assert row.view["metrics"] is not None
    assert row.view["metrics"]["slowest_hook"] == m["slowest_hook"]
    assert row.view["metrics"]["reloads"] == 1
    details = row.details.value
    assert f"slowest hook: {m['slowest_hook']}" in details and "reloads: 1, last " in details
    assert row.details.layout.display == ""
    assert "slowest hook" in str(board)  # the text fallback says it too


def test_isolation_and_signature_render_what_the_view_says() -> None:
    iso = {"pid": 4242, "state": "running", "enforced": ["userns", "netns", "seccomp"],
           "unavailable": {"landlock": "kernel 5.10 has no Landlock"}, "rss_mb": 23.4, "cpu_seconds": 0.12,
           "crashes": 1, "restarts": 1, "last_crash": "segfault (SIGSEGV)", "last_crash_at": 1.0e9}
    html = render.isolation_html(iso)
    for part in ("isolated", "pid 4242", "23 MB", "0.12 s CPU", "userns+netns+seccomp", "landlock",
                 "segfault (SIGSEGV)", "kernel 5.10 has no Landlock"):
        assert part in html, part
    assert render.isolation_html(None) == ""
    sig = {"status": "modified", "signer": "alice", "files": ["a.py", "pkg/b.py"]}
    assert "flx-signature-modified" in render.signature_html(sig)
    assert "changed since signed: a.py, pkg/b.py" in render.modified_html(sig)
    signed = render.signature_html({"status": "signed", "signer": "alice", "files": []})
    assert "signed by alice" in signed and "var(--jp-success-color1" in signed


def _index_with_hello(folder: Path, *, tampered: bool = False) -> Path:
    from flx_ipy.registry import build_index
    from flx_ipy.registry.wheelmaker import make_wheel, plugin_module

    folder.mkdir()
    for version in ("1.0.0", "1.1.0"):
        make_wheel(folder, "flx-hello", version, {"flx_hello/__init__.py": plugin_module("hello", version)},
                   entry_points={"flx_ipy.plugins": {"hello": "flx_hello:HelloPlugin"}})
    build_index(folder)
    if tampered:
        wheel = folder / "flx_hello-1.1.0-py3-none-any.whl"
        wheel.write_bytes(wheel.read_bytes() + b"\0")
    return folder


def test_index_section_lists_offers_and_installs_with_pip_progress(pm: PluginManager, board: Dashboard,
                                                                   tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setattr(sys, "path", list(sys.path))  # the install puts its --target first on sys.path
    idx = _index_with_hello(tmp_path / "index")
    panel = board.show_index()
    assert board.index_button.value and panel.layout.display == ""
    panel.location.value, panel.target = str(idx), str(tmp_path / "site")
    assert panel.list()
    assert "flx-hello" in panel.offers.value and "1.1.0" in panel.offers.value
    assert list(panel.pick.options) == [("flx-hello (hello)", "flx-hello")]
    assert list(panel.version.options) == ["1.1.0", "1.0.0"]  # newest first
    assert "1 plugin package in" in panel.message.value
    seen: list[str] = []
    panel.progress.observe(lambda c: seen.append(c["new"]), names="value")
    panel.version.value = "1.0.0"
    assert panel.install(), panel.message.value
    assert any("flx-progress-running" in v for v in seen)  # shown while pip ran
    assert any("pip install flx-hello==1.0.0" in v for v in seen)
    assert "installed flx-hello 1.0.0" in panel.message.value and "flx-outcome-ok" in panel.message.value
    assert (tmp_path / "site" / "flx_hello" / "__init__.py").is_file()
    assert not panel.install_button.disabled and panel.progress.value == ""
    assert any(e.kind == "installed" for e in pm.events.history())  # the event log says it too
    board.show_index(False)
    assert panel.layout.display == "none" and not board.index_button.value


def test_index_section_errors_are_one_line_and_install_nothing(pm: PluginManager, board: Dashboard,
                                                               tmp_path: Path) -> None:
    panel = board.show_index()
    panel.location.value = str(tmp_path / "nowhere")
    assert not panel.list()
    assert "flx-outcome-failed" in panel.message.value and "no index.json" in panel.message.value
    assert panel._choose.layout.display == "none"
    idx = _index_with_hello(tmp_path / "index", tampered=True)
    panel.location.value, panel.target = str(idx), str(tmp_path / "site")
    assert panel.list()
    assert not panel.install()  # 1.1.0, the newest, was tampered with after the index was built
    text = panel.message.value
    assert "refused flx_hello-1.1.0" in text and "Traceback" not in text
    assert not (tmp_path / "site" / "flx_hello").exists()


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="worker sandbox is Linux-only")
def test_isolated_row_shows_worker_and_last_crash_from_a_real_worker(pm: PluginManager, counter: Path,
                                                                     make_plugin: Any, board: Dashboard) -> None:
    import os
    import signal

    path = make_plugin("boxed", cls="Boxed")
    rec = pm.load(str(path), start=True, isolated=True)
    write_plugin(path, plugin_source("boxed", "1.0.1", cls="Boxed"))
    pm.reload("boxed")
    board.check_health()
    row = board.rows["boxed"]
    iso = row.view["isolation"]
    assert iso is not None and iso["pid"] == rec.worker.pid
    details = row.details.value
    assert "isolated" in details and f"pid {rec.worker.pid}" in details and "enforced: " in details
    if iso["rss_mb"] is not None:
        assert f"{iso['rss_mb']:.0f} MB" in details
    # the worker runs kept code too: rollback is offered for the isolated row as for any other
    assert not row.buttons["rollback"].disabled
    assert not board.rows["counter"].details.value.count("isolated")  # in-process rows say nothing of it
    old = rec.worker.pid
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: rec.worker.pid not in (None, old) and pm.status("boxed") == "running", timeout=20)
    # "crashed" shows the reason at once; "restarted" then the new worker
    wait_for(lambda: f"pid {rec.worker.pid}" in board.rows["boxed"].details.value, timeout=10)
    details = board.rows["boxed"].details.value
    assert "last crash" in details and "killed (SIGKILL)" in details and "flx-isolation-running" in details
