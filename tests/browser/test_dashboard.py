"""End to end: the inline ipywidgets dashboard in a real JupyterLab, in headless Chromium.

One notebook loads three plugins, watches their folder and shows ``dashboard(pm)``. Then, with
no cell run, saves on disk must show up in the dashboard (a new version; a broken save rolled
back), and the dashboard's buttons must make the kernel obey. Set ``FLX_UPDATE_SCREENSHOTS=1``
to refresh ``docs/dashboard.png`` from this real session.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from lab_js import KERNEL_EVAL, KERNEL_READY, RUN_CELL  # tests/browser/ is on sys.path (rootdir-less)

from flx_ipy.testing import plugin_source, write_plugin

ROOT = Path(__file__).resolve().parents[2]
LabServer = Any  # tests/browser/conftest.py's LabServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(150)]

COUNTER = '''
def start(self):
    self.ticks = getattr(self, "ticks", 0) + 1

def health_check(self):
    return HealthStatus.healthy(f"{self.ticks} ticks")
'''
CLOCK = '''
def health_check(self):
    return HealthStatus.healthy("in sync")
'''
GREETER = '''
def health_check(self):
    return HealthStatus.degraded("cache cold")
'''


def test_dashboard_follows_saves_and_its_buttons_drive_the_kernel(page: Any, lab_server: LabServer) -> None:
    from playwright.sync_api import expect

    folder = lab_server.root / f"dash_{uuid.uuid4().hex[:8]}"
    counter = write_plugin(folder / "counter.py", plugin_source("counter", "1.0.0", COUNTER))
    clock = write_plugin(folder / "clock.py", plugin_source("clock", "0.3.0", CLOCK, cls="Clock"))
    greeter = write_plugin(folder / "greeter.py", plugin_source("greeter", "2.1.0", GREETER, cls="Greeter"))
    setup = "\n".join([
        "import flx_ipy",
        "from flx_ipy.widgets import dashboard",
        "pm = flx_ipy.get_manager()",
        *(f"pm.load({str(p)!r}, start=True)" for p in (clock, counter, greeter)),
        "pm.health()",
        f"pm.watch([{str(folder)!r}])",
    ])
    notebook = lab_server.new_notebook([setup, "dashboard(pm)"], stem="dashboard")
    page.goto(lab_server.url(notebook))
    page.wait_for_function(KERNEL_READY, timeout=60_000)
    page.evaluate(RUN_CELL, 0)
    page.evaluate(RUN_CELL, 1)

    board = page.locator(".flx-dashboard").first
    expect(board).to_be_visible()
    row = {name: board.locator(f".flx-row-{name}") for name in ("counter", "clock", "greeter")}
    expect(row["counter"].locator(".flx-badge")).to_have_text("running")
    expect(row["clock"].locator(".flx-health")).to_contain_text("in sync")
    expect(board.locator(".flx-watcher")).to_contain_text("watching 1 folder")
    notice = board.locator("[data-testid='flx-restart-notice']")
    expect(notice).to_be_hidden()  # the kernel lives: no "the kernel restarted" over a live board

    # saves on disk, no cell run: new versions appear, the plot grows
    for minor in range(1, 5):
        write_plugin(counter, plugin_source("counter", f"1.{minor}.0", COUNTER))
        expect(row["counter"].locator(".flx-version")).to_have_text(f"1.{minor}.0")
    expect(row["counter"].locator(".flx-reload")).to_contain_text("ok in")
    expect(board.locator(".flx-latency-bar")).to_have_count(4)

    # a broken save is rolled back and the row says why, in one line
    write_plugin(greeter, plugin_source("greeter", "2.2.0", GREETER + "\ndef greet(self:\n    pass\n",
                                        cls="Greeter"))
    expect(row["greeter"].locator(".flx-reload-rolled-back")).to_contain_text("SyntaxError")
    expect(row["greeter"].locator(".flx-version")).to_have_text("2.1.0")
    expect(row["greeter"].locator(".flx-badge")).to_have_text("running")
    expect(board.locator(".flx-log")).to_contain_text("previous version still running")

    # the buttons: the kernel obeys
    row["clock"].locator(".flx-btn-stop").click()
    expect(row["clock"].locator(".flx-badge")).to_have_text("stopped")
    assert page.evaluate(KERNEL_EVAL, "str(pm.status('clock'))") == "'stopped'"
    row["clock"].locator(".flx-btn-start").click()
    expect(row["clock"].locator(".flx-badge")).to_have_text("running")
    before = page.evaluate(KERNEL_EVAL, "pm.plugins['counter'].reload_count")
    row["counter"].locator(".flx-btn-reload").click()
    expect(board.locator(".flx-latency-bar")).to_have_count(6)  # 4 saves, 1 rollback, this reload
    assert int(page.evaluate(KERNEL_EVAL, "pm.plugins['counter'].reload_count")) == int(before) + 1

    if os.environ.get("FLX_UPDATE_SCREENSHOTS"):
        page.evaluate(KERNEL_EVAL, "pm.health()")  # fresh health messages, as a user would
        expect(row["counter"].locator(".flx-health")).to_contain_text("ticks")
        cell = page.locator(".jp-Cell", has=page.locator(".flx-dashboard")).first
        cell.screenshot(path=str(ROOT / "docs" / "dashboard.png"))
    expect(notice).to_be_hidden()

    # a kernel restart leaves the board stale: now, and only now, it says so
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.restart()")
    expect(notice).to_be_visible(timeout=60_000)
    expect(notice).to_contain_text("The kernel restarted")
