"""``%plugin`` in a real IPython shell (``IPython.testing.globalipapp``): parsing, output,
errors, configuration, completion, the awaited top-level form and ``%reload_ext``.

The shell here has no event loop between cells (like terminal IPython without ``%gui
asyncio``), so these tests also cover the ``pre_execute`` fallback: a watched save is applied
just before the next cell, never during one.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from magic_shell import loaded, test_shell

import flx_ipy
from flx_ipy import PluginManager
from flx_ipy.core.manager import _set_default
from flx_ipy.extension import current
from flx_ipy.magics import rewrite_awaitable
from flx_ipy.testing import plugin_source, wait_for, write_plugin

HEALTH = 'def health_check(self):\n    return HealthStatus.healthy("fine")\n'
ASYNC_START = """
async def start(self):
    import asyncio, threading
    await asyncio.sleep(0.01)
    self.loop_id = id(asyncio.get_running_loop())
    self.thread = threading.current_thread().name
    self.done = True
"""


@pytest.fixture(scope="module")
def shell() -> Any:
    return test_shell()


@pytest.fixture
def ip(shell: Any, tmp_path: Path) -> Iterator[Any]:
    """The shell with flx_ipy loaded on a fresh manager; unloaded and cleaned afterwards."""
    with loaded(shell, tmp_path) as ip:
        yield ip


def run(ip: Any, cell: str) -> Any:
    """Run a cell; fail the test on an unexpected error, return the result."""
    result = ip.run_cell(cell)
    if result.error_in_exec is not None and not isinstance(result.error_in_exec, UsageError):
        raise result.error_in_exec
    return result


@pytest.fixture
def counter(tmp_path: Path) -> Path:
    return write_plugin(tmp_path / "plugins" / "mg_counter.py", plugin_source("counter", "1.0.0", HEALTH))


# ------------------------------------------------------------------------- parsing and output
def test_help_lists_every_subcommand(ip: Any, capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_line_magic("plugin", "--help")
    out = capsys.readouterr().out
    for sub in ("discover", "list", "load TARGET [--start]", "start|stop|reload|unload NAME", "watch",
                "unwatch", "health", "state NAME", "get NAME", "panel", "log [-n N]", "validate PATH"):
        assert sub in out
    assert "usage" in out.lower() or "%plugin [--start]" in out


def test_the_whole_loop_by_magics(ip: Any, counter: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(ip, f"%plugin load {counter} --start")
    assert "counter 1.0.0 running" in capsys.readouterr().out
    table = ip.run_line_magic("plugin", "list")
    text = repr(table)
    assert "counter" in text and "running" in text and "1.0.0" in text
    assert "<table" in table._repr_html_()
    run(ip, "p = %plugin get counter")
    assert ip.user_ns["p"] is ip.pm.get("counter")
    run(ip, "%plugin stop counter")
    assert ip.pm.status("counter") == "stopped"
    run(ip, "%plugin start counter")
    write_plugin(counter, plugin_source("counter", "1.1.0", HEALTH))
    run(ip, "%plugin reload counter")
    assert "counter: reloaded in" in capsys.readouterr().out
    assert ip.user_ns["p"].metadata.version == "1.1.0"
    health = ip.run_line_magic("plugin", "health counter")
    assert "healthy" in repr(health) and "fine" in repr(health)
    assert isinstance(ip.run_line_magic("plugin", "state counter"), dict)
    log = repr(ip.run_line_magic("plugin", "log -n 50"))
    assert "reloaded" in log and "started" in log
    run(ip, "%plugin unload counter")
    assert "counter" not in ip.pm.plugins


def test_discover_and_validate(ip: Any, counter: Path) -> None:
    found = ip.run_line_magic("plugin", f"discover {counter.parent}")
    assert "counter" in repr(found) and "mg_counter.py" in repr(found)
    assert repr(ip.run_line_magic("plugin", f"validate {counter}")).endswith(": ok")
    bad = write_plugin(counter.parent / "bad_meta.py", plugin_source("bad", "not-a-version"))
    assert "problem" in repr(ip.run_line_magic("plugin", f"validate {bad}"))


def test_load_by_discovered_name(ip: Any, counter: Path) -> None:
    ip.run_line_magic("plugin", f"discover {counter.parent}")
    ip.run_line_magic("plugin", "load counter")
    assert ip.pm.status("counter") == "loaded"


# ------------------------------------------------------------------------- errors
def _usage_error(ip: Any, line: str) -> UsageError:
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("plugin", line)
    assert type(info.value) is UsageError  # IPython shortens only this exact class
    text = str(info.value)
    assert "\n" not in text, text
    assert "flx_ipy/" not in text and "Traceback" not in text
    return info.value


def test_errors_are_one_line_usage_errors(ip: Any, counter: Path) -> None:
    msg = str(_usage_error(ip, "start nope"))
    assert "nope" in msg and "%plugin load nope" in msg and "nothing running" in msg
    assert "unknown subcommand" in str(_usage_error(ip, "frobnicate"))
    assert "needs a plugin name" in str(_usage_error(ip, "stop"))
    ip.run_line_magic("plugin", f"load {counter} --start")
    msg = str(_usage_error(ip, "start counter"))
    assert "already running" in msg and "[running: counter]" in msg
    assert "neither a loaded plugin nor an existing path" in str(_usage_error(ip, "watch /no/such/dir"))


def test_a_failing_hook_names_plugin_and_hides_internals(ip: Any, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    body = "def start(self):\n    raise ValueError('boom at start')\n"
    path = write_plugin(tmp_path / "mg_broken.py", plugin_source("broken", "1.0.0", body))
    ip.run_line_magic("plugin", f"load {path}")
    msg = str(_usage_error(ip, "start broken"))
    assert "broken" in msg and "boom at start" in msg and "%plugin error broken" in msg
    ip.run_line_magic("plugin", "error broken")
    out = capsys.readouterr().out
    assert "mg_broken.py" in out and "raise ValueError" in out
    assert "flx_ipy/core" not in out  # trimmed to the plugin's own frames
    verbose = repr(ip.run_line_magic("plugin", "log -v"))
    assert "--- broken ---" in verbose and "mg_broken.py" in verbose


def test_a_failed_reload_is_an_error_and_the_old_version_keeps_running(ip: Any, counter: Path) -> None:
    ip.run_line_magic("plugin", f"load {counter} --start")
    write_plugin(counter, "class Oops(:\n")
    msg = str(_usage_error(ip, "reload counter"))
    assert "previous version still running" in msg and "%plugin error counter" in msg
    assert ip.pm.status("counter") == "running"


def test_run_cell_shows_the_one_line_form(ip: Any, capsys: pytest.CaptureFixture[str]) -> None:
    result = ip.run_cell("%plugin stop ghost")
    assert type(result.error_in_exec) is UsageError
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "UsageError: no plugin named 'ghost'" in text
    assert "Traceback" not in text


# ------------------------------------------------------------------------- async hooks
def test_top_level_start_awaits_an_async_hook_on_the_shells_loop(ip: Any, tmp_path: Path) -> None:
    from IPython.core.async_helpers import get_asyncio_loop

    path = write_plugin(tmp_path / "mg_async.py", plugin_source("aplug", "1.0.0", ASYNC_START))
    run(ip, f"%plugin load {path}")
    run(ip, "%plugin start aplug")
    p = ip.pm.get("aplug")
    assert p.done is True  # the cell waited for the hook
    assert p.loop_id == id(get_asyncio_loop())  # it ran on the shell's loop, not a private one
    assert p.thread == threading.current_thread().name


def test_inside_a_def_the_sync_form_runs_the_hook_on_the_hook_loop(ip: Any, tmp_path: Path) -> None:
    path = write_plugin(tmp_path / "mg_async2.py", plugin_source("aplug2", "1.0.0", ASYNC_START))
    run(ip, f"%plugin load {path}")
    run(ip, "def go():\n    %plugin start aplug2\ngo()")
    p = ip.pm.get("aplug2")
    assert p.done is True and p.thread == "flx_ipy-hooks"


def test_await_astart_works_too(ip: Any, tmp_path: Path) -> None:
    path = write_plugin(tmp_path / "mg_async3.py", plugin_source("aplug3", "1.0.0", ASYNC_START))
    run(ip, f"%plugin load {path}")
    run(ip, "import flx_ipy\nawait flx_ipy.get_manager().astart('aplug3')")
    assert ip.pm.get("aplug3").done is True


def test_rewrite_only_top_level_hook_commands() -> None:
    src = [
        "get_ipython().run_line_magic('plugin', 'start x')\n",
        "r = get_ipython().run_line_magic('plugin', 'reload x')\n",
        "p = get_ipython().run_line_magic('plugin', 'get x')\n",
        "def f():\n",
        "    get_ipython().run_line_magic('plugin', 'start x')\n",
        "s = '''\n",
        "get_ipython().run_line_magic('plugin', 'start y')\n",
        "'''\n",
    ]
    out = rewrite_awaitable(src)
    assert out[0].startswith("await __import__('flx_ipy.magics'") and "arun('start x')" in out[0]
    assert out[1].startswith("r = await ") and "arun('reload x')" in out[1]
    assert out[2:] == src[2:]  # get, indented, and text inside a string are left alone
    plain = ["x = 1\n"]
    assert rewrite_awaitable(plain) is plain


# ------------------------------------------------------------------------- config & completion
def test_config_reaches_the_manager(ip: Any, tmp_path: Path) -> None:
    run(ip, "%config PluginMagics.health_timeout = 2.5")
    run(ip, "%config PluginMagics.log_size = 7")
    assert ip.pm.health_timeout == 2.5
    for _ in range(10):
        ip.pm.events.publish("tick")
    assert len(ip.pm.events.history()) == 7
    folder = tmp_path / "more"
    folder.mkdir()
    run(ip, f"%config PluginMagics.plugin_dirs = [{str(folder)!r}]")
    assert folder in [Path(d) for d in ip.pm.discovery.plugin_dirs]


def test_ipython_config_is_read_at_load(shell: Any, tmp_path: Path) -> None:
    pm = PluginManager(entry_points=False, data_root=tmp_path / "d")
    _set_default(pm)
    shell.config.PluginMagics.health_timeout = 1.25
    shell.config.PluginMagics.step = 12
    try:
        shell.run_line_magic("load_ext", "flx_ipy")
        ext = current()
        assert ext is not None
        assert pm.health_timeout == 1.25 and ext.magics.step == 12
    finally:
        shell.run_line_magic("unload_ext", "flx_ipy")
        del shell.config["PluginMagics"]
        pm.close()
        _set_default(None)


def _complete(ip: Any, line: str) -> list[str]:
    from IPython.core.completer import provisionalcompleter

    with provisionalcompleter():
        return [c.text for c in ip.Completer.completions(line, len(line))]


def test_completion(ip: Any, counter: Path) -> None:
    ip.run_line_magic("plugin", f"load {counter}")
    assert {"start", "stop", "state"} <= set(_complete(ip, "%plugin st"))
    assert "counter" in _complete(ip, "%plugin reload c")
    assert "counter" in _complete(ip, "plugin stop c")  # automagic form
    paths = _complete(ip, f"%plugin validate {counter.parent}/mg_")
    assert any(p.endswith("mg_counter.py") for p in paths), paths


# ------------------------------------------------------------------------- reload_ext
def _footprint(ip: Any) -> dict[str, int]:
    chain = ip.strdispatchers["complete_command"].strs.get("%plugin")
    return {
        "pre_execute": len(ip.events.callbacks["pre_execute"]),
        "post_execute": len(ip.events.callbacks["post_execute"]),
        "pre_run_cell": len(ip.events.callbacks["pre_run_cell"]),
        "transformers": len(ip.input_transformers_post),
        "completers": len(chain.chain) if chain else 0,
        "configurables": sum(type(c).__name__ == "PluginMagics" for c in ip.configurables),
        "magic": int("plugin" in ip.magics_manager.magics["line"]),
    }


def test_reload_ext_is_clean(ip: Any, counter: Path) -> None:
    loaded = _footprint(ip)
    ip.run_line_magic("plugin", f"load {counter} --start")
    ip.run_line_magic("plugin", "watch")
    for _ in range(3):
        ip.run_line_magic("reload_ext", "flx_ipy")
    assert _footprint(ip) == loaded
    assert not ip.pm.watching  # unloading stopped the watcher thread
    assert ip.pm.status("counter") == "running"  # plugins belong to the manager, not the extension
    ip.run_line_magic("unload_ext", "flx_ipy")
    gone = _footprint(ip)
    assert gone["magic"] == 0 and gone["completers"] == 0 and gone["configurables"] == 0
    assert gone["pre_execute"] == loaded["pre_execute"] - 1
    assert gone["transformers"] == loaded["transformers"] - 1
    ip.run_line_magic("load_ext", "flx_ipy")
    assert _footprint(ip) == loaded


def test_one_manager_per_shell(ip: Any) -> None:
    assert flx_ipy.get_manager() is ip.pm
    assert current().magics.pm is ip.pm  # type: ignore[union-attr]


# ------------------------------------------------------------------------- watching without a loop
def test_no_loop_save_is_applied_before_the_next_cell(ip: Any, counter: Path) -> None:
    """Terminal-style shell: the watcher only queues; the next cell's pre_execute applies."""
    ip.run_line_magic("plugin", f"load {counter} --start")
    run(ip, "%plugin watch")
    sched = current().scheduler  # type: ignore[union-attr]
    handed = sched.handed
    write_plugin(counter, plugin_source("counter", "2.0.0", HEALTH + "def tag(self):\n    return 'two'\n"))
    wait_for(lambda: sched.handed > handed, timeout=10)
    assert ip.pm.get("counter").metadata.version == "1.0.0"  # queued, not applied by the watcher
    run(ip, "import flx_ipy\nseen = flx_ipy.get_manager().get('counter').tag()")
    assert ip.user_ns["seen"] == "two"
    assert sched.last_where == "before cell"


