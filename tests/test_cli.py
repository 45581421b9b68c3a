"""``flx-ipy``: every verb through the real console entry (a subprocess of ``python -m flx_ipy``),
its exit codes (0 ok, 1 check failed, 2 bad usage), ``--json``, one-line errors and ``--help``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flx_ipy.testing import plugin_source, write_plugin

ROOT = Path(__file__).resolve().parent.parent
VERBS = ["list", "validate", "new", "keygen", "sign", "verify", "audit"]


def flx(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "flx_ipy", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120, check=False)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    err = proc.stderr.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    return err


def test_help_for_every_verb() -> None:
    top = flx("--help")
    assert top.returncode == 0
    for verb in VERBS:
        assert verb in top.stdout
        sub = flx(verb, "--help")
        assert sub.returncode == 0 and f"flx-ipy {verb}" in sub.stdout, sub.stderr
    for sub_verb in ("tail", "verify"):
        assert flx("audit", sub_verb, "--help").returncode == 0


def test_top_level_help_groups_every_verb_with_one_line() -> None:
    text = flx("--help").stdout
    groups = {"develop:": ["list", "validate", "new"], "sign and audit:": ["keygen", "sign", "verify", "audit"],
              "operate:": ["serve"], "share (plugin indexes):": ["index", "search", "install", "publish"]}
    lines = text.splitlines()
    for heading, verbs in groups.items():
        at = lines.index(heading)
        listed = [line.split()[0] for line in lines[at + 1:at + 1 + len(verbs)]]
        assert listed == verbs, (heading, listed)
        assert all(len(line.split()) > 1 for line in lines[at + 1:at + 1 + len(verbs)])  # each has its description
    assert sum(line.startswith("    list ") for line in lines) == 0  # not listed a second time, flat


def test_unknown_option_names_the_verb_and_its_help() -> None:
    proc = flx("validate", "--bogus", "x")
    assert proc.returncode == 2
    assert one_line_error(proc) == "flx-ipy validate: unrecognized arguments: --bogus (see `flx-ipy validate --help`)"
    proc = flx("audit", "verify", "log.jsonl", "--zz")
    assert proc.returncode == 2 and "(see `flx-ipy audit verify --help`)" in one_line_error(proc)


def test_list_of_nothing_hints_at_the_command_not_a_magic(tmp_path: Path) -> None:
    proc = flx("list", str(tmp_path), "--no-entry-points")
    assert proc.returncode == 0
    assert "`flx-ipy list DIR`" in proc.stdout and "%plugin" not in proc.stdout


def test_bad_usage_is_exit_2_and_one_line() -> None:
    for args in (["frobnicate"], ["verify"], ["audit"], ["validate", "/no/such/path"], ["new", "9lives"],
                 ["sign", "/no/such", "--key", "/no/key"], ["audit", "tail", "/no/such.jsonl"]):
        proc = flx(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert one_line_error(proc).startswith("flx-ipy"), args
    assert flx().returncode == 2  # no verb: the help, on stderr


def test_list_and_validate(tmp_path: Path) -> None:
    good = write_plugin(tmp_path / "plugins" / "cli_good.py", plugin_source("cli_good"))
    write_plugin(tmp_path / "plugins" / "cli_broken.py", "from flx_ipy import Plugin\nclass X(Plugin:\n")
    listed = flx("list", str(tmp_path / "plugins"), "--no-entry-points", "--json")
    assert listed.returncode == 0
    rows = {r["target"].split(":")[0].rpartition("/")[2]: r for r in json.loads(listed.stdout)}
    assert rows["cli_good.py"]["name"] == "cli_good" and rows["cli_good.py"]["error"] is None
    assert rows["cli_broken.py"]["error"]
    assert "cli_good" in flx("list", str(tmp_path / "plugins"), "--no-entry-points").stdout

    ok = flx("validate", str(good), "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["ok"] is True
    bad = write_plugin(tmp_path / "cli_bad.py", plugin_source("cli_bad", version="one"))
    proc = flx("validate", str(bad), "--json")
    assert proc.returncode == 1
    problem = json.loads(proc.stdout)["problems"][0]
    assert problem["field"] == "metadata.version" and problem["line"] and problem["fix"]
    human = flx("validate", str(bad))
    assert human.returncode == 1 and f"{bad}:" in human.stdout and "PEP 440" in human.stdout


def test_new_makes_a_project_that_validates_and_whose_tests_pass(tmp_path: Path) -> None:
    proc = flx("new", "shiny-thing", "--dir", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    project = Path(json.loads(proc.stdout)["project"])
    assert project == tmp_path / "shiny-thing"
    files = set(json.loads(proc.stdout)["files"])
    assert {"pyproject.toml", "README.md", "src/shiny_thing/plugin.py", "tests/test_plugin.py",
            "notebooks/try_it.ipynb"} <= files
    text = (project / "src" / "shiny_thing" / "plugin.py").read_text()
    for hook in ("initialize", "start", "stop", "health_check", "save_state", "restore_state"):
        assert f"def {hook}(" in text
    assert flx("validate", str(project)).returncode == 0
    assert 'shiny_thing = "shiny_thing.plugin:ShinyThing"' in (project / "pyproject.toml").read_text()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(project / "src"), str(ROOT)])}
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project,
                           capture_output=True, text=True, env=env, timeout=120, check=False)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "3 passed" in tests.stdout
    again = flx("new", "shiny-thing", "--dir", str(tmp_path))
    assert again.returncode == 1 and "already exists" in one_line_error(again)


@pytest.mark.slow
def test_the_new_project_builds_a_wheel_with_its_entry_point(tmp_path: Path) -> None:
    """Installable: hatchling (already in this environment) builds it offline, entry point included."""
    pytest.importorskip("hatchling")
    import zipfile

    assert flx("new", "wheelie", "--dir", str(tmp_path)).returncode == 0
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(tmp_path / "dist"), str(tmp_path / "wheelie")],
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    (wheel,) = (tmp_path / "dist").glob("wheelie-0.1.0-*.whl")
    with zipfile.ZipFile(wheel) as z:
        eps = z.read("wheelie-0.1.0.dist-info/entry_points.txt").decode()
        assert "[flx_ipy.plugins]" in eps and "wheelie = wheelie.plugin:Wheelie" in eps
        assert "wheelie/plugin.py" in z.namelist()


def test_keygen_sign_verify(tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    key = tmp_path / "k"
    made = flx("keygen", str(key), "--principal", "erin@example.com", "--json")
    assert made.returncode == 0, made.stderr
    info = json.loads(made.stdout)
    assert oct(key.stat().st_mode & 0o777) == "0o600" and Path(info["public_key"]).is_file()
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(info["allowed_signers"] + "\n")
    assert info["allowed_signers"].startswith('erin@example.com namespaces="flx-ipy" ssh-ed25519 ')
    again = flx("keygen", str(key))
    assert again.returncode == 1 and "already exists" in one_line_error(again)

    plugin = write_plugin(tmp_path / "cli_signed.py", plugin_source("cli_signed"))
    signed = flx("sign", str(plugin), "--key", str(key), "--json")
    assert signed.returncode == 0 and json.loads(signed.stdout)["principal"] == "erin@example.com"
    ok = flx("verify", str(plugin), "--allowed-signers", str(allowed), "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["status"] == "signed"
    write_plugin(plugin, plugin_source("cli_signed", body="X = 1"))
    bad = flx("verify", str(plugin), "--allowed-signers", str(allowed))
    assert bad.returncode == 1 and "modified" in bad.stdout and "changed: cli_signed.py" in bad.stdout
    assert bad.stdout.count("cli_signed.py") == 2, bad.stdout  # the unit, then the change: not listed twice
    as_json = json.loads(flx("verify", str(plugin), "--allowed-signers", str(allowed), "--json").stdout)
    assert as_json["status"] == "modified" and as_json["files"] == ["cli_signed.py"]
    missing = flx("verify", str(plugin), "--allowed-signers", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "cannot read allowed_signers" in one_line_error(missing)


def test_audit_tail_and_verify(tmp_path: Path) -> None:
    from flx_ipy.core.audit import AuditLog

    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    for i in range(5):
        log.write({"operation": "reload", "plugin": f"p{i}", "outcome": "ok", "origin": "api"})
    log.close()
    shown = flx("audit", "tail", str(path), "-n", "2")
    assert shown.returncode == 0 and "p4" in shown.stdout and "p2" not in shown.stdout
    as_json = json.loads(flx("audit", "tail", str(path), "-n", "2", "--json").stdout)
    assert [r["plugin"] for r in as_json] == ["p3", "p4"]
    ok = flx("audit", "verify", str(path))
    assert ok.returncode == 0 and "5 records" in ok.stdout
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"p1"', '"px"')
    path.write_text("\n".join(lines) + "\n")
    broken = flx("audit", "verify", str(path), "--json")
    assert broken.returncode == 1
    report = json.loads(broken.stdout)
    assert report["ok"] is False and report["broken_line"] == 3
    assert f"{path}:3: hash chain broken" in flx("audit", "verify", str(path)).stdout
