"""The core and magics tests on every supported Python (``.ci/run`` runs this after the suite).

``nox`` (``nox -s core``, or ``nox -s core-3.12`` for one) makes a venv per interpreter, installs
flx_ipy's runtime dependencies and pytest, and runs the tests that need no JupyterLab, browser or
kernel: the core's and the magics' (IPython's in-process shell). The whole suite, browser and
notebooks included, runs once, on the main Python, in ``scripts/test``.

The package is tested from this checkout (``PYTHONPATH``), not installed: an install would build
the JupyterLab extension (node) once per Python for nothing these tests use.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import nox
import tomllib

ROOT = Path(__file__).parent
#: 3.11 is the main Python: scripts/test runs the whole suite on it
PYTHONS = ["3.10", "3.12", "3.13"]
TESTS = [
    "tests/test_layers.py",
    "tests/test_public_api.py",
    "tests/test_lifecycle.py",
    "tests/test_reload.py",
    "tests/test_reload_peers.py",
    "tests/test_toplevel.py",
    "tests/test_watch_scope.py",
    "tests/test_rules.py",
    "tests/test_seams.py",
    "tests/test_watcher.py",
    "tests/test_discovery.py",
    "tests/test_validators.py",
    "tests/test_scheduler.py",
    "tests/test_magics.py",
]

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["core"]

# pyenv's interpreters (this machine kind has 3.10-3.13 there) are found like any on PATH
_pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
_bins = sorted(glob.glob(os.path.join(_pyenv, "versions", "3.*", "bin")))
if _bins:
    os.environ["PATH"] = os.pathsep.join([*_bins, os.environ.get("PATH", "")])


def _requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    test = [r for r in project["optional-dependencies"]["test"] if r.split(">")[0].split("=")[0] in
            ("pytest", "pytest-timeout")]
    return [*project["dependencies"], *test]


@nox.session(python=PYTHONS)
def core(session: nox.Session) -> None:
    """The core and magics tests on one Python."""
    session.install(*_requirements())
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS, *session.posargs,
                env={"PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"})
