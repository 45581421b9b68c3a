"""The manager's lifecycle contract, on real files, in plain Python."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flx_ipy import (
    DependencyError,
    HealthStatus,
    HookError,
    InvalidStateError,
    LifecycleState,
    PluginLoadError,
    PluginManager,
    PluginNotFoundError,
    PluginState,
    PluginValidationError,
)
from flx_ipy.testing import plugin_source, write_plugin


def kinds(pm: PluginManager, plugin: str | None = None) -> list[str]:
    return [e.kind for e in pm.events.history() if plugin is None or e.plugin == plugin]


def test_core_never_imports_ipython_widgets_or_comm() -> None:
    code = ("import sys, flx_ipy, flx_ipy.core, flx_ipy.testing; "
            "from flx_ipy.core import watcher, transaction, discovery, validators; "
            "bad = [m for m in ('IPython', 'ipywidgets', 'comm', 'ipykernel') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_full_lifecycle_with_events(pm: PluginManager, make_plugin) -> None:
    path = make_plugin("counter", """
        def start(self):
            self.started = True
        def stop(self):
            self.started = False
    """)
    rec = pm.load(str(path))
    assert rec.status == "loaded" and rec.name == "counter" and rec.metadata.version == "1.0.0"
    pm.start("counter")
    assert pm.status("counter") == LifecycleState.RUNNING == "running"
    assert pm.get("counter").started is True
    pm.stop("counter")
    assert pm.status("counter") == "stopped" and pm.get("counter").started is False
    pm.start("counter")
    pm.unload("counter")
    assert "counter" not in pm.plugins
    assert kinds(pm, "counter") == ["loaded", "initialized", "started", "stopped", "started",
                                    "stopped", "unloaded"]
    assert rec.module.__name__ not in sys.modules


def test_load_with_start_and_module_colon_class_target(pm: PluginManager, make_plugin) -> None:
    path = make_plugin("alpha", cls="Alpha")
    rec = pm.load(f"{path}:Alpha", start=True)
    assert rec.status == "running" and type(pm.get("alpha")).__name__ == "Alpha"


def test_two_plugin_py_in_different_folders_do_not_collide(pm: PluginManager, tmp_path: Path) -> None:
    a = write_plugin(tmp_path / "a" / "plugin.py", plugin_source("first", body="def who(self): return 'a'"))
    b = write_plugin(tmp_path / "b" / "plugin.py", plugin_source("second", body="def who(self): return 'b'"))
    pm.load(str(a))
    pm.load(str(b))
    assert pm.get("first").who() == "a" and pm.get("second").who() == "b"
    assert pm.plugins["first"].module is not pm.plugins["second"].module


def test_same_second_same_size_save_runs_new_code(pm: PluginManager, make_plugin, monkeypatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # this machine may hide the bug
    path = make_plugin("clock", "def tick(self): return 'AAAA'")
    pm.load(str(path))
    st = path.stat()
    write_plugin(path, path.read_text().replace("AAAA", "BBBB"), atomic=False)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime, same size: a stale .pyc would win
    assert path.stat().st_size == st.st_size
    assert pm.reload("clock").ok
    assert pm.get("clock").tick() == "BBBB"


def test_broken_plugin_reported_while_others_load(pm: PluginManager, plugin_dir: Path, make_plugin) -> None:
    make_plugin("good")
    (plugin_dir / "broken.py").write_text(plugin_source("broken", header="import does_not_exist_xyz"))
    found = {m.name for m in pm.discover(plugin_dir)}
    assert "good" in found
    loaded, errors = [], []
    for cand in pm.candidates:
        try:
            loaded.append(pm.load(cand.target).name)
        except PluginLoadError as e:
            errors.append(str(e))
    assert loaded == ["good"]
    assert any("does_not_exist_xyz" in e and "broken" in e for e in errors), errors
    assert pm.status("good") == "loaded"


def test_rediscovery_is_idempotent(pm: PluginManager, plugin_dir: Path, make_plugin) -> None:
    make_plugin("one")
    make_plugin("two")
    first = pm.discover(plugin_dir)
    assert pm.discover(plugin_dir) == first
    assert pm.discover(plugin_dir, rescan=True) == first
    assert [e.plugin for e in pm.events.history() if e.kind == "discovered"].count("one") == 1


def test_failed_registration_leaves_no_trace(pm: PluginManager, plugin_dir: Path) -> None:
    path = plugin_dir / "bad_meta.py"
    path.write_text(textwrap.dedent("""
        from flx_ipy import Plugin, PluginMetadata
        class Bad(Plugin):
            metadata = PluginMetadata(name="bad", version="not a version")
    """))
    before = set(sys.modules)
    with pytest.raises(PluginLoadError, match="not a PEP 440 version"):
        pm.load(str(path))
    assert set(sys.modules) - before == set()
    assert "bad" not in pm.plugins


def test_invalid_hook_signature_is_refused_with_all_problems(pm: PluginManager, make_plugin) -> None:
    path = make_plugin("sig", """
        def start(self, extra):
            pass
        def stop(self, a, b):
            pass
    """)
    with pytest.raises(PluginValidationError) as info:
        pm.load(str(path))
    text = str(info.value)
    assert "start" in text and "stop" in text
    assert "sig" not in pm.plugins


def test_starting_running_or_reloading_failed_is_refused_cleanly(pm: PluginManager, make_plugin) -> None:
    pm.load(str(make_plugin("svc")), start=True)
    with pytest.raises(InvalidStateError, match="already running"):
        pm.start("svc")
    assert pm.status("svc") == "running"
    boom = make_plugin("boom", "def start(self): raise RuntimeError('no database')")
    pm.load(str(boom))
    with pytest.raises(HookError, match="no database"):
        pm.start("boom")
    rec = pm.plugins["boom"]
    assert rec.status == "failed" and "no database" in rec.error
    assert f"{boom}:" in (rec.error_detail or "") or str(boom) in (rec.error_detail or "")
    with pytest.raises(InvalidStateError, match="failed"):
        pm.reload("boom")
    assert pm.status("boom") == "failed"
    with pytest.raises(PluginNotFoundError, match="nope"):
        pm.start("nope")


def test_failed_start_releases_what_the_plugin_registered(pm: PluginManager, make_plugin) -> None:
    released: list[str] = []
    path = make_plugin("leaky", """
        def start(self):
            self.ctx.register(lambda: RELEASED.append("socket"), "socket")
            raise RuntimeError("port in use")
    """, header="RELEASED = []")
    pm.load(str(path))
    mod = pm.plugins["leaky"].module
    mod.RELEASED = released
    with pytest.raises(HookError):
        pm.start("leaky")
    assert released == ["socket"]
    assert pm.plugins["leaky"].context.pending_cleanups == 0


def test_stop_runs_every_cleanup_even_if_one_raises(pm: PluginManager, make_plugin) -> None:
    path = make_plugin("multi", """
        def start(self):
            self.log = []
            self.ctx.register(lambda: self.log.append("first"), "first")
            self.ctx.register(self._explode, "explodes")
            self.ctx.register(lambda: self.log.append("last"), "last")
        def _explode(self):
            raise OSError("disk gone")
        def stop(self):
            raise RuntimeError("stop broke")
    """)
    pm.load(str(path), start=True)
    p = pm.get("multi")
    pm.stop("multi")
    assert p.log == ["last", "first"]  # newest first, none skipped
    rec = pm.plugins["multi"]
    assert rec.status == "stopped"
    assert "stop broke" in rec.error and "disk gone" in rec.error


def test_dependencies_start_first_and_stop_last(pm: PluginManager, make_plugin) -> None:
    order: list[str] = []
    header = "import builtins\n"
    body = """
        def start(self):
            builtins.FLX_ORDER.append(("start", self.metadata.name))
        def stop(self):
            builtins.FLX_ORDER.append(("stop", self.metadata.name))
    """
    import builtins

    builtins.FLX_ORDER = order  # type: ignore[attr-defined]
    try:
        pm.load(str(make_plugin("clock", body, header=header, version="1.2.0")))
        pm.load(str(make_plugin("timer", body, header=header, requires=("clock>=1.0",), cls="Timer")))
        pm.load(str(make_plugin("alarm", body, header=header, requires=("timer",), cls="Alarm")))
        pm.start("alarm")
        assert order == [("start", "clock"), ("start", "timer"), ("start", "alarm")]
        assert pm.get("alarm").ctx.deps == {"timer": pm.get("timer")}
        order.clear()
        pm.stop("clock")
        assert order == [("stop", "alarm"), ("stop", "timer"), ("stop", "clock")]
    finally:
        del builtins.FLX_ORDER  # type: ignore[attr-defined]


def test_missing_wrong_version_and_cyclic_dependencies(pm: PluginManager, make_plugin) -> None:
    pm.load(str(make_plugin("needy", requires=("db>=2.0",))))
    with pytest.raises(DependencyError, match=r"needy requires db>=2.0, which is not loaded"):
        pm.start("needy")
    pm.load(str(make_plugin("db", version="1.5.0", cls="Db")))
    with pytest.raises(DependencyError, match=r"needy requires db>=2.0, but db 1.5.0 is loaded"):
        pm.start("needy")
    assert pm.status("needy") == "loaded" and pm.status("db") == "loaded"
    pm.load(str(make_plugin("ping", requires=("pong",), cls="Ping")))
    pm.load(str(make_plugin("pong", requires=("ping",), cls="Pong")))
    with pytest.raises(DependencyError, match=r"cycle: ping -> pong -> ping"):
        pm.start("ping")


def test_async_hooks_from_sync_api_plain_and_inside_a_running_loop(pm: PluginManager, make_plugin) -> None:
    path = make_plugin("aio", """
        async def start(self):
            await asyncio.sleep(0)
            self.loop_id = id(asyncio.get_running_loop())
        async def stop(self):
            await asyncio.sleep(0)
            self.stopped = True
        async def health_check(self):
            return HealthStatus.degraded("slow disk")
    """, header="import asyncio")
    pm.load(str(path), start=True)
    assert pm.status("aio") == "running" and pm.get("aio").loop_id
    assert pm.health("aio") == HealthStatus.degraded("slow disk") or pm.health("aio").status == "degraded"

    async def inside_loop() -> int:
        pm.stop("aio")  # sync form while a loop runs in this thread: must not deadlock
        assert pm.get("aio").stopped
        await pm.astart("aio")  # awaitable twin: hooks run on this loop
        assert pm.get("aio").loop_id == id(asyncio.get_running_loop())
        await pm.astop("aio")
        return 1

    assert asyncio.run(inside_loop()) == 1
    assert pm.status("aio") == "stopped"


def test_async_hook_timeout_is_a_clear_error(tmp_path: Path, make_plugin) -> None:
    pm = PluginManager(entry_points=False, hook_timeout=0.05)
    try:
        pm.load(str(make_plugin("slowpoke", "async def start(self):\n    await asyncio.sleep(30)",
                                header="import asyncio")))
        with pytest.raises(HookError, match=r"did not finish within 0\.05 s"):
            pm.start("slowpoke")
        assert pm.status("slowpoke") == "failed"
    finally:
        pm.close()


def test_health_raising_hanging_and_all_at_once(pm: PluginManager, make_plugin) -> None:
    pm.load(str(make_plugin("ok", "def health_check(self): return HealthStatus.healthy('fine')")), start=True)
    pm.load(str(make_plugin("raises", "def health_check(self): raise ValueError('sensor offline')",
                            cls="R")), start=True)
    pm.load(str(make_plugin("hangs", "def health_check(self):\n    threading.Event().wait(30)",
                            header="import threading", cls="H")), start=True)
    pm.load(str(make_plugin("idle", cls="I")))
    pm.health_timeout = 0.1
    result = pm.health()
    assert set(result) == {"ok", "raises", "hangs", "idle"}
    assert result["ok"] == "healthy" or result["ok"].status == "healthy"
    assert result["raises"].status == "unhealthy" and "sensor offline" in result["raises"].message
    assert result["hangs"].status == "unhealthy" and "timed out" in result["hangs"].message
    assert result["idle"].status == "unknown"
    assert "health_changed" in kinds(pm, "raises")


def test_health_status_and_states_compare_equal_to_strings() -> None:
    assert HealthStatus.healthy("x").status == "healthy"
    assert HealthStatus("degraded", "y").status == "degraded"
    assert LifecycleState.FAILED == "failed" and f"{LifecycleState.RUNNING}" == "running"
    with pytest.raises(ValueError, match="must be one of"):
        HealthStatus("fine")


def test_plugin_state_json_and_msgpack_round_trip() -> None:
    st = PluginState("counter", "1.0.0", {"limit": 3}, {"count": 7, "names": ["a", "b"]})
    assert PluginState.from_json(st.to_json()) == st
    assert PluginState.from_msgpack(st.to_msgpack()) == st
    with pytest.raises(ValueError, match="missing version"):
        PluginState.from_dict({"plugin_id": "x"})


def test_context_gives_config_logger_and_data_dir(tmp_path: Path, make_plugin) -> None:
    pm = PluginManager(entry_points=False, config={"cfg": {"limit": 5}}, data_root=tmp_path / "d")
    try:
        pm.load(str(make_plugin("cfg", """
            def start(self):
                (self.ctx.data_dir / "state.txt").write_text(str(self.ctx.config["limit"]))
                self.ctx.logger.info("started")
        """)), start=True)
        assert (tmp_path / "d" / "cfg" / "state.txt").read_text() == "5"
        assert pm.get("cfg").ctx.logger.name == "flx_ipy.plugins.cfg"
    finally:
        pm.close()


def test_failing_subscriber_never_breaks_the_manager(pm: PluginManager, make_plugin, caplog) -> None:
    seen: list[str] = []

    def bad(ev) -> None:  # type: ignore[no-untyped-def]
        raise RuntimeError("ui crashed")

    pm.subscribe(bad)
    pm.subscribe(lambda ev: seen.append(ev.kind))
    pm.load(str(make_plugin("robust")), start=True)
    assert pm.status("robust") == "running"
    assert seen[:3] == ["loaded", "initialized", "started"]
    assert pm.events.subscriber_errors >= 3


def test_late_subscriber_replays_history_and_subscriber_may_call_manager(pm: PluginManager, make_plugin) -> None:
    pm.load(str(make_plugin("early")), start=True)
    replayed: list[str] = []
    unsubscribe = pm.subscribe(lambda ev: replayed.append(ev.kind), replay=True)
    assert replayed == ["loaded", "initialized", "started"]
    unsubscribe()
    statuses: list[str] = []
    pm.subscribe(lambda ev: statuses.append(str(pm.status(ev.plugin))) if ev.kind == "stopped" else None)
    pm.stop("early")
    assert statuses == ["stopped"]


def test_unknown_target_is_a_clear_error(pm: PluginManager, tmp_path: Path) -> None:
    with pytest.raises(PluginNotFoundError, match="no such file"):
        pm.load(str(tmp_path / "missing.py"))
    with pytest.raises(PluginNotFoundError, match="not a known plugin"):
        pm.load("no_such_plugin_anywhere")


def test_package_plugin_with_relative_helper(pm: PluginManager, plugin_dir: Path) -> None:
    pkg = plugin_dir / "greeter_pkg"
    pkg.mkdir()
    (pkg / "helpers.py").write_text("def greet(n):\n    return f'hello {n}'\n")
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        from flx_ipy import Plugin, PluginMetadata
        from .helpers import greet
        class Greeter(Plugin):
            metadata = PluginMetadata(name="greeter", version="1.0.0")
            def hello(self):
                return greet("world")
    """))
    pm.load(str(pkg), start=True)
    assert pm.get("greeter").hello() == "hello world"
    pm.unload("greeter")
    assert "greeter_pkg" not in sys.modules and "greeter_pkg.helpers" not in sys.modules