def test_background_failure_is_noticed_once_in_the_next_cell(ip: Any, counter: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_line_magic("plugin", f"load {counter} --start")
    run(ip, "%plugin watch")
    sched = current().scheduler  # type: ignore[union-attr]
    handed = sched.handed
    write_plugin(counter, "from flx_ipy import Plugin\nclass Counter(Plugin:\n")
    wait_for(lambda: sched.handed > handed, timeout=10)
    capsys.readouterr()
    run(ip, "x = 1")
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "flx_ipy:" in ln]
    assert len(lines) == 1, err
    assert "counter: reload failed" in lines[0] and "previous version still running" in lines[0]
    assert "%plugin error counter" in lines[0]
    run(ip, "x = 2")
    assert "reload failed" not in capsys.readouterr().err  # said once
    assert "reload failed" in repr(ip.run_line_magic("plugin", "log"))
    assert ip.pm.status("counter") == "running"


def test_panel_shows_something_in_a_terminal(ip: Any, counter: Path) -> None:
    ip.run_line_magic("plugin", f"load {counter} --start")
    shown = ip.run_line_magic("plugin", "panel")
    if shown is not None:  # the widgets dashboard, when it is importable
        data, _ = ip.display_formatter.format(shown)
        assert "counter" in data["text/plain"]


