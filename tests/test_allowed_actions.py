"""``protocol.ALLOWED_ACTIONS`` says exactly what a real manager accepts in each state.

Both UIs enable their buttons from that one table, so a wrong entry is a button that lies: an
enabled button the manager refuses, or a disabled one for an action that would have worked.
Each case below puts a real :class:`PluginManager` with a real plugin file into one lifecycle
state and runs one action: an allowed action must succeed, a forbidden one must be refused
(raise) and change nothing. ``rollback`` is in the table too: the plugin is reloaded once before
it is put into its state, so there is an earlier revision and only the state decides.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flx_ipy import FlxError, PluginManager
from flx_ipy.protocol import ALLOWED_ACTIONS, PLUGIN_ACTIONS, REVISION_ACTIONS, LifecycleName, allowed_actions
from flx_ipy.testing import plugin_source, write_plugin

#: every action the table may list: the plain buttons and rollback
ACTIONS = (*PLUGIN_ACTIONS, *REVISION_ACTIONS)

# start() fails the first time only, so "failed" is reachable and a retried start can succeed.
BODY = """
fail_next_start = FAIL
def start(self):
    if type(self).fail_next_start:
        type(self).fail_next_start = False
        raise RuntimeError("first start fails")
def stop(self):
    pass
"""


def _plugin(folder: Path, *, fail_first_start: bool = False) -> Path:
    header = f"\nFAIL = {fail_first_start!r}\n"
    return write_plugin(folder / "counter.py", plugin_source("counter", body=BODY, header=header))


def _into(pm: PluginManager, folder: Path, state: str) -> None:
    """Put plugin ``counter`` into ``state`` by the public API only."""
    if state == "discovered":
        _plugin(folder)
        pm.discover(folder)
        return
    path = _plugin(folder, fail_first_start=state == "failed")
    pm.load(str(path))
    pm.reload("counter", force=True)  # a second revision: a rollback has somewhere to go
    if state == "initialized":
        pm.initialize("counter")
    elif state in ("running", "stopped"):
        pm.start("counter")
        if state == "stopped":
            pm.stop("counter")
    elif state == "failed":
        with pytest.raises(FlxError):
            pm.start("counter")
    elif state == "unloaded":
        pm.unload("counter")


def _act(pm: PluginManager, action: str) -> Any:
    """Run an action as the UIs' buttons do; a reload that reports failure counts as refused."""
    fn: Callable[[str], Any] = getattr(pm, action)
    result = fn("counter")
    if action in ("reload", "rollback") and not result.ok:
        raise AssertionError(f"reload ran but failed: {result.error}")
    return result


def test_the_table_covers_every_lifecycle_state_and_only_plugin_actions() -> None:
    assert set(ALLOWED_ACTIONS) == set(typing.get_args(LifecycleName))
    for state, actions in ALLOWED_ACTIONS.items():
        assert set(actions) <= set(ACTIONS), state
        assert allowed_actions(state) == actions
    assert allowed_actions("failed") == ("start", "unload")  # a failed plugin is never reloaded
    assert allowed_actions("no-such-state") == ()
    assert allowed_actions(None) == ()


def test_allowed_actions_takes_the_enum_too() -> None:
    from flx_ipy import LifecycleState

    assert allowed_actions(LifecycleState.RUNNING) == ALLOWED_ACTIONS["running"]


@pytest.mark.parametrize(("state", "action"), [
    (s, a) for s in ALLOWED_ACTIONS if s != "reloading" for a in ACTIONS
])
def test_the_manager_accepts_exactly_what_the_table_allows(
        pm: PluginManager, tmp_path: Path, state: str, action: str) -> None:
    folder = tmp_path / "plugins"
    _into(pm, folder, state)
    assert pm.status("counter") == state
    if action in allowed_actions(state):
        _act(pm, action)  # raises if the manager refused
    else:
        with pytest.raises(FlxError):
            _act(pm, action)
        assert pm.status("counter") == state, "a refused action changed the state"
        if state not in ("discovered", "unloaded"):
            assert len(pm.history("counter")) == 2, "a refused action left a revision"


@pytest.mark.parametrize("action", ACTIONS)
def test_while_reloading_every_action_is_refused(pm: PluginManager, tmp_path: Path, action: str) -> None:
    """A UI sees ``reloading`` from the manager's "reloading" event; acting from there is refused."""
    assert allowed_actions("reloading") == ()
    path = _plugin(tmp_path / "plugins")
    pm.load(str(path), start=True)
    seen: list[tuple[str, BaseException | None]] = []

    def on_event(event: Any) -> None:
        if event.kind != "reloading":
            return
        state = str(pm.status("counter"))
        try:
            _act(pm, action)
        except FlxError as e:
            seen.append((state, e))
        else:
            seen.append((state, None))

    pm.subscribe(on_event)
    assert pm.reload("counter").ok
    assert len(seen) == 1
    state, refusal = seen[0]
    assert state == "reloading"
    assert refusal is not None, f"{action} was accepted while reloading"
    assert pm.status("counter") == "running"
