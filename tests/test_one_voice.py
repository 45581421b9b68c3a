"""One renderer for people (issue 11, items 3, 4, 7, 13): ``%plugin list``, the dashboard, the
status line and the event log say the same thing the same way, and notices end."""

from __future__ import annotations

import re
from html import escape
from pathlib import Path
from typing import Any

import pytest

from flx_ipy import PluginManager
from flx_ipy.display import TEXT_WIDTH, StatusLine, event_log, plugin_table
from flx_ipy.testing import wait_for, write_plugin
from flx_ipy.uistate import UIState, summarize
from flx_ipy.widgets import render

FAILING_START = """
    def start(self):
        if getattr(self, "boom", False):
            raise RuntimeError("no database")
"""


@pytest.fixture
def greeter(pm: PluginManager, make_plugin: Any) -> Path:
    path: Path = make_plugin("greeter", FAILING_START)
    pm.load(str(path), start=True)
    return path


def break_save(pm: PluginManager, path: Path) -> str:
    good = path.read_text()
    write_plugin(path, good + "\n    def oops(self:\n")
    pm.apply_changes([path])
    return good


# ----------------------------------------------------------------------------- item 13
def test_a_failure_is_phrased_one_way_with_its_location_once(pm: PluginManager, greeter: Path) -> None:
    break_save(pm, greeter)
    rec = pm.plugins["greeter"]
    ui = UIState(pm)
    (row,) = ui.snapshot()["plugins"]
    event = pm.events.history(1)[0]
    summary = summarize(event.kind, event.plugin, event.details)
    assert rec.error is not None
    assert summary == f"greeter {rec.error}"  # the event log says what the row says
    assert row["error"] == rec.error
    assert rec.error.count(str(greeter)) == 1 and "line " not in rec.error  # "(greeter.py, line 10)" is gone
    assert re.search(r"at .*greeter\.py:\d+ — previous version still running$", rec.error)
    status = StatusLine(pm).attach()
    try:
        write_plugin(greeter, greeter.read_text() + "\n")
        pm.apply_changes([greeter])
        assert status.last.endswith(f"greeter {pm.plugins['greeter'].error}")
    finally:
        status.detach()


def test_no_failed_start_failed(pm: PluginManager, greeter: Path) -> None:
    pm.stop("greeter")
    pm.get("greeter").boom = True
    with pytest.raises(Exception, match="no database"):
        pm.start("greeter")
    event = pm.events.history(1)[0]
    text = summarize(event.kind, event.plugin, event.details)
    assert "failed: start failed" not in text
    assert text.startswith("greeter start failed: RuntimeError: no database")


def test_a_reload_says_from_which_version(pm: PluginManager, greeter: Path) -> None:
    write_plugin(greeter, greeter.read_text().replace("1.0.0", "1.2.0"))
    pm.apply_changes([greeter])
    log = repr(event_log(pm.events.history()))
    assert re.search(r"greeter reloaded in [\d.]+ ms \(from 1\.0\.0 to 1\.2\.0\)", log)
    assert not re.search(r"ms → ", log)


def test_list_and_dashboard_share_palette_clock_and_words(pm: PluginManager, greeter: Path) -> None:
    break_save(pm, greeter)
    table = plugin_table(pm)
    html = table._repr_html_()
    view = UIState(pm).snapshot()["plugins"][0]
    assert escape(render.reload_text(view["last_reload"])) in html  # the dashboard's words
    assert table.text().count("rolled back: SyntaxError") == 1
    assert render.health_text(view["health"]) in table.text()
    assert "var(--jp-success-color1" in html  # running: the theme's colour, as on the badge
    assert "var(--jp-success-color1" in render.badge_html("running")
    assert not re.search(r"#[0-9a-fA-F]{6}(?!\))", html.replace(", #", ",#"))  # only as var() fallbacks
    stamp = render.clock(view["last_reload"]["finished_at"])
    assert re.fullmatch(r"\d\d:\d\d:\d\d", stamp) and stamp in table.text()


# ----------------------------------------------------------------------------- item 7
def test_list_with_a_long_error_fits_160_columns(pm: PluginManager, make_plugin: Any) -> None:
    deep = "very_long_folder_name_" * 6
    path = make_plugin("greeter", FAILING_START, filename=f"{deep[:60]}_greeter.py")
    pm.load(str(path), start=True)
    write_plugin(path, path.read_text() + "\n    def oops(self, " + "x" * 150 + ":\n")
    pm.apply_changes([path])
    text = plugin_table(pm).text()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= TEXT_WIDTH, "\n".join(lines)
    header = next(i for i, line in enumerate(lines) if line.startswith("name"))
    row = lines[header + 2]
    assert row.startswith("greeter") and "…" in row  # cells are cut, not wrapped
    error = pm.plugins["greeter"].error or ""
    under = " ".join(line.strip() for line in lines[header + 3:])
    assert f"! greeter: {error}" in under.replace("  ", " ") or error.split(" at ")[0] in under


