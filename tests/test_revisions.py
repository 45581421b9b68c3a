"""Revisions, rollback, the health gate and migrate_state: real files, real reloads."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from flx_ipy import FlxError, PluginManager
from flx_ipy.testing import plugin_source, write_plugin

BODY = """
    def start(self):
        self.count = getattr(self, "count", 0)
    def inc(self):
        self.count += 1
        return "{tag}"
"""


def write(path: Path, tag: str, version: str = "1.0.0", extra: str = "") -> None:
    write_plugin(path, plugin_source("counter", version, BODY.replace("{tag}", tag) + extra))


@pytest.fixture
def counter(pm: PluginManager, plugin_dir: Path) -> Path:
    path = plugin_dir / "counter.py"
    write(path, "v1")
    pm.load(str(path), start=True)
    return path


def test_every_load_and_reload_is_a_revision_with_its_code(pm: PluginManager, counter: Path) -> None:
    write(counter, "v2", "1.1.0")
    assert pm.reload("counter").ok
    revs = pm.history("counter")
    assert [(r.revision, r.reason, r.version) for r in revs] == [(1, "load", "1.0.0"), (2, "reload", "1.1.0")]
    assert revs[1].code_sha256 == hashlib.sha256(counter.read_bytes()).hexdigest()
    assert revs[0].code_sha256 != revs[1].code_sha256
    assert revs[0]["reason"] == "load" and revs[0].to_dict()["time_iso"].endswith("Z")
    assert revs[0].time <= revs[1].time
    assert b'"v1"' in next(iter(revs[0].code.values()))
    assert [e.details.get("revision") for e in pm.events.history(kinds=["loaded", "reloaded"])] == [1, 2]


def test_rollback_runs_old_code_keeps_state_and_leaves_files_alone(pm: PluginManager, counter: Path) -> None:
    p = pm.get("counter")
    write(counter, "v2", "1.1.0")
    pm.reload("counter")
    assert p.inc() == "v2" and p.inc() == "v2"
    on_disk = counter.read_bytes()
    res = pm.rollback("counter")
    assert res.ok and not res.rolled_back
    assert p.inc() == "v1" and p.count == 3  # old code, today's state, same object
    assert pm.plugins["counter"].version == "1.0.0"
    assert counter.read_bytes() == on_disk
    last = pm.history("counter")[-1]
    assert (last.revision, last.reason, last.rollback_of, last.version) == (3, "rollback", 1, "1.0.0")
    ev = pm.events.history(kinds=["reloaded"])[-1]  # what an audit log or a UI sees
    assert (ev.details["reason"], ev.details["revision"], ev.details["rollback_of"]) == ("rollback", 3, 1)
    assert ev.details["code_sha256"] == last.code_sha256
    # the next save of the file reloads from disk as usual
    write(counter, "v3", "1.2.0")
    assert pm.apply_changes([counter])[0].ok and p.inc() == "v3"


def test_rollback_to_a_named_revision_and_after_the_file_is_gone(pm: PluginManager, counter: Path) -> None:
    for i in (2, 3):
        write(counter, f"v{i}", f"1.{i}.0")
        pm.reload("counter")
    counter.unlink()  # the kept code runs without the file
    res = pm.rollback("counter", to=2)
    assert res.ok and pm.get("counter").inc() == "v2"
    assert pm.history("counter")[-1].rollback_of == 2


def test_rollback_to_unknown_revision_raises_and_changes_nothing(pm: PluginManager, counter: Path) -> None:
    n_events = len(pm.events.history())
    with pytest.raises(FlxError, match="no revision 7 is kept"):
        pm.rollback("counter", to=7)
    with pytest.raises(FlxError, match="no earlier revision"):
        pm.rollback("counter")
    # the refusals are audited (``operation_failed`` events), and nothing else happened
    changes = [e for e in pm.events.history() if e.kind != "operation_failed"]
    assert len(pm.history("counter")) == 1 and len(changes) == n_events
    assert [e.details["operation"] for e in pm.events.history()[n_events:]] == ["rollback", "rollback"]
    assert pm.status("counter") == "running" and pm.get("counter").inc() == "v1"


def test_history_is_bounded_and_numbering_goes_on(plugin_dir: Path, tmp_path: Path) -> None:
    pm = PluginManager(entry_points=False, revisions_kept=10)
    try:
        path = plugin_dir / "counter.py"
        write(path, "v0")
        pm.load(str(path), start=True)
        for i in range(1, 15):
            write(path, f"v{i}")
            assert pm.reload("counter").ok
        revs = pm.history("counter")
        assert len(revs) == 10 and [r.revision for r in revs] == list(range(6, 16))
        with pytest.raises(FlxError, match="kept: 6, 7"):
            pm.rollback("counter", to=2)
    finally:
        pm.close()


def test_history_errors_are_clear(pm: PluginManager) -> None:
    with pytest.raises(FlxError, match="never loaded"):
        pm.history("nope")
    with pytest.raises(TypeError, match=r"pm\.events\.history"):
        pm.history(5)  # type: ignore[arg-type]


def test_failed_rollback_keeps_current_code(pm: PluginManager, plugin_dir: Path) -> None:
    path = plugin_dir / "counter.py"
    write(path, "v1", extra="""
    def start(self):
        self.count = getattr(self, "count", 0)
        if self.count > 1:
            raise RuntimeError("v1 cannot count past 1")
