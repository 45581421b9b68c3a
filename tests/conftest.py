"""Shared fixtures: a fresh manager per test, plugin folders in tmp_path, no leftovers."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from flx_ipy import PluginManager
from flx_ipy.core import loader
from flx_ipy.testing import plugin_source, write_plugin


@pytest.fixture
def pm(tmp_path: Path) -> Iterator[PluginManager]:
    before = set(sys.modules)
    manager = PluginManager(entry_points=False, data_root=tmp_path / "data", health_timeout=1.0,
                            hook_timeout=5.0)
    yield manager
    manager.close()
    loader.forget_modules([m for m in set(sys.modules) - before if m.startswith(loader.ALIAS_ROOT + ".")])


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    d = tmp_path / "plugins"
    d.mkdir()
    return d


@pytest.fixture
def make_plugin(plugin_dir: Path):  # type: ignore[no-untyped-def]
    """``make_plugin("counter", body=...) -> path``: writes a plugin module into plugin_dir."""

    def make(name: str = "counter", body: str = "", *, version: str = "1.0.0", cls: str = "Counter",
             requires: tuple[str, ...] = (), header: str = "", filename: str | None = None) -> Path:
        path = plugin_dir / (filename or f"{name}.py")
        write_plugin(path, plugin_source(name, version, body, cls=cls, requires=requires, header=header))
        return path

    return make
