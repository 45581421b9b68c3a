"""What a watch covers (exactly what was asked), saves made while not watching, and polling —
on the real file system, in the three layouts (one-file plugin, package ``__init__``, helper)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from layouts import LAYOUTS, Layout
from magic_shell import loaded, test_shell

from flx_ipy import PluginManager
from flx_ipy.core import polling
from flx_ipy.testing import plugin_source, write_plugin

CODE = """
def version():
    return "{v}"
"""


def reloaded(pm: PluginManager, name: str) -> list[str]:
    return [e.kind for e in pm.events.history() if e.plugin == name and e.kind in ("reloaded", "reload_failed")]


@pytest.fixture(params=LAYOUTS)
def lay(request: pytest.FixtureRequest, pm: PluginManager, plugin_dir: Path) -> Layout:
    return Layout(request.param, pm, plugin_dir)


@pytest.fixture
def neighbour(pm: PluginManager, plugin_dir: Path) -> Path:
    """Another one-file plugin in the same folder."""
    path = write_plugin(plugin_dir / "other.py", plugin_source("other", body="def v(self):\n    return 1"))
    pm.load(str(path), start=True)
    return path


def _applied(pm: PluginManager) -> threading.Event:
    done = threading.Event()
    pm.subscribe(lambda ev: done.set() if ev.kind in ("reloaded", "reload_failed") and ev.plugin == "peer" else None)
    return done


# ----------------------------------------------------------------------------- 6. exact scope
def test_watching_a_file_or_plugin_watches_exactly_that(pm: PluginManager, lay: Layout, neighbour: Path) -> None:
    lay.write(CODE.format(v="v1"))
    watched = lay.path if lay.kind != "package" else lay.target  # a file, or the package folder
    done = _applied(pm)
    w = pm.watch([watched])
    try:
        assert w.paths == [str(watched)]
        write_plugin(neighbour, plugin_source("other", body="def v(self):\n    return 2"))  # not watched
        write_plugin(lay.path, lay.source(CODE.format(v="v2")))
        assert done.wait(10)
        assert lay.mod.version() == "v2"
        assert reloaded(pm, "other") == [] and pm.get("other").v() == 1
        assert str(neighbour) in pm.pending_changes()
    finally:
        pm.unwatch()


# ----------------------------------------------------------------------------- 5. pending saves
def test_a_save_made_while_not_watching_is_applied_when_watching_resumes(pm: PluginManager, lay: Layout) -> None:
    lay.write(CODE.format(v="v1"))
    write_plugin(lay.path, lay.source(CODE.format(v="v2")))  # nobody watches
    assert pm.pending_changes() == [str(lay.path)]
    done = _applied(pm)
    w = pm.watch()
    try:
        assert done.wait(10)
        assert lay.mod.version() == "v2" and pm.pending_changes() == []
        assert w.pending_at_start == [str(lay.path)]
    finally:
        pm.unwatch()


def test_pending_saves_can_be_left_alone(pm: PluginManager, lay: Layout) -> None:
    lay.write(CODE.format(v="v1"))
    write_plugin(lay.path, lay.source(CODE.format(v="v2")))
    w = pm.watch(apply_pending=False)
    try:
        assert w.pending_at_start == [] and pm.pending_changes() == [str(lay.path)]
    finally:
        pm.unwatch()


# ----------------------------------------------------------------------------- polling
def test_forced_polling_applies_saves(pm: PluginManager, lay: Layout) -> None:
    lay.write(CODE.format(v="v1"))
    done = _applied(pm)
    w = pm.watch(force_polling=True, poll_delay_ms=20)
    try:
        assert w.polling and "polling" in repr(w)
        write_plugin(lay.path, lay.source(CODE.format(v="v2")))
        assert done.wait(10)
        assert lay.mod.version() == "v2"
    finally:
        pm.unwatch()


MOUNTS = """\
/dev/vda1 / ext4 rw,relatime 0 0
server:/export /mnt/share nfs4 rw,relatime 0 0
C:\\134 /mnt/c 9p rw,noatime 0 0
/dev/vdb /mnt/share/local ext4 rw 0 0
tmpfs /mnt/my\\040dir tmpfs rw 0 0
"""


@pytest.mark.parametrize(("folder", "poll"), [
    ("/home/u/plugins", False), ("/mnt/share/plugins", True), ("/mnt/c/Users/u", True),
    ("/mnt/share/local/plugins", False), ("/mnt/my dir/x", False),
])
def test_polling_is_chosen_where_the_mount_delivers_no_events(folder: str, poll: bool,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for var in polling.ENV:
        monkeypatch.delenv(var, raising=False)
    chosen, why = polling.resolve(None, [folder], MOUNTS)
    assert chosen is poll, why
    assert polling.resolve(False, [folder], MOUNTS)[0] is False  # an explicit setting wins
    monkeypatch.setenv("WATCHFILES_FORCE_POLLING", "1")
    assert polling.resolve(None, ["/home/u"], MOUNTS) == (True, "set in the environment")


@pytest.fixture
def ip(tmp_path: Path) -> Iterator[Any]:
    """The (one, global) IPython test shell with flx_ipy loaded on a fresh manager."""
    with loaded(test_shell(), tmp_path) as ip:
        yield ip


def test_polling_setting_in_the_magics(ip: Any, plugin_dir: Path) -> None:
    path = write_plugin(plugin_dir / "mp.py", plugin_source("mp"))
    ip.run_line_magic("plugin", f"load {path}")
    ip.run_line_magic("config", "PluginMagics.force_polling = True")
    ip.run_line_magic("plugin", "watch mp")
    try:
        assert ip.pm.watcher.polling and ip.pm.watched_paths == [str(path)]
    finally:
        ip.run_line_magic("plugin", "unwatch")

