"""With every policy off, ``import flx_ipy`` and ``%load_ext flx_ipy`` import no crypto and no
jsonschema (nor ``jupyter_events``): ``%load_ext`` must not get slower for signing nobody asked
for. Checked in fresh interpreters, where nothing else imported them first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("cryptography", "jsonschema", "jupyter_events")


def _run(code: str, tmp_path: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JUPYTER_DATA_DIR": str(tmp_path / "jupyter"),
           "IPYTHONDIR": str(tmp_path / "ipython")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout.strip()


def test_import_flx_ipy_imports_no_crypto_or_jsonschema(tmp_path: Path) -> None:
    code = ("import sys, flx_ipy, flx_ipy.cli; pm = flx_ipy.PluginManager(entry_points=False); "
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    assert _run(code, tmp_path) == "[]"


def test_load_ext_with_policies_off_imports_no_crypto_or_jsonschema(tmp_path: Path) -> None:
    plugin = tmp_path / "lazy_plugin.py"
    plugin.write_text("from flx_ipy import Plugin, PluginMetadata\n"
                      "class P(Plugin):\n    metadata = PluginMetadata(name='lazy_plugin')\n")
    code = ("import sys\n"
            "from IPython.testing.globalipapp import start_ipython\n"
            "ip = start_ipython()\n"
            "ip.run_line_magic('load_ext', 'flx_ipy')\n"
            f"ip.run_line_magic('plugin', 'load {plugin} --start')\n"
            "ip.run_line_magic('plugin', 'list')\n"
            "from flx_ipy import get_manager\n"
            "assert get_manager().audit is not None  # the audit log is on by default, and stays cheap\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    assert _run(code, tmp_path).splitlines()[-1] == "[]"


def test_a_policy_that_needs_crypto_imports_it_then(tmp_path: Path) -> None:
    code = ("import sys, flx_ipy; flx_ipy.PluginManager(entry_points=False, signature_policy='warn'); "
            "print('cryptography' in sys.modules)")
    assert _run(code, tmp_path) == "False"  # not even then: only when a plugin is checked
