"""Where features built apart meet: the audit log records isolation's and the registry's
outcomes (and a CLI install), an isolated plugin's reload honours the health gate and the
signature policy, and the bytes the kernel verified are the bytes its worker runs.

Real worker processes, real files, real pip into a temp ``--target``, a real audit file checked
with ``flx-ipy audit verify``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flx_ipy import PluginCrashedError, PluginManager
from flx_ipy.cli import main
from flx_ipy.core import loader
from flx_ipy.core.audit import tail

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="worker sandbox is Linux-only")
ROOT = Path(__file__).resolve().parents[1]

PLUGIN = '''
import os
from flx_ipy import HealthStatus, Plugin, PluginMetadata, PluginState

class Counter(Plugin):
    metadata = PluginMetadata(name="NAME", version="VERSION")

    def __init__(self):
        self.count = 0

    def initialize(self, ctx):
        self.ctx = ctx

    def bump(self, n=1):
        self.count += STEP * n
        return self.count

    def tag(self):
        return "TAG"

    def die(self):
        os._exit(3)

    def write(self, path):
        with open(path, "w") as fh:
            fh.write("x")

    def health_check(self):
        return HealthStatus.HEALTH("HEALTH now")

    def save_state(self):
        return PluginState("NAME", "VERSION", runtime_data={"count": self.count})

    def restore_state(self, state):
        self.count = state.runtime_data["count"]
'''


def source(name: str = "wired", *, version: str = "1.0.0", step: int = 1, tag: str = "v1",
           health: str = "healthy") -> str:
    return textwrap.dedent(PLUGIN.replace("NAME", name).replace("VERSION", version).replace("STEP", str(step))
                           .replace("TAG", tag).replace("HEALTH", health))


class Events:
    def __init__(self, pm: PluginManager) -> None:
        self.items: list[Any] = []
        self.cond = threading.Condition()
        pm.subscribe(self._add)

    def _add(self, ev: Any) -> None:
        with self.cond:
            self.items.append(ev)
            self.cond.notify_all()

    def wait(self, kind: str, count: int = 1, timeout: float = 30.0) -> None:
        with self.cond:
            ok = self.cond.wait_for(lambda: sum(e.kind == kind for e in self.items) >= count, timeout)
        assert ok, f"no {count}x {kind!r} within {timeout} s; got {[e.kind for e in self.items]}"


def write(tmp_path: Path, text: str, name: str = "wired.py") -> Path:
    d = tmp_path / "plugins"
    d.mkdir(exist_ok=True)
    p = d / name
    p.write_text(text)
    return p


@pytest.fixture
def audited(tmp_path: Path) -> Iterator[PluginManager]:
    pm = PluginManager(entry_points=False, data_root=tmp_path / "data", audit_log=tmp_path / "audit.jsonl",
                       hook_timeout=20.0, health_timeout=5.0)
    yield pm
    pm.close()
    loader.unpin()


def records(pm: PluginManager) -> list[dict]:
    assert pm.audit.flush(5.0)
    return tail(pm.audit.path, 1000)


def verify(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["audit", "verify", str(path), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert json.loads(out)["ok"] is True


# ------------------------------------------------------------------ 1. audit completeness
@linux_only
def test_crash_restart_crash_loop_and_denial_are_audit_records(audited: PluginManager, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    ev = Events(audited)
    audited.load(write(tmp_path, source()), start=True, isolated=True)
    p = audited.get("wired")
    with pytest.raises(PermissionError):
        p.write(str(tmp_path / "outside.txt"))
    for i in range(4):
        with pytest.raises(PluginCrashedError):
            p.die()
        ev.wait("crashed", i + 1)
        if i < 3:
            ev.wait("restarted", i + 1)
    ev.wait("failed")
    recs = [r for r in records(audited) if r["plugin"] == "wired"]
    ops = [(r["operation"], r["outcome"]) for r in recs]
    assert ops[:2] == [("load", "ok"), ("start", "ok")]
    denied = [r for r in recs if r["outcome"] == "denied"]
    assert len(denied) == 1 and denied[0]["operation"] == "capability" and "write" in denied[0]["call"]
    assert "Permission" in (denied[0]["error"] or "") or "denied" in (denied[0]["error"] or "")
    crashes = [r for r in recs if r["operation"] == "crash"]
    assert len(crashes) == 4 and all(r["outcome"] == "failed" and r["error"] == "exit code 3" for r in crashes)
    assert all(r["reason"] == "exit code 3" and r["returncode"] == 3 for r in crashes)
    restarts = [r for r in recs if r["operation"] == "restart"]
    assert [r["outcome"] for r in restarts] == ["ok", "ok", "ok", "failed"]
    assert restarts[0]["restored"] == "save_state" and restarts[0]["error"] is None
    assert restarts[-1]["reason"] == "crash-loop" and "crash-loop" in restarts[-1]["error"]
    assert all(r["origin"] for r in recs) and all(r["code_sha256"] for r in crashes)
    verify(audited.audit.path, capsys)


@linux_only
def test_an_isolated_rollback_and_a_gated_reload_are_audit_records(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "audit.jsonl"
    pm = PluginManager(entry_points=False, data_root=tmp_path / "data", audit_log=log, health_gate=True,
                       health_timeout=5.0, hook_timeout=20.0)
    try:
        path = write(tmp_path, source())
        pm.load(path, start=True, isolated=True)
        path.write_text(source(version="1.1.0", step=10))
        assert pm.reload("wired").ok
        path.write_text(source(version="1.2.0", health="unhealthy"))
        assert pm.reload("wired").rolled_back
        assert pm.rollback("wired", 1).ok and pm.get("wired").tag() == "v1"
        assert pm.audit.flush(5.0)
    finally:
        pm.close()
    recs = [(r["operation"], r["outcome"], r.get("revision")) for r in tail(log, 100)]
    assert recs[:5] == [("load", "ok", 1), ("start", "ok", None), ("reload", "ok", 2),
                        ("reload", "rolled_back", None), ("rollback", "ok", 3)], recs
    assert tail(log, 100)[4]["code_sha256"] == tail(log, 100)[0]["code_sha256"]
    verify(log, capsys)


def hello_index(folder: Path) -> Path:
    from flx_ipy.registry import build_index
    from flx_ipy.registry.wheelmaker import make_wheel, plugin_module

    folder.mkdir(parents=True, exist_ok=True)
    make_wheel(folder, "flx-wirehello", "1.0.0", {"flx_wirehello/__init__.py": plugin_module("wirehello", "1.0.0")},
               entry_points={"flx_ipy.plugins": {"wirehello": "flx_wirehello:WirehelloPlugin"}},
               summary="says hello", requires_dist=["flx_ipy"])
    build_index(folder)
    return folder


def test_kernel_installs_and_refusals_are_audit_records(audited: PluginManager, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from flx_ipy.registry import RegistryError, load_index
    from flx_ipy.registry.live import install_live

    index = load_index(str(hello_index(tmp_path / "index")))
    target = tmp_path / "site"
    try:
        with pytest.raises(RegistryError):
            install_live(audited, index, "no-such-plugin", target=str(target))
        live = install_live(audited, index, "wirehello", target=str(target))
        assert live.result.changed
    finally:
        if str(target) in sys.path:
            sys.path.remove(str(target))
    recs = [r for r in records(audited) if r["operation"] == "install"]
    assert [(r["plugin"], r["outcome"]) for r in recs] == [("no-such-plugin", "failed"), ("wirehello", "ok")]
    assert recs[0]["error"] and recs[0]["index"] == index.location
    ok = recs[1]
    assert ok["distribution"] == "flx-wirehello" and ok["version"] == "1.0.0" and len(ok["wheel_sha256"]) == 64
    assert ok["origin"] == "api" and ok["error"] is None
    verify(audited.audit.path, capsys)


def run_cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    full.pop("FLX_IPY_AUDIT_LOG", None) if env is None or "FLX_IPY_AUDIT_LOG" not in env else None
    return subprocess.run([sys.executable, "-m", "flx_ipy", *argv], capture_output=True, text=True, env=full,
                          timeout=180, check=False)


def test_cli_install_appends_a_cli_record_to_the_audit_log(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    index = hello_index(tmp_path / "index")
    log = tmp_path / "audit.jsonl"
    # a kernel's record first: the CLI's chains onto it
    pm = PluginManager(entry_points=False, data_root=tmp_path / "data", audit_log=log)
    pm.load(str(write(tmp_path, source())))
    pm.close()
    proc = run_cli("install", "wirehello", "--index", str(index), "--target", str(tmp_path / "site"),
                   "--audit-log", str(log))
    assert proc.returncode == 0, proc.stderr
    # the environment variable names the log when no flag does; a refusal is recorded too
    proc = run_cli("install", "nothing-here", "--index", str(index), "--target", str(tmp_path / "site"),
                   env={"FLX_IPY_AUDIT_LOG": str(log)})
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1
    # a dry run changes nothing, so it writes nothing
    assert run_cli("install", "wirehello", "--index", str(index), "--target", str(tmp_path / "other"),
                   "--dry-run", "--audit-log", str(log)).returncode == 0
    recs = tail(log, 100)
    assert [(r["operation"], r["plugin"], r["outcome"], r["origin"]) for r in recs] == [
        ("load", "wired", "ok", "api"), ("unload", "wired", "ok", "api"), ("install", "wirehello", "ok", "cli"),
        ("install", "nothing-here", "failed", "cli")]
    assert recs[2]["distribution"] == "flx-wirehello" and recs[2]["actor"] and recs[2]["error"] is None
    assert recs[3]["error"]
    verify(log, capsys)


def test_cli_install_without_an_audit_log_writes_none(tmp_path: Path) -> None:
    index = hello_index(tmp_path / "index")
    proc = run_cli("install", "wirehello", "--index", str(index), "--target", str(tmp_path / "site"))
    assert proc.returncode == 0, proc.stderr
    assert not list(tmp_path.rglob("*.jsonl"))


# ------------------------------------------------------------------ 2. health gate in a worker
@linux_only
def test_the_health_gate_holds_for_a_reload_in_a_worker(tmp_path: Path) -> None:
    pm = PluginManager(entry_points=False, data_root=tmp_path / "data", health_gate=True, health_timeout=5.0,
                       hook_timeout=20.0)
    try:
        path = write(tmp_path, source())
        pm.load(path, start=True, isolated=True)
        p = pm.get("wired")
        p.bump(4)
        path.write_text(source(version="1.1.0", tag="v2", health="unhealthy"))
        res = pm.reload("wired")
        assert not res.ok and res.rolled_back and "health check failed" in res.error, res
        assert pm.record("wired").version == "1.0.0" and pm.status("wired") == "running"
        assert p.tag() == "v1" and p.bump() == 5  # the old code runs again, state kept
        path.write_text(source(version="1.2.0", tag="v3", health="degraded"))
        assert pm.reload("wired").ok and p.tag() == "v3" and p.count == 5
    finally:
        pm.close()


# ------------------------------------------------------------------ 3. signatures and isolation
@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    pytest.importorskip("cryptography")
    from flx_ipy.core.sshsig import generate_key

    trusted, _ = generate_key(tmp_path / "keys" / "alice", "alice@example.com")
    allowed = tmp_path / "keys" / "allowed_signers"
    pub = (tmp_path / "keys" / "alice.pub").read_text().split()
    allowed.write_text(f'alice@example.com namespaces="flx-ipy" {pub[0]} {pub[1]}\n')
    return {"trusted": trusted, "allowed": allowed}


def signed_plugin(tmp_path: Path, keys: dict[str, Path]) -> Path:
    from flx_ipy.core.trust import sign_plugin

    path = write(tmp_path, source())
    sign_plugin(path, keys["trusted"])
    return path


@linux_only
def test_the_worker_runs_the_bytes_the_kernel_verified(tmp_path: Path, keys: dict[str, Path]) -> None:
    """A source check that runs after the signature check rewrites the file (a save racing the
    load): the worker must import the verified bytes, not re-read the file."""
    path = signed_plugin(tmp_path, keys)
    pm = PluginManager(entry_points=False, data_root=tmp_path / "data", signature_policy="require",
                       allowed_signers=keys["allowed"], hook_timeout=20.0)

    def racing_save(src: Any) -> list[Any]:
        path.write_text(source(tag="swapped after the check"))
        return []

    try:
        pm.validator.add_source_check(racing_save)
        rec = pm.load(str(path), start=True, isolated=True)
        assert rec.signature.status == "signed" and rec.isolated
        assert pm.get("wired").tag() == "v1"
    finally:
        pm.close()
        loader.unpin()


@linux_only
def test_a_hot_reload_of_an_isolated_plugin_is_signature_checked(tmp_path: Path, keys: dict[str, Path]) -> None:
    path = signed_plugin(tmp_path, keys)
    pm = PluginManager(entry_points=False, data_root=tmp_path / "data", signature_policy="require",
                       allowed_signers=keys["allowed"], hook_timeout=20.0)
    try:
        pm.load(str(path), start=True, isolated=True)
        p = pm.get("wired")
        p.bump(2)
        path.write_text(source(version="1.1.0", tag="unsigned change"))
        (res,) = pm.apply_changes([path])
        assert not res.ok and res.rolled_back and res.phase == "signature"
        assert "no longer signed" in res.error and "flx-ipy sign" in res.error
        assert p.tag() == "v1" and p.bump() == 3 and pm.record("wired").version == "1.0.0"
        assert not pm.reload("wired").ok and p.tag() == "v1"  # an explicit reload is refused too
        from flx_ipy.core.trust import sign_plugin

        sign_plugin(path, keys["trusted"])  # re-signed: it reloads, state kept
        res = pm.reload("wired")
        assert res.ok and p.tag() == "unsigned change" and p.count == 3
        assert pm.record("wired").signature.status == "signed"

        pm.trust.policy = "warn"  # warn: an unsigned change reloads, and the status says so
        path.write_text(source(version="1.2.0", tag="warned"))
        (res,) = pm.apply_changes([path])
        assert res.ok and p.tag() == "warned" and pm.record("wired").signature.status == "modified"
    finally:
        pm.close()
        loader.unpin()


@linux_only
def test_a_save_after_a_crash_loop_is_signature_checked_before_the_fresh_worker(tmp_path: Path,
                                                                               keys: dict[str, Path]) -> None:
    from flx_ipy.core.trust import sign_plugin

    path = signed_plugin(tmp_path, keys)
    pm = PluginManager(entry_points=False, data_root=tmp_path / "data", signature_policy="require",
                       allowed_signers=keys["allowed"], hook_timeout=20.0)
    ev = Events(pm)
    try:
        pm.load(str(path), start=True, isolated=True)
        p = pm.get("wired")
        for i in range(4):
            with pytest.raises(PluginCrashedError):
                p.die()
            ev.wait("crashed", i + 1)
        ev.wait("failed")
        path.write_text(source(version="1.0.1", tag="fix, unsigned"))
        (res,) = pm.apply_changes([path])
        assert not res.ok and "no longer signed" in res.error and pm.status("wired") == "failed"
        sign_plugin(path, keys["trusted"])
        (res,) = pm.apply_changes([path])
        assert res.ok and pm.status("wired") == "running" and p.tag() == "fix, unsigned"
    finally:
        pm.close()
        loader.unpin()
