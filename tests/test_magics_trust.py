"""``%plugin audit``, ``%plugin list``'s signature column and the trust/audit traitlets, in a real
IPython shell (``IPython.testing.globalipapp``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from magic_shell import loaded, test_shell

from flx_ipy import PluginManager
from flx_ipy.core.audit import tail
from flx_ipy.core.manager import _set_default
from flx_ipy.testing import plugin_source, write_plugin


@pytest.fixture(scope="module")
def shell() -> Any:
    return test_shell()


@pytest.fixture
def ip(shell: Any, tmp_path: Path) -> Iterator[Any]:
    with loaded(shell, tmp_path, audit_log=tmp_path / "audit.jsonl", health_timeout=5.0) as ip:
        yield ip


def test_plugin_audit_shows_what_the_magics_did(ip: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                ) -> None:
    path = write_plugin(tmp_path / "mt_counter.py", plugin_source("mt_counter"))
    ip.run_line_magic("plugin", f"load {path} --start")
    ip.run_line_magic("plugin", "stop mt_counter")
    table = ip.run_line_magic("plugin", "audit -n 2")
    text = repr(table)
    assert "stop" in text and "magic" in text and "load" not in text.split("\n", 2)[2]
    assert [(r["operation"], r["origin"]) for r in tail(tmp_path / "audit.jsonl", 10)] == [
        ("load", "magic"), ("start", "magic"), ("stop", "magic")]
    capsys.readouterr()
    ip.run_line_magic("plugin", "audit --where")
    assert capsys.readouterr().out.strip() == str(tmp_path / "audit.jsonl")


def test_audit_can_be_turned_off_and_moved(ip: Any, tmp_path: Path) -> None:
    ip.run_line_magic("config", "PluginMagics.audit_log = 'off'")
    assert ip.pm.audit is None
    with pytest.raises(UsageError, match="audit log is off"):
        ip.run_line_magic("plugin", "audit")
    ip.run_line_magic("config", f"PluginMagics.audit_log = {str(tmp_path / 'other.jsonl')!r}")
    assert str(ip.pm.audit.path) == str(tmp_path / "other.jsonl")
    ip.run_line_magic("config", "PluginMagics.audit_mode = 'blocking'")
    assert ip.pm.audit.log.mode == "blocking"


def test_signature_settings_reach_the_manager_and_list_shows_the_status(ip: Any, tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    from flx_ipy.core.sshsig import generate_key
    from flx_ipy.core.trust import sign_plugin

    key, pub = generate_key(tmp_path / "k", "fay@example.com")
    allowed = tmp_path / "allowed"
    allowed.write_text('fay@example.com namespaces="flx-ipy" ' + " ".join(pub.read_text().split()[:2]) + "\n")
    ip.run_line_magic("config", f"PluginMagics.allowed_signers = {str(allowed)!r}")
    ip.run_line_magic("config", "PluginMagics.signature_policy = 'require'")
    assert ip.pm.signature_policy == "require" and str(ip.pm.allowed_signers) == str(allowed)
    path = write_plugin(tmp_path / "mt_signed.py", plugin_source("mt_signed"))
    with pytest.raises(UsageError, match=r"unsigned.*flx-ipy sign"):
        ip.run_line_magic("plugin", f"load {path}")
    sign_plugin(path, key)
    ip.run_line_magic("plugin", f"load {path}")
    assert "signed (fay@example.com)" in repr(ip.run_line_magic("plugin", "list"))
    ip.run_line_magic("config", "PluginMagics.signature_policy = 'warn'")
    write_plugin(path, plugin_source("mt_signed", body="X = 1"))
    ip.run_line_magic("plugin", "reload mt_signed")
    assert "modified: mt_signed.py" in repr(ip.run_line_magic("plugin", "list"))


def test_a_log_given_in_python_is_kept(shell: Any, tmp_path: Path) -> None:
    pm = PluginManager(entry_points=False, audit_log=tmp_path / "mine.jsonl")
    _set_default(pm)
    try:
        shell.run_line_magic("load_ext", "flx_ipy")
        assert str(pm.audit.path) == str(tmp_path / "mine.jsonl")  # the default did not replace it
        shell.run_line_magic("config", f"PluginMagics.audit_log = {str(tmp_path / 'named.jsonl')!r}")
        assert str(pm.audit.path) == str(tmp_path / "named.jsonl")  # a setting that names one does
    finally:
        shell.run_line_magic("unload_ext", "flx_ipy")
        if "PluginMagics" in shell.config:
            del shell.config["PluginMagics"]
        pm.close()
        _set_default(None)


def test_plugin_verify_is_flx_ipy_verify(ip: Any, tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    from flx_ipy.core.sshsig import generate_key
    from flx_ipy.core.trust import sign_plugin

    with pytest.raises(UsageError, match="no allowed_signers"):
        ip.run_line_magic("plugin", "verify x")
    key, pub = generate_key(tmp_path / "k", "gus@example.com")
    allowed = tmp_path / "allowed"
    allowed.write_text('gus@example.com namespaces="flx-ipy" ' + " ".join(pub.read_text().split()[:2]) + "\n")
    ip.run_line_magic("config", f"PluginMagics.allowed_signers = {str(allowed)!r}")
    path = write_plugin(tmp_path / "mt_verify.py", plugin_source("mt_verify"))
    assert "unsigned" in repr(ip.run_line_magic("plugin", f"verify {path}"))
    sign_plugin(path, key)
    ip.run_line_magic("plugin", f"load {path}")
    assert "signed by gus@example.com" in repr(ip.run_line_magic("plugin", "verify mt_verify"))
    write_plugin(path, plugin_source("mt_verify", body="X = 1"))
    assert "changed: mt_verify.py" in repr(ip.run_line_magic("plugin", "verify mt_verify"))
