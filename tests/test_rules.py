"""Rules that used to be written two or three times, now once each (issue 9).

* "this save is ready": ``settle.Settler`` for the watcher and ``settle.Settle`` for
  ``apply_pending`` (``%plugin sync``) give one answer to the same broken save;
* "this save changed nothing": ``PluginRecord.is_news``, asked by the watcher's filter, by
  ``pending_changes`` and by ``apply_changes``;
* a failed plugin's retry is a transaction like a reload: a broken retry leaves no half-run code.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flx_ipy import PluginManager
from flx_ipy.core.files import norm
from flx_ipy.core.settle import BROKEN_GRACE, Settle, Settler
from flx_ipy.testing import ManualClock, ScriptedChanges, plugin_source, wait_for, write_plugin


def waited(settle: Settle, clock: ManualClock) -> float:
    """Drive ``settle`` on a manual clock; the total pause it asked for."""
    start = clock.now
    for pause in settle.pauses():
        clock.advance(pause)
    return clock.now - start


# ------------------------------------------------------------------------- one settle rule
def test_a_broken_save_settles_after_the_grace_not_the_timeout() -> None:
    clock = ManualClock()
    contents = {"p.py": b"def f(:\n"}
    total = waited(Settle(["p.py"], settle=0.02, broken_grace=0.3, timeout=5.0, clock=clock,
                          read=contents.get), clock)
    assert 0.3 <= total < 0.35  # before: the whole 5 s timeout


def test_a_good_save_settles_after_the_settle_window() -> None:
    clock = ManualClock()
    total = waited(Settle(["p.py"], settle=0.02, timeout=5.0, clock=clock, read={"p.py": b"x = 1\n"}.get), clock)
    assert 0.02 <= total < 0.03


def test_a_file_still_being_written_waits_until_stable_then_is_ready() -> None:
    clock = ManualClock()
    writes = iter([b"x = 1\n", b"x = 12\n", b"x = 123\n"])
    current = {"p.py": next(writes)}

    def read(p: str) -> bytes | None:
        data = current[p]
        nxt = next(writes, None)  # the editor writes again each time we look, twice
        if nxt is not None:
            current[p] = nxt
        return data

    total = waited(Settle(["p.py"], settle=0.02, timeout=5.0, clock=clock, read=read), clock)
    assert current["p.py"] == b"x = 123\n" and 0.04 <= total < 0.1


def test_the_watcher_settler_and_apply_pending_agree_on_a_broken_save() -> None:
    contents = {"p.py": b""}
    clock = ManualClock(0.0)
    pending_wait = waited(Settle(["p.py"], settle=0.01, broken_grace=BROKEN_GRACE, clock=clock,
                                 read=contents.get), clock)
    watcher = Settler(settle=0.01, broken_grace=BROKEN_GRACE, read=contents.get)
    watcher.changed(["p.py"], now=0.0)
    ready_at = next(t / 1000 for t in range(0, 6000) if watcher.ready(t / 1000))
    assert abs(ready_at - pending_wait) < 0.002


def test_no_pending_files_means_no_wait() -> None:
    assert list(Settle([]).pauses()) == []


# ------------------------------------------------------------------------- one "no change" rule
@pytest.fixture
def counter(pm: PluginManager, make_plugin) -> Path:  # type: ignore[no-untyped-def]
    path = make_plugin("counter", "def tag(self):\n    return 'v1'\n")
    pm.load(str(path), start=True)
    return path


def test_a_save_is_news_only_when_it_differs_from_what_runs_and_from_what_failed(
        pm: PluginManager, counter: Path) -> None:
    p = norm(counter)
    write_plugin(counter, counter.read_bytes())  # saved, unchanged
    assert pm.registry.news([p]) == [] and pm.pending_changes() == [] and pm.apply_changes([counter]) == []
    broken = plugin_source("counter", body="def tag(self):\n    return ('v2'\n")
    write_plugin(counter, broken)
    assert pm.registry.news([p]) == [p] and pm.pending_changes() == [p]
    assert [r.rolled_back for r in pm.apply_changes([counter])] == [True]
    write_plugin(counter, broken)  # the same broken bytes again: not news anywhere
    assert pm.registry.news([p]) == [] and pm.pending_changes() == [] and pm.apply_changes([counter]) == []


def test_the_watcher_drops_a_repeated_broken_save_by_the_same_rule(pm: PluginManager, counter: Path) -> None:
    src = ScriptedChanges()
    results: list[list[object]] = []
    w = pm.watch(source=src, settle=0.0, broken_grace=0.0, on_applied=lambda res, t: results.append(res))
    broken = plugin_source("counter", body="def tag(self):\n    return ('v2'\n")
    write_plugin(counter, broken)
    src.push(counter)
    wait_for(lambda: w.applied == 1, timeout=10)
    write_plugin(counter, broken)
    src.push(counter)
    src.tick()
    src.wait_consumed(timeout=10)  # the watcher looked at both and asks for more
    assert w.applied == 1 and [len(r) for r in results] == [1]  # the repeat reached no one
    assert pm.get("counter").tag() == "v1"


# ------------------------------------------------------------------------- retry = transaction
def test_a_broken_retry_of_a_failed_plugin_rolls_its_code_back(pm: PluginManager, make_plugin) -> None:
    path = make_plugin("fragile", "def start(self):\n    raise RuntimeError('typo')\ndef tag(self):\n    return 'v1'\n",
                       header="HELPER = 'old'\n")
    rec = pm.load(str(path))
    with pytest.raises(Exception, match="typo"):
        pm.start("fragile")
    cls, module = rec.cls, rec.module
    assert cls is not None and module is not None
    # the new version runs part of its module, then fails while importing
    write_plugin(path, plugin_source("fragile", body="def start(self):\n    pass\ndef tag(self):\n    return 'v2'\n",
                                     header="HELPER = 'new'\nADDED = 1\n") + "raise ImportError('half-run')\n")
    [res] = pm.apply_changes([path])
    assert not res.ok and res.phase == "retry" and "half-run" in (res.error or "")
    assert pm.status("fragile") == "failed"
    assert module.HELPER == "old" and not hasattr(module, "ADDED")  # nothing of the broken version stayed
    assert rec.cls is cls and pm.get("fragile").tag() == "v1"
    write_plugin(path, plugin_source("fragile", body="def start(self):\n    pass\ndef tag(self):\n    return 'v3'\n",
                                     header="HELPER = 'fixed'\n"))
    [res] = pm.apply_changes([path])
    assert res.ok and pm.status("fragile") == "running" and pm.get("fragile").tag() == "v3"
