"""Signed plugins: keys, signatures, every tamper case, and the three policies under hot reload.

Real keys (made by ``flx-ipy keygen`` and by ``ssh-keygen``), real files, real imports. Each
tamper case is checked three ways: ``check_path`` (what ``flx-ipy verify`` prints), a load under
``require`` (refused, naming the file, the plugin's code never run), and the status under ``warn``.
"""

from __future__ import annotations

import importlib
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flx_ipy import PluginLoadError, PluginManager
from flx_ipy.core import loader
from flx_ipy.core.signing import signature_path
from flx_ipy.core.sshsig import AllowedSigners, SignatureError, generate_key, sign, verify
from flx_ipy.core.trust import check_path, sign_plugin
from flx_ipy.testing import write_plugin

pytest.importorskip("cryptography")
SSH_KEYGEN = shutil.which("ssh-keygen")
needs_ssh_keygen = pytest.mark.skipif(SSH_KEYGEN is None, reason="ssh-keygen is not installed (openssh-client)")

INIT = '''from flx_ipy import Plugin, PluginMetadata
from .util import greeting
import os
if os.environ.get("FLX_MARKER"):
    open(os.environ["FLX_MARKER"], "a").write("ran\\n")


class {cls}(Plugin):
    metadata = PluginMetadata(name="{name}", version="1.0.0")

    def start(self):
        self.count = getattr(self, "count", 0)

    def hello(self):
        self.count += 1
        return greeting() + f" #{{self.count}}"
'''
UTIL = 'def greeting():\n    return "hello"\n'


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    """A trusted key (flx-ipy keygen), an untrusted one, and the allowed_signers file."""
    trusted, _ = generate_key(tmp_path / "keys" / "alice", "alice@example.com")
    other, _ = generate_key(tmp_path / "keys" / "mallory", "mallory@example.com")
    allowed = tmp_path / "keys" / "allowed_signers"
    pub = (tmp_path / "keys" / "alice.pub").read_text().split()
    allowed.write_text(f'alice@example.com namespaces="flx-ipy" {pub[0]} {pub[1]}\n')
    return {"trusted": trusted, "other": other, "allowed": allowed}