def test_every_operation_has_an_awaitable_twin(pm: PluginManager, plugin_dir: Path, make_plugin) -> None:
    path = make_plugin("twin", "def v(self): return 1")

    async def scenario() -> list[str]:
        found = await pm.adiscover(plugin_dir)
        assert [m.name for m in found] == ["twin"]
        await pm.aload("twin", start=True)  # a discovered name
        write_plugin(path, path.read_text().replace("return 1", "return 2"))
        results = await pm.aapply_pending(timeout=2)
        await pm.awatch()
        assert pm.watching
        await pm.aunwatch()
        health = await pm.ahealth("twin")
        await pm.astop("twin")
        await pm.aunload("twin")
        return [str(health.status), *(str(r.ok) for r in results)]

    assert asyncio.run(scenario()) == ["healthy", "True"]
    assert "twin" not in pm.plugins


def test_metadata_lists_compare_as_written() -> None:
    from flx_ipy import PluginMetadata

    md = PluginMetadata(name="alarm", version="1.0.0", requires=["clock>=1.0"], capabilities=["ring"])
    assert md.requires == ["clock>=1.0"] and md.capabilities == ["ring"]
    assert hash(md) == hash(PluginMetadata(name="alarm", version="1.0.0", requires=["clock>=1.0"],
                                           capabilities=["ring"]))


def test_status_covers_discovered_and_unloaded(pm: PluginManager, plugin_dir: Path, make_plugin) -> None:
    make_plugin("listed")
    pm.discover(plugin_dir)
    assert pm.status("listed") == "discovered" and "listed" not in pm.plugins
    pm.load("listed", start=True)
    assert pm.status("listed") == "running"
    pm.unload("listed")
    assert pm.status("listed") == "unloaded" and "listed" not in pm.plugins
    with pytest.raises(PluginNotFoundError):
        pm.get("listed")
    pm.load("listed")
    assert pm.status("listed") == "loaded"
    with pytest.raises(PluginNotFoundError, match="never_heard_of"):
        pm.status("never_heard_of")