""")
    pm.load(str(path), start=True)
    write(path, "v2", "1.1.0")
    pm.reload("counter")
    p = pm.get("counter")
    p.inc()
    p.inc()
    res = pm.rollback("counter", to=1)
    assert not res.ok and res.rolled_back and res.phase == "start" and "past 1" in res.error
    assert p.inc() == "v2" and p.count == 3 and pm.status("counter") == "running"
    assert [r.reason for r in pm.history("counter")] == ["load", "reload"]  # a failed rollback is no revision
    assert pm.plugins["counter"].failed_hashes == {}  # a later save of those bytes is not skipped


def test_migrate_state_is_offered_on_a_version_change(pm: PluginManager, plugin_dir: Path) -> None:
    path = plugin_dir / "counter.py"
    v1 = BODY.replace("{tag}", "v1") + """
    def save_state(self):
        return {"n": self.count}
    def restore_state(self, state):
        self.count = state.runtime_data["n"]
        self.restored_from = state.version
    def migrate_state(self, state, from_version):
        return {"n": state.runtime_data["total"]}
"""
    v2 = BODY.replace("{tag}", "v2") + """
    def save_state(self):
        return {"total": self.count}
    def restore_state(self, state):
        self.count = state.runtime_data["total"]
    def migrate_state(self, state, from_version):
        self.migrated_from = from_version
        return {"total": state.runtime_data["n"]}
"""
    write_plugin(path, plugin_source("counter", "1.0.0", v1))
    pm.load(str(path), start=True)
    p = pm.get("counter")
    p.inc()
    p.inc()
    write_plugin(path, plugin_source("counter", "2.0.0", v2))
    assert pm.reload("counter").ok
    assert p.count == 2 and p.migrated_from == "1.0.0"
    p.inc()
    res = pm.rollback("counter")  # downgrade: 1.0.0's migrate_state maps 2.0.0's shape back
    assert res.ok, res.error
    assert p.count == 3 and p.inc() == "v1" and p.restored_from == "1.0.0"


def test_migrate_state_failure_rolls_back(pm: PluginManager, plugin_dir: Path) -> None:
    path = plugin_dir / "counter.py"
    write(path, "v1", extra="""
    def save_state(self):
        return {"n": self.count}
    def restore_state(self, state):
        self.count = state.runtime_data["n"]
""")
    pm.load(str(path), start=True)
    write(path, "v2", "2.0.0", extra="""
    def save_state(self):
        return {"n": self.count}
    def restore_state(self, state):
        self.count = state.runtime_data["n"]
    def migrate_state(self, state, from_version):
        raise ValueError("cannot read " + from_version)
""")
    res = pm.reload("counter")
    assert not res.ok and res.rolled_back and res.phase == "migrate_state" and "cannot read 1.0.0" in res.error
    assert pm.get("counter").inc() == "v1"


HEALTH = """
    def health_check(self):
        from flx_ipy import HealthStatus
        return HealthStatus.{h}("{h} now")
"""


def test_health_gate_rolls_back_an_unhealthy_reload(plugin_dir: Path, tmp_path: Path) -> None:
    pm = PluginManager(entry_points=False, health_gate=True, health_timeout=2.0)
    log = tmp_path / "stops.txt"
    stop = f"""
    def stop(self):
        with open({str(log)!r}, "a") as fh:
            fh.write("{{tag}}\\n")
