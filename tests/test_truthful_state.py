"""What the manager keeps about a plugin stays true after things change (issue 11, core layer).

* An error does not outlive its fix: a save back to the running version clears a kept reload
  failure, through ``apply_changes``, the watcher and ``apply_pending`` alike.
* Health never contradicts the lifecycle: a state change replaces the cached health, so a
  stopped or failed plugin is never "healthy", and a plugin without ``health_check`` reads the
  same from ``record.health`` as from ``pm.health(name)``.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from flx_ipy import HealthStatus, PluginManager
from flx_ipy.core.recovery import REASON
from flx_ipy.testing import ScriptedChanges, write_plugin

BODY = """
    def start(self):
        self.count = getattr(self, "count", 0) + 1
    def health_check(self):
        return HealthStatus.healthy("all good")
"""


def kinds(pm: PluginManager) -> list[str]:
    return [e.kind for e in pm.events.history()]


def break_it(pm: PluginManager, path: Path) -> str:
    good = path.read_text()
    write_plugin(path, good + "\n    def oops(self:\n")
    [res] = pm.apply_changes([path])
    assert res.rolled_back and pm.plugins["greeter"].error
    return good


@pytest.fixture
def greeter(pm: PluginManager, make_plugin) -> Path:  # type: ignore[no-untyped-def]
    path = make_plugin("greeter", BODY)
    pm.load(str(path), start=True)
    return path


# ----------------------------------------------------------------------------- item 1
def test_saving_the_running_version_again_clears_the_kept_failure(pm: PluginManager, greeter: Path) -> None:
    good = break_it(pm, greeter)
    assert pm.plugins["greeter"].last_reload.ok is False
    count = pm.get("greeter").count
    write_plugin(greeter, good)  # undo + save: byte-identical to what runs
    [res] = pm.apply_changes([greeter])
    rec = pm.plugins["greeter"]
    assert res.ok and not res.changed and REASON in res.summary()
    assert rec.error is None and rec.error_detail is None and rec.failed_hashes == {}
    assert rec.last_reload is not None and rec.last_reload.ok
    assert pm.get("greeter").count == count  # nothing re-ran: no reload, no restart
    assert kinds(pm)[-1] == "error_cleared" and "reloaded" not in kinds(pm)[-2:]
    assert pm.events.history(1)[0].details["reason"] == REASON
    assert pm.pending_changes() == []
    # and a second identical save is silent again
    n = len(pm.events.history())
    assert pm.apply_changes([greeter]) == [] and len(pm.events.history()) == n


def test_a_save_that_is_still_broken_keeps_the_error(pm: PluginManager, greeter: Path) -> None:
    break_it(pm, greeter)
    broken = greeter.read_text()
    write_plugin(greeter, broken)
    assert pm.apply_changes([greeter]) == []
    assert pm.plugins["greeter"].error


def test_apply_pending_clears_it_too(pm: PluginManager, greeter: Path) -> None:
    good = break_it(pm, greeter)
    write_plugin(greeter, good)
    assert pm.pending_changes() == [str(greeter)]  # the clearing save is what is pending
    [res] = pm.apply_pending(timeout=2.0)
    assert res.ok and pm.plugins["greeter"].error is None
    assert pm.pending_changes() == []


def test_the_watcher_hands_over_a_save_back_to_the_running_version(pm: PluginManager, greeter: Path) -> None:
    src = ScriptedChanges()
    applied = threading.Event()
    results: list = []
    pm.watch(source=src, settle=0.0, broken_grace=0.0, on_applied=lambda res, t: (results.extend(res), applied.set()))
    try:
        good = greeter.read_text()
        write_plugin(greeter, good + "\n    def oops(self:\n")
        src.push(greeter)
        assert applied.wait(5)
        assert results[-1].rolled_back and pm.plugins["greeter"].error
        applied.clear()
        write_plugin(greeter, good)
        src.push(greeter)
        assert applied.wait(5)
        assert results[-1].ok and pm.plugins["greeter"].error is None
        assert kinds(pm)[-1] == "error_cleared"
    finally:
        pm.unwatch()


# ----------------------------------------------------------------------------- item 2
def test_stop_replaces_healthy_with_not_running(pm: PluginManager, greeter: Path) -> None:
    assert pm.health("greeter").status == "healthy"
    assert pm.plugins["greeter"].health.status == "healthy"
    pm.stop("greeter")
    cached = pm.plugins["greeter"].health
    assert cached is not None and cached.status == "unknown" and "not running" in cached.message
    assert cached == pm.health("greeter") or cached.message == pm.health("greeter").message


def test_a_failed_start_is_unhealthy_not_healthy(pm: PluginManager, make_plugin) -> None:  # type: ignore[no-untyped-def]
    path = make_plugin("flaky", """
        def start(self):
            if getattr(self, "boom", False):
                raise RuntimeError("no database")
        def health_check(self):
            return HealthStatus.healthy("fine")
    """)
    pm.load(str(path), start=True)
    assert pm.health("flaky").status == "healthy"
    pm.stop("flaky")
    pm.get("flaky").boom = True
    with pytest.raises(Exception, match="no database"):
        pm.start("flaky")
    rec = pm.plugins["flaky"]
    assert rec.status == "failed"
    assert rec.health is not None and rec.health.status == "unhealthy"


def test_start_forgets_the_health_of_the_previous_run(pm: PluginManager, greeter: Path) -> None:
    pm.get("greeter").health_check = lambda: HealthStatus.degraded("slow")  # this run only
    assert pm.health("greeter").status == "degraded"
    pm.stop("greeter")
    del pm.get("greeter").health_check
    pm.start("greeter")
    # not checked since it started: unknown until a check runs, never the old verdict
    assert pm.plugins["greeter"].health is None
    assert pm.health("greeter").status == "healthy"


def test_without_health_check_the_cache_reads_like_a_check(pm: PluginManager, make_plugin) -> None:  # type: ignore[no-untyped-def]
    path = make_plugin("plain", "x = 1")
    pm.load(str(path), start=True)
    cached = pm.plugins["plain"].health
    assert cached is not None
    checked = pm.health("plain")
    assert (cached.status, cached.message) == (checked.status, checked.message)
    pm.stop("plain")
    stopped = pm.plugins["plain"].health
    assert stopped is not None and stopped.status == "unknown"
    assert (stopped.status, stopped.message) == (pm.health("plain").status, pm.health("plain").message)
