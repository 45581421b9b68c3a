"""The one IPython test shell, with flx_ipy loaded on a fresh manager — shared by the modules that
test the magics (``test_magics``, ``test_magics_trust``, ``test_watch_scope``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flx_ipy import PluginManager
from flx_ipy.core import loader
from flx_ipy.core.manager import _set_default


def test_shell() -> Any:
    """IPython's global test shell: one per process, whichever module started it first."""
    from IPython.terminal.interactiveshell import TerminalInteractiveShell
    from IPython.testing.globalipapp import start_ipython

    return start_ipython() or TerminalInteractiveShell.instance()


test_shell.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@contextmanager
def loaded(shell: Any, tmp_path: Path, *, audit_log: Path | None = None,
           **manager: Any) -> Iterator[Any]:
    """``%load_ext flx_ipy`` on a fresh manager (``shell.pm``); unloaded, pins and plugin modules
    forgotten afterwards. ``audit_log`` sets ``c.PluginMagics.audit_log`` for the load."""
    before = set(sys.modules)
    settings: dict[str, Any] = {"health_timeout": 1.0, "hook_timeout": 5.0, **manager}
    pm = PluginManager(entry_points=False, data_root=tmp_path / "data", **settings)
    _set_default(pm)
    if audit_log is not None:
        shell.config.PluginMagics.audit_log = str(audit_log)
    shell.run_line_magic("load_ext", "flx_ipy")
    shell.pm = pm
    try:
        yield shell
    finally:
        shell.run_line_magic("unload_ext", "flx_ipy")
        if audit_log is not None:
            del shell.config["PluginMagics"]
        pm.close()
        _set_default(None)
        loader.unpin()
        loader.forget_modules([m for m in set(sys.modules) - before if m.startswith(loader.ALIAS_ROOT + ".")])