def test_top_level_await_cell_keeps_the_loop_usable(ip: Any, tmp_path: Path) -> None:
    path = write_plugin(tmp_path / "mg_async4.py", plugin_source("aplug4", "1.0.0", ASYNC_START))
    run(ip, f"%plugin load {path} --start")
    run(ip, "import asyncio\nawait asyncio.sleep(0)\n%plugin stop aplug4\n%plugin start aplug4")
    assert ip.pm.status("aplug4") == "running"
    from IPython.core.async_helpers import get_asyncio_loop

    assert not get_asyncio_loop().is_running()  # the cell's loop run ended with the cell


def test_awaited_form_expands_variables_and_sync_applies_pending(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from IPython.core.interactiveshell import InteractiveShell

    from flx_ipy.testing import plugin_source, write_plugin

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "flx_ipy")
    try:
        path = write_plugin(tmp_path / "expand_me.py", plugin_source("expand_me", body="def v(self): return 1"))
        shell.user_ns["target"] = str(path)
        result = shell.run_cell("%plugin load {target} --start")
        result.raise_error()
        from flx_ipy import get_manager

        pm = get_manager()
        assert pm.status("expand_me") == "running"
        write_plugin(path, plugin_source("expand_me", body="def v(self): return 2"))
        shell.run_cell("%plugin sync").raise_error()
        assert pm.get("expand_me").v() == 2
        shell.run_cell("%plugin unload expand_me").raise_error()
    finally:
        shell.run_line_magic("unload_ext", "flx_ipy")


