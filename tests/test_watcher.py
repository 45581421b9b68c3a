"""Watching: scripted change sets for the logic, a few real-filesystem checks with timeouts."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from flx_ipy import PluginManager
from flx_ipy.core.watcher import Settler
from flx_ipy.testing import ManualClock, ScriptedChanges, plugin_source, wait_for, write_plugin

BODY = """
    def start(self):
        self.count = getattr(self, "count", 0)
    def version(self):
        return "v1"
"""


def reloads(pm: PluginManager) -> list[str]:
    return [e.kind for e in pm.events.history() if e.kind in ("reloaded", "reload_failed")]


# ----------------------------------------------------------------------------- the settler
def test_settler_waits_for_stable_content() -> None:
    contents = {"p.py": b"x = 1\n"}
    s = Settler(settle=0.01, broken_grace=0.3, read=lambda p: contents.get(p))
    s.changed(["p.py"], now=0.0)
    assert s.ready(0.005) == []  # not quiet long enough
    contents["p.py"] = b"x = 2\n"  # a second write that has not produced an event yet
    assert s.ready(0.011) == []  # content moved: wait again
    assert s.ready(0.022) == ["p.py"]
    assert s.pending == {}


def test_settler_holds_back_empty_or_broken_content_until_grace() -> None:
    contents = {"p.py": b""}
    s = Settler(settle=0.01, broken_grace=0.3, read=lambda p: contents.get(p))
    s.changed(["p.py"], now=0.0)
    assert s.ready(0.05) == []  # truncated file: the editor is still writing
    contents["p.py"] = b"def f(:\n"
    s.changed(["p.py"], now=0.06)
    assert s.ready(0.1) == []  # partial, does not compile: wait
    assert s.ready(0.5) == ["p.py"]  # still broken long after: report it


# ----------------------------------------------------------------------------- scripted watcher
@pytest.fixture
def scripted(pm: PluginManager, make_plugin):  # type: ignore[no-untyped-def]
    path = make_plugin("live", BODY)
    pm.load(str(path), start=True)
    src = ScriptedChanges()
    applied = threading.Event()
    w = pm.watch(source=src, settle=0.0, on_applied=lambda res, t: applied.set())
    yield path, src, applied, w
    pm.unwatch()


def test_scripted_change_is_applied(pm: PluginManager, scripted) -> None:  # type: ignore[no-untyped-def]
    path, src, applied, _ = scripted
    p = pm.get("live")
    write_plugin(path, path.read_text().replace('"v1"', '"v2"'))
    src.push(path)
    assert applied.wait(5)
    assert p.version() == "v2" and reloads(pm) == ["reloaded"]


def test_twenty_rapid_saves_coalesce_into_one_reload_of_the_last(pm: PluginManager, scripted) -> None:  # type: ignore[no-untyped-def]
    path, src, applied, w = scripted
    text = path.read_text()
    for i in range(20):
        write_plugin(path, text.replace('"v1"', f'"v{i + 2}"'))
    src.push(path)  # watchfiles delivers a burst as one change set
    assert applied.wait(5)
    assert pm.get("live").version() == "v21"
    assert reloads(pm) == ["reloaded"] and w.applied == 1


def test_save_without_change_does_nothing(pm: PluginManager, scripted) -> None:  # type: ignore[no-untyped-def]
    path, src, _, w = scripted
    n = len(pm.events.history())
    write_plugin(path, path.read_text())
    src.push(path)
    src.tick()
    src.wait_consumed()
    assert w.applied == 0 and len(pm.events.history()) == n


def test_chunked_save_is_never_applied_half_written(pm: PluginManager, make_plugin) -> None:
    path = make_plugin("chunky", BODY)
    pm.load(str(path), start=True)
    clock = ManualClock()
    src = ScriptedChanges()
    applied = threading.Event()
    pm.watch(source=src, settle=0.05, broken_grace=0.5, clock=clock,
             on_applied=lambda res, t: applied.set())
    full = path.read_text().replace('"v1"', '"v2"') + "\n    def extra(self):\n        return 'x'\n"
    cut = full.index("def version")  # a prefix that compiles but is missing a method
    write_plugin(path, full[:cut], atomic=False)
    src.push(path)
    src.tick()
    src.wait_consumed()
    assert not applied.is_set()  # clock did not move: nothing is applied yet
    write_plugin(path, full, atomic=False)  # the rest of the save
    src.push(path)
    src.wait_consumed()
    clock.advance(0.06)
    src.tick()
    assert applied.wait(5)
    p = pm.get("chunky")
    assert p.version() == "v2" and p.extra() == "x"
    assert reloads(pm) == ["reloaded"]
    pm.unwatch()


# ----------------------------------------------------------------------------- real filesystem
def test_real_watch_sees_a_save_made_right_after_watch_returns(pm: PluginManager, make_plugin) -> None:
    path = make_plugin("fs", BODY)
    pm.load(str(path), start=True)
    p = pm.get("fs")
    pm.watch()
    try:
        write_plugin(path, path.read_text().replace('"v1"', '"v2"'))
        wait_for(lambda: p.version() == "v2", timeout=10)
        write_plugin(path, path.read_text().replace('return "v2"', 'return ("v2"'))  # broken save
        wait_for(lambda: "reload_failed" in reloads(pm), timeout=10)
        assert p.version() == "v2" and pm.status("fs") == "running"
        assert "previous version still running" in (pm.plugins["fs"].error or "")
        write_plugin(path, path.read_text().replace('return ("v2"', 'return "v3"'))
        wait_for(lambda: p.version() == "v3", timeout=10)
    finally:
        pm.unwatch()
    assert not pm.watching


def test_unwatch_stops_the_thread(pm: PluginManager, make_plugin, tmp_path: Path) -> None:
    pm.load(str(make_plugin("t", BODY)))
    w = pm.watch()
    assert pm.watching and pm.watched_paths == [str(tmp_path / "plugins")]
    pm.unwatch()
    assert not w.running and w._thread is not None and not w._thread.is_alive()


def test_plugins_loaded_after_watch_are_watched_too(pm: PluginManager, tmp_path: Path) -> None:
    pm.watch()
    assert pm.watched_paths == []
    path = write_plugin(tmp_path / "later" / "late.py", plugin_source("late", body=BODY))
    pm.load(str(path), start=True)
    assert pm.watched_paths == [str(tmp_path / "later")]
    p = pm.get("late")
    write_plugin(path, path.read_text().replace('"v1"', '"v2"'))
    wait_for(lambda: p.version() == "v2", timeout=10)
