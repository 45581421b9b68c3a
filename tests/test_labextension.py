"""The TypeScript side panel's own checks, run by the README's test command.

``jlpm test`` runs the jest unit tests of the DOM-free parts (store, requests, protocol,
formatters); ``jlpm lint`` runs ESLint and ``tsc`` type-checks the sources and the tests. They
need the npm tree ``scripts/setup`` installs in ``labextension/node_modules``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXT = Path(__file__).resolve().parents[1] / "labextension"
JLPM = shutil.which("jlpm", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))

pytestmark = [pytest.mark.labextension, pytest.mark.timeout(300)]


def _missing() -> str | None:
    if JLPM is None:
        return "jlpm is not installed (pip install jupyter-builder; scripts/setup does it)"
    if not (EXT / "node_modules" / ".bin" / "jest").exists():
        return "labextension/node_modules is missing (scripts/setup runs `jlpm install --immutable` there)"
    return None


@pytest.fixture
def jlpm() -> str:
    problem = _missing()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the TypeScript checks: {problem}")
        pytest.skip(problem)
    assert JLPM is not None
    return JLPM


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}  # jest's CI mode changes nothing we need
    env["FORCE_COLOR"] = "0"
    return subprocess.run(cmd, cwd=EXT, capture_output=True, text=True, env=env, timeout=280, check=False)


def test_typescript_unit_tests_pass(jlpm: str) -> None:
    out = _run(jlpm, "test", "--ci")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert "Tests:" in out.stderr, out.stderr[-4000:]  # jest's summary (on stderr): tests did run


def test_typescript_lints_and_typechecks_clean(jlpm: str) -> None:
    lint = _run(jlpm, "lint")
    assert lint.returncode == 0, lint.stdout[-4000:] + lint.stderr[-4000:]
    for project in ("tsconfig.json", "test/tsconfig.json"):
        tsc = _run(jlpm, "tsc", "--noEmit", "-p", project)
        assert tsc.returncode == 0, f"tsc -p {project}:\n{tsc.stdout[-4000:]}{tsc.stderr[-4000:]}"