# ------------------------------------------------------------------------- isolated plugins
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="worker sandbox is Linux-only")
def test_load_isolated_and_list_shows_the_worker(ip: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_plugin(tmp_path / "plugins" / "iso_counter.py", plugin_source("counter", "1.0.0", ""))
    run(ip, f"%plugin load {path} --isolated --memory-mb 300 --start")
    out = capsys.readouterr().out
    rec = ip.pm.record("counter")
    assert rec.isolated and rec.status == "running"
    assert f"isolated in worker pid {rec.worker.pid}" in out and "enforced:" in out
    text = repr(ip.run_line_magic("plugin", "list"))
    assert f"pid {rec.worker.pid}" in text and "MB" in text and "s CPU" in text
    for layer in rec.worker.enforced:
        assert layer in text
    run(ip, "%plugin unload counter")
    assert "counter" not in ip.pm.plugins


def test_limits_without_isolated_is_a_usage_error(ip: Any, tmp_path: Path) -> None:
    path = write_plugin(tmp_path / "plugins" / "iso_counter2.py", plugin_source("counter", "1.0.0", ""))
    result = ip.run_cell(f"%plugin load {path} --memory-mb 100")
    assert result.error_in_exec is not None and "need --isolated" in str(result.error_in_exec)
    assert ip.pm.plugins == {}


# ------------------------------------------------------------------------- %plugin search / install
def test_search_and_install_take_the_configured_or_environment_index(ip: Any, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """(Installing for real is tested in tests/test_registry.py and tests/kernel/test_registry_kernel.py.)"""
    from flx_ipy.registry import build_index
    from flx_ipy.registry.wheelmaker import make_wheel, plugin_module

    index = tmp_path / "index"
    index.mkdir()
    make_wheel(index, "flx-hello", "1.0.0", {"flx_hello/__init__.py": plugin_module("hello", "1.0.0")},
               entry_points={"flx_ipy.plugins": {"hello": "flx_hello:HelloPlugin"}}, summary="says hello")
    build_index(index)
    monkeypatch.setenv("FLX_IPY_INDEX", str(index))
    ip.run_line_magic("plugin", "search hel")
    out = capsys.readouterr().out
    assert "flx-hello" in out and "says hello" in out, out
    monkeypatch.delenv("FLX_IPY_INDEX")
    with pytest.raises(UsageError, match="no index given"):
        ip.run_line_magic("plugin", "search")
    ip.run_line_magic("config", f"PluginMagics.index = {str(index)!r}")
    try:
        ip.run_line_magic("plugin", "install hello --dry-run")
        assert capsys.readouterr().out.strip() == "would install flx-hello 1.0.0 from flx_hello-1.0.0-py3-none-any.whl"
        with pytest.raises(UsageError, match=r"^%plugin install nope: 'nope' is not in the index"):
            ip.run_line_magic("plugin", "install nope")
        with pytest.raises(UsageError, match="needs one NAME"):
            ip.run_line_magic("plugin", "install")
    finally:
        ip.run_line_magic("config", "PluginMagics.index = ''")


# ------------------------------------------------------------------------- issue 11: the truth in a shell
def test_watch_without_a_loop_says_when_a_save_is_applied(ip: Any, counter: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_line_magic("plugin", f"load {counter} --start")
    capsys.readouterr()
    run(ip, "%plugin watch")
    out = capsys.readouterr().out
    assert "applied at once while idle" not in out  # false at a plain prompt
    assert "before your next command runs" in out and "%gui asyncio" in out


def test_a_save_back_to_the_running_version_clears_the_notice(ip: Any, counter: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_line_magic("plugin", f"load {counter} --start")
    run(ip, "%plugin watch")
    sched = current().scheduler  # type: ignore[union-attr]
    good = counter.read_text()
    handed = sched.handed
    write_plugin(counter, good + "\n    def oops(self:\n")
    wait_for(lambda: sched.handed > handed, timeout=10)
    run(ip, "x = 1")
    assert ip.pm.plugins["counter"].error
    handed = sched.handed
    write_plugin(counter, good)  # undo + save
    wait_for(lambda: sched.handed > handed, timeout=10)
    capsys.readouterr()
    run(ip, "x = 2")
    assert ip.pm.plugins["counter"].error is None
    assert "! counter" not in repr(ip.run_line_magic("plugin", "list"))
    out = capsys.readouterr()
    assert "reload failed" not in out.err
    assert "error cleared — source matches the running version" in out.out  # the dim line at the prompt


def test_dim_line_when_a_reload_applied_at_the_prompt(ip: Any, counter: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_line_magic("plugin", f"load {counter} --start")
    run(ip, "%plugin watch")
    sched = current().scheduler  # type: ignore[union-attr]
    handed = sched.handed
    write_plugin(counter, plugin_source("counter", "1.1.0", HEALTH))
    wait_for(lambda: sched.handed > handed, timeout=10)
    capsys.readouterr()
    run(ip, "x = 1")
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "flx_ipy:" in ln]
    assert len(lines) == 1 and "counter: reloaded in" in lines[0], lines


def test_unloading_drops_a_kept_notice(ip: Any, counter: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_line_magic("plugin", f"load {counter} --start")
    run(ip, "%plugin watch")
    sched = current().scheduler  # type: ignore[union-attr]
    handed = sched.handed
    write_plugin(counter, counter.read_text() + "\n    def oops(self:\n")
    wait_for(lambda: sched.handed > handed, timeout=10)
    sched.drain("test")  # applied, notice kept for the next cell
    ip.run_line_magic("plugin", "unload counter")
    capsys.readouterr()
    run(ip, "x = 1")
    assert "counter" not in capsys.readouterr().err  # never names a plugin that is gone


def test_help_is_plain_text(ip: Any, capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_line_magic("plugin", "--help")
    out = capsys.readouterr().out
    assert "%plugin discover [DIR ...]" in out and "usage: %plugin" in out
    assert "``" not in out and "::" not in out.replace("module:Class", "")


def test_state_is_a_real_repr_or_real_json(ip: Any, tmp_path: Path) -> None:
    path = write_plugin(tmp_path / "plugins" / "st_tally.py", plugin_source("tally", "1.0.0", """
        def start(self):
            self.items = ["a", 1]
            self.name = "x"
    """))
    ip.run_line_magic("plugin", f"load {path} --start")
    view = ip.run_line_magic("plugin", "state tally")
    assert view["kind"] == "attributes"
    text = repr(view)
    assert "items = ['a', 1]" in text and "name  = 'x'" in text
    assert '"' not in text  # no repr strings inside JSON quotes
    kept = write_plugin(tmp_path / "plugins" / "st_keep.py", plugin_source("keep", "1.0.0", """
        def start(self):
            self.n = 3
        def save_state(self):
            return PluginState("keep", "1.0.0", runtime_data={"n": self.n})
        def restore_state(self, state):
            self.n = state.runtime_data["n"]
    """))
    ip.run_line_magic("plugin", f"load {kept} --start")
    import json

    text = repr(ip.run_line_magic("plugin", "state keep"))
    body = text.split("\n", 1)[1]
    assert json.loads(body)["runtime_data"] == {"n": 3}


# ------------------------------------------------------------------------- revisions and timings
def test_history_rollback_and_stats_by_magics(ip: Any, counter: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(ip, f"%plugin load {counter} --start")
    write_plugin(counter, plugin_source("counter", "1.1.0", HEALTH))
    run(ip, "%plugin reload counter")
    text = repr(ip.run_line_magic("plugin", "history counter"))
    assert "1.0.0" in text and "1.1.0" in text and "load" in text and "2*" in text
    capsys.readouterr()
    run(ip, "%plugin rollback counter")
    out = capsys.readouterr().out
    assert "rolled back in" in out and "revision 3" in out and "code of revision 1" in out and "unchanged" in out
    assert ip.pm.plugins["counter"].version == "1.0.0"
    assert "rollback to 1" in repr(ip.run_line_magic("plugin", "history counter"))
    with pytest.raises(UsageError, match="no revision 9 is kept"):
        ip.run_line_magic("plugin", "rollback counter 9")
    with pytest.raises(UsageError, match="must be a number"):
        ip.run_line_magic("plugin", "rollback counter two")
    run(ip, "%plugin health counter")
    stats = repr(ip.run_line_magic("plugin", "stats"))
    assert "counter" in stats and "2 ok / 0 rolled back / 0 failed" in stats
    assert "health_check" in repr(ip.run_line_magic("plugin", "stats counter"))
    run(ip, "%config PluginMagics.health_gate = True")
    assert ip.pm.health_gate is True