_counter = [0]


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A package-folder plugin with two modules, unique per test (module names stay apart)."""
    _counter[0] += 1
    name = f"sigpkg{_counter[0]}_{tmp_path.name[-6:].replace('-', '_')}".lower()
    pkg = tmp_path / "plugins" / name
    write_plugin(pkg / "__init__.py", INIT.format(cls="Greeter", name=name))
    write_plugin(pkg / "util.py", UTIL)
    yield pkg
    loader.forget_modules([m for m in list(sys.modules) if m == name or m.startswith(name + ".")])


def make_pm(tmp_path: Path, policy: str, allowed: Path | None) -> PluginManager:
    return PluginManager(entry_points=False, data_root=tmp_path / "data", signature_policy=policy,
                         allowed_signers=allowed, hook_timeout=5.0)


@pytest.fixture
def managers(tmp_path: Path):  # type: ignore[no-untyped-def]
    made: list[PluginManager] = []

    def make(policy: str, allowed: Path | None) -> PluginManager:
        pm = make_pm(tmp_path, policy, allowed)
        made.append(pm)
        return pm

    yield make
    for pm in made:
        pm.close()
    loader.unpin()


# ------------------------------------------------------------------------------ the format
def test_sign_then_verify_in_process(package: Path, keys: dict[str, Path]) -> None:
    res = sign_plugin(package, keys["trusted"])
    assert res.signature_file == package / "flx-ipy.sig" and res.principal == "alice@example.com"
    assert res.files == ["__init__.py", "util.py"]
    info = check_path(package, keys["allowed"])
    assert info.status == "signed" and info.signer == "alice@example.com" and info.files == []


def test_sshsig_roundtrip_and_wrong_namespace(keys: dict[str, Path]) -> None:
    from flx_ipy.core.sshsig import load_private_key

    key = load_private_key(keys["trusted"])
    armored = sign(b"message", key)
    blob = verify(b"message", armored)
    assert AllowedSigners.load(keys["allowed"]).signer_for(blob, None) == "alice@example.com"
    with pytest.raises(SignatureError, match="does not match"):
        verify(b"messagE", armored)
    with pytest.raises(SignatureError, match="namespace 'git'"):
        verify(b"message", sign(b"message", key, namespace="git"))


def test_allowed_signers_namespaces_and_patterns(keys: dict[str, Path]) -> None:
    pub = (keys["trusted"].parent / "alice.pub").read_text().split()
    key = " ".join(pub[:2])
    signers = AllowedSigners.parse(f'# comment\n*@example.com,!eve@example.com namespaces="git,flx-ipy" {key}\n'
                                   f'bob@x namespaces="git" {key}\n')
    from flx_ipy.core.sshsig import _blob_of, load_private_key

    blob = _blob_of(load_private_key(keys["trusted"]).public_key())
    assert signers.signer_for(blob, "alice@example.com") == "alice@example.com"
    assert signers.signer_for(blob, "eve@example.com") is None  # negated pattern
    assert signers.signer_for(blob, "bob@x") is None  # that line is for git only
    with pytest.raises(SignatureError, match=r"allowed:1: malformed ed25519 key"):
        AllowedSigners.parse("a ssh-ed25519 AAAAnotbase64!!\n", "allowed")


@needs_ssh_keygen
def test_an_ssh_keygen_key_signs_and_ssh_keygen_agrees(package: Path, tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "carol@example.com", "-f", str(key)],
                   check=True)
    pub = Path(str(key) + ".pub").read_text().split()
    allowed = tmp_path / "allowed"
    allowed.write_text(f'carol@example.com namespaces="flx-ipy" {pub[0]} {pub[1]}\n')
    sign_plugin(package, key)
    assert check_path(package, allowed).status == "signed"
    # ssh-keygen verifies our signature over the manifest ...
    text = signature_path(package).read_text()
    cut = text.index("-----BEGIN SSH SIGNATURE-----")
    (tmp_path / "manifest").write_text(text[:cut])
    (tmp_path / "manifest.sig").write_text(text[cut:])
    ok = subprocess.run([SSH_KEYGEN, "-Y", "verify", "-f", str(allowed), "-I", "carol@example.com", "-n",
                         "flx-ipy", "-s", str(tmp_path / "manifest.sig")],
                        input=(tmp_path / "manifest").read_bytes(), capture_output=True, check=False)
    assert ok.returncode == 0, ok.stderr
    # ... and we verify ssh-keygen's signature of the same manifest
    subprocess.run([SSH_KEYGEN, "-Y", "sign", "-f", str(key), "-n", "flx-ipy", str(tmp_path / "manifest")],
                   check=True, capture_output=True)
    theirs = (tmp_path / "manifest.sig").read_text()
    signature_path(package).write_text(text[:cut] + theirs)
    assert check_path(package, allowed).status == "signed"
    # and both reject a manifest changed by one byte
    bad = text[:cut].replace("util.py", "util.pz")
    (tmp_path / "manifest").write_text(bad)
    nok = subprocess.run([SSH_KEYGEN, "-Y", "verify", "-f", str(allowed), "-I", "carol@example.com", "-n",
                          "flx-ipy", "-s", str(tmp_path / "manifest.sig")],
                         input=bad.encode(), capture_output=True, check=False)
    assert nok.returncode != 0
    signature_path(package).write_text(bad + theirs)
    assert check_path(package, allowed).status == "invalid"


def test_a_single_file_plugin_is_signed_beside_it(tmp_path: Path, keys: dict[str, Path], managers) -> None:  # type: ignore[no-untyped-def]
    from flx_ipy.testing import plugin_source

    f = write_plugin(tmp_path / "solo_signed.py", plugin_source("solo_signed"))
    sign_plugin(f, keys["trusted"])
    assert (tmp_path / "solo_signed.py.flx-ipy.sig").is_file()
    pm = managers("require", keys["allowed"])
    rec = pm.load(str(f))
    assert rec.signature.status == "signed" and rec.signature.signer == "alice@example.com"


# ------------------------------------------------------------------------------ tamper cases
def _tamper_byte(pkg: Path) -> str:
    (pkg / "util.py").write_text(UTIL.replace("hello", "hellO"))
    return "util.py"


def _tamper_added(pkg: Path) -> str:
    (pkg / "extra.py").write_text("EVIL = True\n")
    return "extra.py"


def _tamper_removed(pkg: Path) -> str:
    (pkg / "util.py").unlink()
    (pkg / "__init__.py").write_text((pkg / "__init__.py").read_text())  # same bytes
    return "util.py"


def _tamper_pyc(pkg: Path) -> str:
    """A planted .pyc Python itself would run for util.py: header copied from a real cache of
    util.py (mtime and size match), code from another source."""
    tag = sys.implementation.cache_tag
    real = pkg / "__pycache__" / f"util.{tag}.pyc"
    py_compile.compile(str(pkg / "util.py"), cfile=str(real))
    evil_src = pkg.parent / "evil_src.py"
    evil_src.write_text('def greeting():\n    return "pwned"\n')
    evil = pkg.parent / "evil.pyc"
    py_compile.compile(str(evil_src), cfile=str(evil))
    data = bytearray(evil.read_bytes())
    data[8:16] = real.read_bytes()[8:16]
    real.write_bytes(bytes(data))
    evil_src.unlink()
    evil.unlink()
    return f"__pycache__/util.{tag}.pyc"


TAMPER = {"one byte changed": _tamper_byte, "a file added": _tamper_added, "a file removed": _tamper_removed,
          "a planted .pyc": _tamper_pyc}


@pytest.mark.parametrize("case", list(TAMPER))
def test_tampering_is_reported_with_the_file(case: str, package: Path, keys: dict[str, Path], managers,  # type: ignore[no-untyped-def]
                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sign_plugin(package, keys["trusted"])
    rel = TAMPER[case](package)
    info = check_path(package, keys["allowed"])
    assert info.status == "modified" and rel in info.files, info
    assert info.signer == "alice@example.com"

    marker = tmp_path / "ran.txt"
    monkeypatch.setenv("FLX_MARKER", str(marker))
    pm = managers("require", keys["allowed"])
    with pytest.raises(PluginLoadError) as err:
        pm.load(str(package))
    assert rel in str(err.value) and "modified" in str(err.value)
    assert not marker.exists(), "the plugin's code ran before its signature was refused"
    assert package.name not in sys.modules

    if case == "a file removed":
        return  # the package cannot import without util.py: nothing to load under warn
    warn = managers("warn", keys["allowed"])
    rec = warn.load(str(package))
    assert rec.signature.status == "modified" and rel in rec.signature.files
    if case == "a planted .pyc":  # it loaded, and ran the source, not the planted bytecode
        warn.start(rec.name)
        assert warn.get(rec.name).hello() == "hello #1"


def test_a_key_not_in_allowed_signers_is_invalid(package: Path, keys: dict[str, Path], managers) -> None:  # type: ignore[no-untyped-def]
    sign_plugin(package, keys["other"])
    info = check_path(package, keys["allowed"])
    assert info.status == "invalid" and info.files == ["flx-ipy.sig"] and "not in allowed_signers" in info.reason
    pm = managers("require", keys["allowed"])
    with pytest.raises(PluginLoadError, match=r"invalid \(flx-ipy.sig\).*not in allowed_signers"):
        pm.load(str(package))


def test_unsigned_is_refused_under_require_and_loads_under_warn(package: Path, keys: dict[str, Path],  # type: ignore[no-untyped-def]
                                                                managers) -> None:
    with pytest.raises(PluginLoadError, match="unsigned"):
        managers("require", keys["allowed"]).load(str(package))
    rec = managers("warn", keys["allowed"]).load(str(package))
    assert rec.signature.status == "unsigned" and rec.signature.signer is None


def test_off_checks_nothing(package: Path, managers) -> None:  # type: ignore[no-untyped-def]
    pm = managers("off", None)
    rec = pm.load(str(package))
    assert rec.signature is None
    assert not [e for e in pm.events.history() if e.kind == "signature_checked"]


def test_a_planted_pyc_never_runs_even_with_policy_off(package: Path, managers, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _tamper_pyc(package)
    # plain Python would run it: the threat is real
    probe = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(package.parent)!r}); "
                            f"from {package.name}.util import greeting; print(greeting())"],
                           capture_output=True, text=True, check=True, env={"PYTHONPATH": str(Path.cwd())})
    assert probe.stdout.strip() == "pwned"
    pm = managers("off", None)
    rec = pm.load(str(package), start=True)
    assert pm.get(rec.name).hello() == "hello #1"
    pm.unload(rec.name)
    # loaded by module name (as an entry point is), it goes through our finder as well
    sys.path.insert(0, str(package.parent))
    try:
        importlib.invalidate_caches()
        rec = pm.load(f"{package.name}:Greeter", start=True)
        assert pm.get(rec.name).hello() == "hello #1"
        assert sys.modules[f"{package.name}.util"].__spec__.loader.__class__.__name__ == "FreshSourceLoader"
    finally:
        sys.path.remove(str(package.parent))


# ------------------------------------------------------------------------------ hot reload
def test_require_rolls_back_a_hot_edit_and_a_re_sign_applies_it(package: Path, keys: dict[str, Path],  # type: ignore[no-untyped-def]
                                                                 managers) -> None:
    sign_plugin(package, keys["trusted"])
    pm = managers("require", keys["allowed"])
    rec = pm.load(str(package), start=True)
    live = pm.get(rec.name)
    assert live.hello() == "hello #1" and rec.signature.status == "signed"
    write_plugin(package / "util.py", UTIL.replace("hello", "howdy"))
    results = pm.apply_changes([package / "util.py"])
    assert len(results) == 1 and not results[0].ok and results[0].rolled_back
    assert results[0].phase == "signature"
    assert "no longer signed" in results[0].error and "util.py" in results[0].error
    assert f"re-sign with `flx-ipy sign {package}`" in results[0].error
    assert live.hello() == "hello #2" and rec.status == "running"  # old code, state kept
    # an import of the changed module by any path still runs the verified bytes
    sign_plugin(package, keys["trusted"])
    result = pm.reload(rec.name)
    assert result.ok, result.error
    assert live.hello() == "howdy #3" and rec.signature.status == "signed"


def test_warn_applies_a_hot_edit_and_says_modified(package: Path, keys: dict[str, Path], managers) -> None:  # type: ignore[no-untyped-def]
    sign_plugin(package, keys["trusted"])
    pm = managers("warn", keys["allowed"])
    rec = pm.load(str(package), start=True)
    live = pm.get(rec.name)
    write_plugin(package / "util.py", UTIL.replace("hello", "howdy"))
    (result,) = pm.apply_changes([package / "util.py"])
    assert result.ok
    assert live.hello() == "howdy #1"
    assert rec.signature.status == "modified" and rec.signature.files == ["util.py"]
    assert rec.signature.status != "signed"
    ev = [e for e in pm.events.history() if e.kind == "signature_checked"][-1]
    assert ev.details["status"] == "modified" and ev.details["files"] == ["util.py"]


def test_off_applies_a_hot_edit_without_checking(package: Path, keys: dict[str, Path], managers) -> None:  # type: ignore[no-untyped-def]
    sign_plugin(package, keys["trusted"])
    pm = managers("off", keys["allowed"])
    rec = pm.load(str(package), start=True)
    write_plugin(package / "util.py", UTIL.replace("hello", "howdy"))
    (result,) = pm.apply_changes([package / "util.py"])
    assert result.ok and pm.get(rec.name).hello() == "howdy #1" and rec.signature is None


def test_require_refuses_a_module_added_after_the_check(package: Path, keys: dict[str, Path], managers) -> None:  # type: ignore[no-untyped-def]
    """The bytes verified at load are pinned: a file dropped in later is not imported."""
    sign_plugin(package, keys["trusted"])
    pm = managers("require", keys["allowed"])
    pm.load(str(package))
    (package / "late.py").write_text("X = 1\n")
    with pytest.raises(PluginLoadError, match="not part of the plugin when its signature was checked"):
        importlib.import_module(f"{package.name}.late")
    # and a module edited after the check imports as verified, not as it is on disk now
    assert sys.modules[f"{package.name}.util"].greeting() == "hello"


def test_policy_can_change_at_runtime(package: Path, keys: dict[str, Path], managers) -> None:  # type: ignore[no-untyped-def]
    pm = managers("off", keys["allowed"])
    rec = pm.load(str(package), start=True)
    pm.signature_policy = "require"
    write_plugin(package / "util.py", UTIL.replace("hello", "howdy"))
    (result,) = pm.apply_changes([package / "util.py"])
    assert not result.ok and result.rolled_back and "unsigned" in result.error
    with pytest.raises(ValueError, match="off, warn, require"):
        pm.signature_policy = "strict"
    assert pm.signature_policy == "require" and rec.status == "running"


def test_both_panels_get_the_signature(package: Path, keys: dict[str, Path], managers) -> None:  # type: ignore[no-untyped-def]
    """The row the dashboard and the side panel render (protocol 1.1 ``PluginView.signature``)."""
    from flx_ipy.uistate import UIState
    from flx_ipy.widgets import render

    sign_plugin(package, keys["trusted"])
    pm = managers("warn", keys["allowed"])
    state = UIState(pm).attach()
    try:
        rec = pm.load(str(package), start=True)
        row = next(r for r in state.snapshot()["plugins"] if r["name"] == rec.name)
        assert row["signature"] == {"status": "signed", "signer": "alice@example.com", "files": []}
        assert "signed by alice@example.com" in render.name_html(row)
        write_plugin(package / "util.py", UTIL.replace("hello", "howdy"))
        pm.apply_changes([package / "util.py"])
        row = next(r for r in state.snapshot()["plugins"] if r["name"] == rec.name)
        assert row["signature"]["status"] == "modified" and row["signature"]["files"] == ["util.py"]
        assert "modified: util.py" in render.name_html(row)
    finally:
        state.detach()


def test_a_rolled_back_reload_leaves_the_running_versions_bytes_pinned(package: Path, keys: dict[str, Path],  # type: ignore[no-untyped-def]
                                                                       managers) -> None:
    """A module imported only later must run the version that is running, not the one that failed."""
    write_plugin(package / "lazy.py", "VALUE = 1\n")
    sign_plugin(package, keys["trusted"])
    pm = managers("warn", keys["allowed"])
    rec = pm.load(str(package), start=True)
    write_plugin(package / "lazy.py", "VALUE = 2\n")
    write_plugin(package / "__init__.py", INIT.format(cls="Greeter", name=rec.name).replace(
        "self.count = getattr(self, \"count\", 0)", "raise RuntimeError('broken start')"))
    (result,) = pm.apply_changes([package / "__init__.py"])
    assert not result.ok and result.rolled_back and result.phase == "start"
    assert rec.signature.status == "signed"  # the running version is still the signed one
    assert importlib.import_module(f"{package.name}.lazy").VALUE == 1


def test_require_refuses_an_unsigned_isolated_plugin_before_a_worker_starts(tmp_path: Path, keys: dict[str, Path],  # type: ignore[no-untyped-def]
                                                                            managers) -> None:
    from flx_ipy.testing import plugin_source

    f = write_plugin(tmp_path / "iso_unsigned.py", plugin_source("iso_unsigned"))
    pm = managers("require", keys["allowed"])
    with pytest.raises(PluginLoadError, match="unsigned"):
        pm.load(str(f), isolated=True)
    assert "iso_unsigned" not in pm.plugins
