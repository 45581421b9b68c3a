"""The audit log: a record per operation outcome from every origin, the hash chain, rotation,
the buffered and blocking writers, and a log that cannot be written (the operation goes on)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from pathlib import Path

import pytest

from flx_ipy import PluginLoadError, PluginManager
from flx_ipy.core import files, loader
from flx_ipy.core.audit import AuditLog, code_sha256, tail, verify_chain
from flx_ipy.core.origin import current_origin, origin_scope
from flx_ipy.testing import ScriptedChanges, plugin_source, wait_for, write_plugin
from flx_ipy.uistate import run_action

FIELDS = {"time", "operation", "plugin", "outcome", "actor", "origin", "error", "code_sha256", "prev"}


@pytest.fixture
def audited(tmp_path: Path):  # type: ignore[no-untyped-def]
    pm = PluginManager(entry_points=False, data_root=tmp_path / "data", audit_log=tmp_path / "audit.jsonl",
                       hook_timeout=5.0)
    yield pm
    pm.close()
    loader.unpin()


def records(pm: PluginManager) -> list[dict]:
    assert pm.audit.flush(5.0)
    return tail(pm.audit.path, 1000)


def test_each_operation_outcome_is_one_record_with_the_contract_fields(audited: PluginManager,
                                                                       tmp_path: Path) -> None:
    path = write_plugin(tmp_path / "aud_counter.py", plugin_source("aud_counter", body="""
        def start(self):
            self.n = 1
    """))
    audited.load(str(path), start=True)
    audited.reload("aud_counter")
    audited.stop("aud_counter")
    audited.unload("aud_counter")
    recs = records(audited)
    assert [(r["operation"], r["outcome"]) for r in recs] == [
        ("load", "ok"), ("start", "ok"), ("reload", "ok"), ("stop", "ok"), ("unload", "ok")]
    for r in recs:
        assert FIELDS <= set(r), r
        assert r["plugin"] == "aud_counter" and r["origin"] == "api" and r["actor"] and r["error"] is None
        parsed = dt.datetime.fromisoformat(r["time"])
        assert parsed.tzinfo is not None and parsed.utcoffset() == dt.timedelta(0) and r["time"].endswith("Z")
    assert recs[0]["code_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert recs[-1]["code_sha256"] is None  # unloaded: no code any more
    assert recs[0]["prev"] is None
    lines = audited.audit.path.read_bytes().splitlines()
    for before, rec in zip(lines, recs[1:], strict=False):
        assert rec["prev"] == hashlib.sha256(before).hexdigest()
    assert verify_chain(audited.audit.path).ok


def test_failures_rollbacks_and_refusals_are_recorded(audited: PluginManager, tmp_path: Path) -> None:
    path = write_plugin(tmp_path / "aud_fragile.py", plugin_source("aud_fragile"))
    audited.load(str(path), start=True)
    write_plugin(path, plugin_source("aud_fragile", body="def start(self):\n    raise RuntimeError('boom')"))
    result = audited.reload("aud_fragile")
    assert result.rolled_back
    with pytest.raises(Exception, match="already running"):
        audited.start("aud_fragile")
    bad = write_plugin(tmp_path / "aud_bad.py", plugin_source("aud_bad", body="def start(self):\n    1/0"))
    audited.load(str(bad))
    with pytest.raises(Exception, match="ZeroDivisionError"):
        audited.start("aud_bad")
    recs = records(audited)
    got = [(r["operation"], r["plugin"], r["outcome"]) for r in recs]
    assert ("reload", "aud_fragile", "rolled_back") in got
    assert ("start", "aud_fragile", "failed") in got  # refused: already running
    assert ("start", "aud_bad", "failed") in got
    rolled = next(r for r in recs if r["outcome"] == "rolled_back")
    assert "boom" in rolled["error"] and rolled["phase"] == "start"
    assert rolled["code_sha256"] == code_sha256({str(path): files.sources[files.norm(path)]})
    assert len([g for g in got if g == ("start", "aud_bad", "failed")]) == 1  # one record, not two


def test_every_origin_reaches_the_record(audited: PluginManager, tmp_path: Path) -> None:
    path = write_plugin(tmp_path / "aud_origin.py", plugin_source("aud_origin"))
    with origin_scope("http"):
        audited.load(str(path), start=True)
    run_action(audited, "stop", "aud_origin")  # the dashboard's button
    run_action(audited, "start", "aud_origin", origin="labextension")  # the side panel's
    source = ScriptedChanges()
    audited.watch(source=source, settle=0.0)
    write_plugin(path, plugin_source("aud_origin", body="X = 2"))
    source.push(path)
    wait_for(lambda: audited.plugins["aud_origin"].reload_count == 1, timeout=10)
    audited.unwatch()

    from flx_ipy import cli
    from flx_ipy.cli import inspect as inspect_verb

    def fake_validate(args):  # type: ignore[no-untyped-def]
        audited.stop("aud_origin")
        return 0

    mp = pytest.MonkeyPatch()
    mp.setattr(inspect_verb, "run_validate", fake_validate)
    try:
        assert cli.main(["validate", str(path)]) == 0
    finally:
        mp.undo()
    origins = [(r["operation"], r["origin"]) for r in records(audited)]
    assert origins == [("load", "http"), ("start", "http"), ("stop", "widget"), ("start", "labextension"),
                       ("reload", "watcher"), ("stop", "cli")]
    assert current_origin() == "api"


def test_the_chain_finds_an_edited_and_a_deleted_record(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.jsonl")
    for i in range(6):
        log.write({"operation": "load", "plugin": f"p{i}", "outcome": "ok"})
    log.close()
    good = (tmp_path / "a.jsonl").read_bytes().splitlines()
    assert verify_chain(tmp_path / "a.jsonl").ok and verify_chain(tmp_path / "a.jsonl").records == 6

    edited = list(good)
    edited[2] = edited[2].replace(b'"outcome":"ok"', b'"outcome":"failed"')
    (tmp_path / "e.jsonl").write_bytes(b"\n".join(edited) + b"\n")
    report = verify_chain(tmp_path / "e.jsonl")
    assert not report.ok and report.broken_line == 4 and "edited" in report.reason

    deleted = good[:3] + good[4:]
    (tmp_path / "d.jsonl").write_bytes(b"\n".join(deleted) + b"\n")
    report = verify_chain(tmp_path / "d.jsonl")
    assert not report.ok and report.broken_line == 4 and "deleted" in report.reason
    assert str(report).startswith(f"{tmp_path / 'd.jsonl'}:4: hash chain broken")


def test_rotation_by_size_keeps_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    log = AuditLog(path, max_bytes=2000, backups=3)
    for i in range(40):
        log.write({"operation": "reload", "plugin": f"p{i}", "outcome": "ok"})
    log.close()
    rotated = sorted(p.name for p in tmp_path.iterdir())
    assert rotated == ["r.jsonl", "r.jsonl.1", "r.jsonl.2", "r.jsonl.3"]
    assert all(p.stat().st_size <= 2000 for p in tmp_path.iterdir())
    first_now = json.loads(path.read_bytes().splitlines()[0])
    last_before = (tmp_path / "r.jsonl.1").read_bytes().splitlines()[-1]
    assert first_now["prev"] == hashlib.sha256(last_before).hexdigest()
    report = verify_chain(path)
    assert report.ok and len(report.files) == 4, report
    assert "no longer present" in report.reason  # the oldest files were rotated away
    assert [r["plugin"] for r in tail(path, 3)] == ["p37", "p38", "p39"]


def test_two_writers_on_one_file_keep_one_chain(tmp_path: Path) -> None:
    """Two kernels sharing the default log: each re-reads the last line another appended."""
    a, b = AuditLog(tmp_path / "s.jsonl", mode="blocking"), AuditLog(tmp_path / "s.jsonl", mode="blocking")
    for i in range(5):
        a.write({"operation": "load", "plugin": f"a{i}", "outcome": "ok"})
        b.write({"operation": "load", "plugin": f"b{i}", "outcome": "ok"})
    a.close()
    b.close()
    assert verify_chain(tmp_path / "s.jsonl").records == 10 and verify_chain(tmp_path / "s.jsonl").ok


def test_an_unwritable_audit_log_never_breaks_an_operation(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                                           ) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the log's folder should be")
    pm = PluginManager(entry_points=False, audit_log=blocker / "audit.jsonl")
    failures: list = []
    pm.subscribe(lambda e: failures.append(e) if e.kind == "audit_failed" else None)
    path = write_plugin(tmp_path / "aud_unwritable.py", plugin_source("aud_unwritable"))
    try:
        with caplog.at_level(logging.WARNING, logger="flx_ipy"):
            rec = pm.load(str(path), start=True)
            assert rec.status == "running"
            assert pm.audit.flush(5.0)
        wait_for(lambda: failures, timeout=5)
        assert "cannot write the audit log" in failures[0].details["error"]
        assert any("cannot write the audit log" in r.getMessage() for r in caplog.records)
        assert pm.audit.log.errors >= 1
    finally:
        pm.close()


def test_blocking_mode_writes_before_returning_and_refuses_code_it_cannot_audit(tmp_path: Path) -> None:
    pm = PluginManager(entry_points=False, audit_log=tmp_path / "b.jsonl", audit_mode="blocking")
    path = write_plugin(tmp_path / "aud_block.py", plugin_source("aud_block"))
    try:
        pm.load(str(path))
        assert json.loads((tmp_path / "b.jsonl").read_text().splitlines()[-1])["operation"] == "load"
        pm.unload("aud_block")
    finally:
        pm.close()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    pm = PluginManager(entry_points=False, audit_log=blocker / "b.jsonl", audit_mode="blocking")
    try:
        with pytest.raises(PluginLoadError, match="cannot write the audit log"):
            pm.load(str(path))
        assert "aud_block" not in pm.plugins
    finally:
        pm.close()


def test_signature_checks_are_records(tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    from flx_ipy.core.sshsig import generate_key
    from flx_ipy.core.trust import sign_plugin

    key, pub = generate_key(tmp_path / "k", "dana@example.com")
    allowed = tmp_path / "allowed"
    allowed.write_text('dana@example.com namespaces="flx-ipy" ' + " ".join(pub.read_text().split()[:2]) + "\n")
    path = write_plugin(tmp_path / "aud_signed.py", plugin_source("aud_signed"))
    sign_plugin(path, key)
    pm = PluginManager(entry_points=False, audit_log=tmp_path / "s.jsonl", signature_policy="require",
                       allowed_signers=allowed)
    try:
        pm.load(str(path))
        pm.unload("aud_signed")
        write_plugin(path, plugin_source("aud_signed", body="X = 1"))
        with pytest.raises(PluginLoadError):
            pm.load(str(path))
        recs = records(pm)
    finally:
        pm.close()
        loader.unpin()
    got = [(r["operation"], r["outcome"], r.get("signature")) for r in recs]
    assert got == [("signature", "ok", "signed"), ("load", "ok", None), ("unload", "ok", None),
                   ("signature", "denied", "modified"), ("load", "denied", None)]
    assert recs[0]["signer"] == "dana@example.com"
    assert recs[3]["files"] == ["aud_signed.py"] and recs[3]["plugin"] == "aud_signed"


def test_a_rollback_is_its_own_record_with_the_revisions_digest(audited: PluginManager, tmp_path: Path) -> None:
    path = write_plugin(tmp_path / "aud_rollback.py", plugin_source("aud_rollback", version="1.0.0"))
    audited.load(str(path), start=True)
    write_plugin(path, plugin_source("aud_rollback", version="1.1.0"))
    audited.reload("aud_rollback")
    result = audited.rollback("aud_rollback")
    assert result.ok
    recs = records(audited)
    last = recs[-1]
    assert last["operation"] == "rollback" and last["outcome"] == "ok"
    assert last["code_sha256"] == audited.history("aud_rollback")[-1].code_sha256
    assert last["revision"] == audited.history("aud_rollback")[-1].revision
    assert recs[0]["code_sha256"] == hashlib.sha256(plugin_source("aud_rollback", version="1.0.0").encode()).hexdigest()


def test_records_still_queued_at_exit_are_written(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "exit.jsonl"
    code = ("from flx_ipy.core.audit import AuditLog\n"
            f"log = AuditLog({str(out)!r})\n"
            "for i in range(500):\n    log.write({'operation': 'x', 'plugin': str(i), 'outcome': 'ok'})\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60,
                   env={"PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert len(out.read_text().splitlines()) == 500 and verify_chain(out).ok
