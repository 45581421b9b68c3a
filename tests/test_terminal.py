"""Terminal IPython driven for real through a pty (pexpect): the prompt path.

* Plain prompt (no loop runs while IPython waits for input): a save is queued by the watcher
  and applied between cells by ``pre_execute`` / ``post_execute`` — a save seen while a cell
  runs is applied right after it, so that cell saw one version.
* ``%gui asyncio`` (the prompt runs inside IPython's asyncio loop): a save is applied while
  the prompt waits, with no cell run; the plugin's ``start()`` writes a marker file we read.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flx_ipy.testing import plugin_source, wait_for, write_plugin

pexpect = pytest.importorskip("pexpect")
pytestmark = pytest.mark.terminal

ROOT = Path(__file__).resolve().parents[1]
IPYTHON = [sys.executable, "-m", "IPython"]


def body(marker: Path, tag: str) -> str:
    return (
        "def start(self):\n"
        "    import threading\n"
        "    from flx_ipy.extension import current\n"
        "    cells = current().scheduler.running\n"
        f"    with open({str(marker)!r}, 'a') as fh:\n"
        "        fh.write(f'{self.metadata.version} {threading.current_thread().name} {cells}\\n')\n"
        "def tag(self):\n"
        f"    return {tag!r}\n"
    )


class Terminal:
    def __init__(self, cwd: Path) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                   PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm")
        self.child = pexpect.spawn(
            IPYTHON[0], [*IPYTHON[1:], "--no-banner", "--colors=NoColor", "--HistoryManager.enabled=False",
                         "--no-confirm-exit"],
            cwd=str(cwd), env=env, encoding="utf-8", timeout=20, dimensions=(50, 250))
        self.n = 1
        self.child.expect(r"In \[1\]:")

    def run(self, line: str) -> str:
        """Type one line, wait for the next prompt; return what was printed in between."""
        self.child.sendline(line)
        self.n += 1
        self.child.expect(rf"In \[{self.n}\]:")
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07", "", str(self.child.before))

    def close(self) -> None:
        self.child.sendline("exit")
        try:
            self.child.expect(pexpect.EOF, timeout=10)
        finally:
            self.child.close(force=True)


@pytest.fixture
def term(tmp_path: Path) -> Iterator[Terminal]:
    t = Terminal(tmp_path)
    try:
        yield t
    finally:
        t.close()


class Plugin:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(exist_ok=True)
        self.path = folder / f"tcounter_{uuid.uuid4().hex[:8]}.py"
        self.marker = folder / "marker.log"
        self.write("1.0.0", "one")

    def write(self, version: str, tag: str) -> None:
        write_plugin(self.path, plugin_source("counter", version, body(self.marker, tag)))

    def starts(self) -> list[list[str]]:
        try:
            return [line.split() for line in self.marker.read_text().splitlines()]
        except FileNotFoundError:
            return []


def load(term: Terminal, plugin: Plugin) -> None:
    term.run("%load_ext flx_ipy")
    assert "counter 1.0.0 running" in term.run(f"%plugin load {plugin.path} --start")
    assert "watching 1 folder" in term.run("%plugin watch")


def test_plain_prompt_applies_between_cells(term: Terminal, tmp_path: Path) -> None:
    plugin = Plugin(tmp_path / "plugins")
    load(term, plugin)
    ready = tmp_path / "ready"
    term.run("import flx_ipy, time, pathlib; from flx_ipy.extension import current; s = current().scheduler; "
             "p = flx_ipy.get_manager().get('counter')")
    # the cell starts first, then the save lands; the cell waits until the watcher handed it over
    term.child.sendline(f"n = s.handed; pathlib.Path({str(ready)!r}).touch(); t0 = time.monotonic(); "
                        "[time.sleep(0.005) for _ in iter(lambda: s.handed == n and time.monotonic() - t0 < 15, "
                        "False)]; print('during', p.tag(), s.handed > n)")
    wait_for(ready.exists, timeout=15)
    plugin.write("2.0.0", "two")
    term.n += 1
    term.child.expect(rf"In \[{term.n}\]:")
    out = str(term.child.before)
    assert "during one True" in out, out
    assert "after two after cell" in term.run("print('after', p.tag(), s.last_where)")
    (_first, second) = plugin.starts()
    assert second[0] == "2.0.0" and second[1] == "MainThread" and second[2] == "0"


def test_gui_asyncio_applies_at_the_prompt_with_no_cell_run(term: Terminal, tmp_path: Path) -> None:
    plugin = Plugin(tmp_path / "plugins")
    term.run("%gui asyncio")
    load(term, plugin)
    plugin.write("2.0.0", "two")
    started = wait_for(lambda: next((s for s in plugin.starts() if s[0] == "2.0.0"), None), timeout=15)
    assert started[1] == "MainThread" and started[2] == "0"
    assert term.n == 5  # no cell was typed since `%plugin watch`
    out = term.run("import flx_ipy; from flx_ipy.extension import current; "
                   "print('now', flx_ipy.get_manager().get('counter').tag(), current().scheduler.last_where)")
    assert "now two idle" in out
    # one dim line at the prompt said so, printed while the prompt waited (before this command)
    assert "flx_ipy: counter: reloaded in" in out.split("import flx_ipy")[0], out


def test_errors_and_help_in_the_terminal(term: Terminal, tmp_path: Path) -> None:
    plugin = Plugin(tmp_path / "plugins")
    load(term, plugin)
    out = term.run("%plugin start counter")
    assert "UsageError: counter is already running" in out and "Traceback" not in out
    help_text = term.run("%plugin --help")
    assert "%plugin discover [DIR ...]" in help_text and "``" not in help_text
    watch = term.run("%plugin watch")  # a plain prompt runs no loop: say so, and how to change it
    assert "before your next command runs" in watch and "%gui asyncio" in watch
    table: Any = term.run("%plugin list")
    assert re.search(r"counter\s+1\.0\.0\s+running", table)
