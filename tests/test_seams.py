"""The seams the next features plug into (``docs/architecture.md``, "Where features plug in").

* every hook call goes through ``pm.hooks`` (a ``HookRunner``): a worker runtime and metrics;
* every load, reload and retry runs ``pm.validator``: a signature check;
* every operation is an event: an audit log.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from flx_ipy import PluginManager, PluginValidationError
from flx_ipy.core.steps import HookCall, InProcess
from flx_ipy.core.validators import Problem
from flx_ipy.testing import plugin_source, write_plugin

BODY = """
    def start(self):
        self.n = getattr(self, "n", 0)
    def stop(self):
        pass
    def save_state(self):
        return {"n": self.n}
    def restore_state(self, state):
        self.n = state.runtime_data["n"]
    def health_check(self):  # its own: Plugin's default is answered without a call (health_rules)
        return self.n >= 0
    def tag(self):
        return "v1"
"""


class Recording:
    """A runner that delegates to the in-process one and records what passed through it."""

    def __init__(self, inner: InProcess) -> None:
        self.inner = inner
        self.calls: list[tuple[str, str]] = []

    def invoke(self, call: HookCall) -> Any:
        self.calls.append((call.plugin, call.hook))
        return self.inner.invoke(call)

    async def ainvoke(self, call: HookCall) -> Any:
        self.calls.append((call.plugin, call.hook))
        return await self.inner.ainvoke(call)


@pytest.fixture
def recording(pm: PluginManager) -> Recording:
    assert isinstance(pm.hooks, InProcess)
    runner = Recording(pm.hooks)
    pm.hooks = runner
    return runner


def test_every_hook_call_of_every_operation_goes_through_the_runner(
        pm: PluginManager, make_plugin, recording: Recording) -> None:  # type: ignore[no-untyped-def]
    path = make_plugin("counter", BODY)
    pm.load(str(path), start=True)
    write_plugin(path, plugin_source("counter", body=BODY.replace('"v1"', '"v2"')))
    assert pm.reload("counter").ok and pm.get("counter").tag() == "v2"
    pm.health("counter")
    pm.stop("counter")
    assert recording.calls == [("counter", h) for h in ("initialize", "start", "save_state", "stop", "restore_state",
                                                         "start", "health_check", "stop")]


def test_the_awaitable_twins_use_the_same_runner(pm: PluginManager, make_plugin,
                                                 recording: Recording) -> None:  # type: ignore[no-untyped-def]
    path = make_plugin("counter", BODY)

    async def go() -> None:
        await pm.aload(str(path), start=True)
        await pm.astop("counter")

    asyncio.run(go())
    assert recording.calls == [("counter", "initialize"), ("counter", "start"), ("counter", "stop")]


def test_a_check_added_to_the_pipeline_refuses_a_load_and_rolls_back_a_reload(
        pm: PluginManager, make_plugin) -> None:  # type: ignore[no-untyped-def]
    def no_v2(cls: type) -> list[Problem]:
        version = cls.metadata.version  # type: ignore[attr-defined]
        if version.startswith("2"):
            return [Problem("metadata.version", "2.x is not allowed here", fix="stay on 1.x")]
        return []

    pm.validator.add_check(no_v2)
    v2 = make_plugin("other", BODY, version="2.0.0")
    with pytest.raises(PluginValidationError, match=r"2\.x is not allowed"):
        pm.load(str(v2))
    assert "other" not in pm.plugins
    path = make_plugin("counter", BODY)
    pm.load(str(path), start=True)
    write_plugin(path, plugin_source("counter", "2.0.0", BODY.replace('"v1"', '"v2"')))
    res = pm.reload("counter")
    assert not res.ok and res.rolled_back and res.phase == "validate" and "2.x is not allowed" in (res.error or "")
    assert pm.get("counter").tag() == "v1" and pm.status("counter") == "running"


def test_every_operation_is_an_event_a_subscriber_sees(pm: PluginManager, make_plugin, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    seen: list[tuple[str, str | None]] = []
    pm.subscribe(lambda e: seen.append((e.kind, e.plugin)))
    path = make_plugin("counter", BODY)
    pm.load(str(path), start=True)
    pm.reload("counter")
    write_plugin(path, plugin_source("counter", body="def start(self):\n    raise ValueError('no')\n"))
    pm.reload("counter")
    pm.stop("counter")
    pm.unload("counter")
    kinds = [k for k, p in seen if p == "counter"]
    assert kinds == ["loaded", "initialized", "started", "reloading", "reloaded", "reloading",
                     "reload_failed", "stopped", "unloaded"], kinds
