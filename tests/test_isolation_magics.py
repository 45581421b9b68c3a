"""``%plugin load --isolated`` and what ``%plugin list`` shows about a worker."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.testing.globalipapp import start_ipython

from flx_ipy import PluginManager
from flx_ipy.core.manager import _set_default
from flx_ipy.testing import plugin_source, write_plugin

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="worker sandbox is Linux-only")


@pytest.fixture(scope="module")
def shell() -> Any:
    from IPython import get_ipython

    return start_ipython() or get_ipython()


@pytest.fixture
def ip(shell: Any, tmp_path: Path) -> Iterator[Any]:
    pm = PluginManager(entry_points=False, data_root=tmp_path / "data", hook_timeout=20.0)
    _set_default(pm)
    shell.run_line_magic("load_ext", "flx_ipy")
    shell.pm = pm
    try:
        yield shell
    finally:
        shell.run_line_magic("unload_ext", "flx_ipy")
        pm.close()
        _set_default(None)


def test_load_isolated_and_list_shows_the_worker(ip: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_plugin(tmp_path / "plugins" / "iso_counter.py", plugin_source("counter", "1.0.0", ""))
    ip.run_line_magic("plugin", f"load {path} --isolated --memory-mb 300 --start")
    out = capsys.readouterr().out
    rec = ip.pm.record("counter")
    assert rec.isolated and rec.status == "running"
    assert f"isolated in worker pid {rec.worker.pid}" in out and "enforced:" in out
    text = repr(ip.run_line_magic("plugin", "list"))
    assert f"pid {rec.worker.pid}" in text and "MB" in text and "s CPU" in text
    for layer in rec.worker.enforced:
        assert layer in text
    ip.run_line_magic("plugin", "unload counter")
    assert "counter" not in ip.pm.plugins


def test_limits_without_isolated_is_a_usage_error(ip: Any, tmp_path: Path) -> None:
    path = write_plugin(tmp_path / "plugins" / "iso_counter2.py", plugin_source("counter", "1.0.0", ""))
    result = ip.run_cell(f"%plugin load {path} --memory-mb 100")
    assert result.error_in_exec is not None and "need --isolated" in str(result.error_in_exec)
    assert ip.pm.plugins == {}