"""
    try:
        path = plugin_dir / "counter.py"
        write(path, "v1", extra=HEALTH.format(h="healthy") + stop.replace("{tag}", "v1"))
        pm.load(str(path), start=True)
        write(path, "v2", "1.1.0", extra=HEALTH.format(h="unhealthy") + stop.replace("{tag}", "v2"))
        res = pm.reload("counter")
        assert not res.ok and res.rolled_back and res.phase == "health_check"
        assert "health check failed" in res.error and "unhealthy now" in res.error
        assert pm.status("counter") == "running" and pm.get("counter").inc() == "v1"
        assert log.read_text().split() == ["v1", "v2"]  # old stopped for the swap, new stopped by the gate
        assert pm.health("counter").status == "healthy"
        assert len(pm.history("counter")) == 1
        write(path, "v3", "1.2.0", extra=HEALTH.format(h="degraded"))
        assert pm.reload("counter").ok  # degraded is not unhealthy
    finally:
        pm.close()


def test_without_health_gate_an_unhealthy_reload_stays(pm: PluginManager, plugin_dir: Path) -> None:
    path = plugin_dir / "counter.py"
    write(path, "v1", extra=HEALTH.format(h="healthy"))
    pm.load(str(path), start=True)
    write(path, "v2", extra=HEALTH.format(h="unhealthy"))
    assert pm.reload("counter").ok and pm.health("counter").status == "unhealthy"


def test_metrics_count_hooks_and_reloads(pm: PluginManager, counter: Path) -> None:
    write(counter, "v2", extra=HEALTH.format(h="healthy"))
    pm.reload("counter")
    pm.health("counter")
    write(counter, "v3", extra="""
    def start(self):
        raise RuntimeError("boom")
""")
    assert not pm.reload("counter").ok
    m = pm.metrics()["counter"]
    hooks = m["hooks"]
    assert hooks["start"]["count"] == 4  # load start, v2 start, v3 start (raised), v2 restart
    assert hooks["start"]["errors"] == 1
    assert hooks["health_check"]["count"] == 1 and hooks["health_check"]["max"] > 0
    assert hooks["start"]["buckets"][-1] == ("+Inf", 4) and len(hooks["start"]["buckets"]) == 7
    r = m["reloads"]
    assert (r["count"], r["ok"], r["rolled_back"], r["failed"]) == (2, 1, 1, 0)
    assert r["max_duration"] >= r["mean_duration"] > 0
    assert m["slowest_hook"] in hooks


def test_revisions_and_metrics_import_no_framework(tmp_path: Path) -> None:
    """The operations side of the core stays a plain library: no HTTP framework, IPython or
    Jupyter server is imported by revisions, rollback or metrics (checked in a fresh process)."""
    import subprocess
    import sys

    code = (
        "import sys, flx_ipy\n"
        "from flx_ipy import PluginManager\n"
        "import flx_ipy.snapshot, flx_ipy.loopwatch\n"
        "pm = PluginManager(entry_points=False, health_gate=True)\n"
        "pm.metrics(); flx_ipy.snapshot.kernel_snapshot()\n"
        "bad = [m for m in ('starlette', 'uvicorn', 'prometheus_client', 'tornado', 'jupyter_server', 'IPython',"
        " 'ipywidgets', 'comm', 'httpx') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                       env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert r.returncode == 0, r.stderr


def test_health_gate_counts_a_hanging_check_as_unhealthy(plugin_dir: Path) -> None:
    pm = PluginManager(entry_points=False, health_gate=True, health_timeout=0.2)
    try:
        path = plugin_dir / "counter.py"
        write(path, "v1")
        pm.load(str(path), start=True)
        write(path, "v2", extra="""
    def health_check(self):
        import time
        time.sleep(2)
""")
        res = pm.reload("counter")
        assert not res.ok and res.rolled_back and "timed out" in res.error
        assert pm.get("counter").inc() == "v1"
    finally:
        pm.close()


def test_awaitable_rollback(pm: PluginManager, counter: Path) -> None:
    import asyncio

    write(counter, "v2", "1.1.0")
    pm.reload("counter")
    res = asyncio.run(pm.arollback("counter", to=1))
    assert res.ok and pm.get("counter").inc() == "v1" and pm.history("counter")[-1].reason == "rollback"