# ----------------------------------------------------------------------------- item 1 in the UIs
def test_clearing_an_error_reaches_list_row_and_status_line(pm: PluginManager, greeter: Path) -> None:
    status = StatusLine(pm).attach()
    try:
        good = break_save(pm, greeter)
        assert "✗" in repr(status.view()) and "!" in plugin_table(pm).text()
        write_plugin(greeter, good)
        pm.apply_changes([greeter])
        assert "✗" not in repr(status.view())
        assert "source matches the running version" in status.last and not status.last_failed
        assert "! greeter" not in plugin_table(pm).text()
        (row,) = UIState(pm).snapshot()["plugins"]
        assert row["error"] is None and row["last_reload"]["note"] == "source matches the running version"
        assert render.reload_text(row["last_reload"]) == "source matches the running version"
    finally:
        status.detach()


# ----------------------------------------------------------------------------- item 3
def test_status_notice_is_replaced_by_the_next_event(pm: PluginManager, greeter: Path) -> None:
    status = StatusLine(pm, fade=0).attach()
    try:
        break_save(pm, greeter)
        assert "reload failed" in status.last and status.last_failed
        pm.stop("greeter")
        assert "greeter stopped" in status.last and not status.last_failed
    finally:
        status.detach()


def test_status_notice_never_names_an_unloaded_plugin(pm: PluginManager, greeter: Path) -> None:
    status = StatusLine(pm, fade=0).attach()
    try:
        break_save(pm, greeter)
        pm.unload("greeter")
        assert "greeter" not in repr(status.view())
        assert status.last == ""
    finally:
        status.detach()


def test_status_notice_fades(pm: PluginManager, greeter: Path) -> None:
    status = StatusLine(pm, fade=0.05).attach()
    try:
        break_save(pm, greeter)
        assert status.last
        wait_for(lambda: status.last == "", timeout=5)
        assert "reload failed" not in repr(status.view())
    finally:
        status.detach()


# ----------------------------------------------------------------------------- item 4
def test_saves_waiting_for_the_running_cell_are_shown(pm: PluginManager, greeter: Path) -> None:
    ui = UIState(pm).attach()
    status = StatusLine(pm).attach()
    pm.watch(paths=[str(greeter.parent)])
    try:
        pm.events.publish("saves_waiting", None, count=1)
        snap = ui.snapshot()
        assert snap["watcher"]["saves_waiting"] == 1
        assert "1 save waiting for the running cell" in repr(status.view())
        assert "1 save waiting for the running cell" in render.watcher_text(snap["watcher"])
        late = UIState(pm)  # a panel opened while the cell still runs
        assert late.snapshot()["watcher"]["saves_waiting"] == 1
        pm.events.publish("saves_waiting", None, count=0)
        assert ui.snapshot()["watcher"]["saves_waiting"] == 0
        assert "waiting" not in repr(status.view())
    finally:
        pm.unwatch()
        ui.detach()
        status.detach()


# ----------------------------------------------------------------------------- items 11, 12
def test_every_colour_is_a_theme_variable(pm: PluginManager, greeter: Path) -> None:
    break_save(pm, greeter)
    state = UIState(pm).snapshot()
    fragments = [render.render_html(state), render.restart_notice_html(), render.latency_svg(
        render.latency_points(state["events"], state["plugins"])), plugin_table(pm)._repr_html_(),
        StatusLine(pm).view()._repr_html_()]
    for html in fragments:
        for prop, value in re.findall(r"(?<![-\w])(color|background):\s*([^;\"']+)", html):
            assert value.strip().startswith("var(--jp-"), (prop, value, html[:200])
        for value in re.findall(r'(?:fill|stroke)="([^"]+)"', html):
            assert value.startswith("var(--jp-"), value
        # a literal colour appears only as a var() fallback (saved notebooks, nbconvert HTML)
        bare = re.sub(r"var\(--jp-[a-z0-9-]+, #[0-9a-fA-F]{3,6}\)", "", html)
        assert not re.search(r"#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b", bare), bare[:300]


def test_a_long_rollback_reason_wraps_instead_of_being_clipped(pm: PluginManager, greeter: Path) -> None:
    write_plugin(greeter, greeter.read_text() + "\n    def broken(self) -> None\n        return 'a long line'\n")
    pm.apply_changes([greeter])
    (row,) = UIState(pm).snapshot()["plugins"]
    reason = row["last_reload"]["error"]
    html = render.reload_html(row["last_reload"]) + render.error_html(row["error"])
    assert escape(f"rolled back: {reason}") in html  # the whole reason, not cut mid-word
    assert "text-overflow:ellipsis" not in html and "white-space:nowrap" not in html
    assert "white-space:normal" in html


def test_the_dashboards_text_fallback_is_the_list_table(pm: PluginManager, greeter: Path) -> None:
    break_save(pm, greeter)
    text = render.render_text(UIState(pm).snapshot())
    table = plugin_table(pm).text().splitlines()[:-1]  # all but the watcher footer
    assert "\n".join(table) in text
