"""End to end, dark theme: the dashboard's rollback picker and button, an isolated plugin's
worker line, and the plugin-index section, in a real JupyterLab in headless Chromium — and no
row wider than the output area (nothing clipped). ``FLX_UPDATE_SCREENSHOTS=1`` refreshes
``docs/dashboard-ops-dark.png`` from this session."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from lab_js import KERNEL_EVAL, KERNEL_READY, RUN_CELL  # tests/browser/ is on sys.path (rootdir-less)
from lab_page import set_theme

from flx_ipy.registry import build_index
from flx_ipy.registry.wheelmaker import make_wheel, plugin_module
from flx_ipy.testing import plugin_source, write_plugin

ROOT = Path(__file__).resolve().parents[2]
LabServer = Any

pytestmark = [pytest.mark.browser, pytest.mark.timeout(150)]

HEALTH = 'def health_check(self):\n    return HealthStatus.healthy("ok")\n'
#: every row and part of the dashboard fits its box: nothing scrolls or is cut sideways
OVERFLOWING = """() => [...document.querySelectorAll('.flx-dashboard .flx-row, .flx-dashboard .flx-index')]
  .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.className)"""


def test_rollback_worker_and_index_in_the_dark_theme(page: Any, lab_server: LabServer) -> None:
    from playwright.sync_api import expect

    folder = lab_server.root / f"ops_{uuid.uuid4().hex[:8]}"
    counter = write_plugin(folder / "counter.py", plugin_source("counter", "1.0.0", HEALTH))
    boxed = write_plugin(folder / "boxed.py", plugin_source("boxed", "0.1.0", cls="Boxed"))
    index = folder / "index"
    index.mkdir()
    make_wheel(index, "flx-hello", "1.0.0", {"flx_hello/__init__.py": plugin_module("hello", "1.0.0")},
               entry_points={"flx_ipy.plugins": {"hello": "flx_hello:HelloPlugin"}})
    build_index(index)
    isolated = sys.platform.startswith("linux")
    setup = "\n".join([
        "import flx_ipy, pathlib",
        "from flx_ipy.widgets import dashboard",
        "from flx_ipy.testing import plugin_source, write_plugin",
        "pm = flx_ipy.get_manager()",
        f"pm.load({str(counter)!r}, start=True)",
        *(f"write_plugin({str(counter)!r}, plugin_source('counter', '1.0.{n}', {HEALTH!r}))\npm.reload('counter')"
          for n in (1, 2)),
        f"pm.load({str(boxed)!r}, start=True, isolated={isolated!r})",
        "pm.health()",
        "board = dashboard(pm)",
        f"board.show_index().location.value = {str(index)!r}",
    ])
    notebook = lab_server.new_notebook([setup, "board"], stem="dashops")
    page.goto(lab_server.url(notebook))
    page.wait_for_function(KERNEL_READY, timeout=60_000)
    set_theme(page, "JupyterLab Dark")
    try:
        page.evaluate(RUN_CELL, 0)
        page.evaluate(RUN_CELL, 1)
        board = page.locator(".flx-dashboard").first
        expect(board).to_be_visible()
        row = board.locator(".flx-row-counter")
        expect(row.locator(".flx-version")).to_have_text("1.0.2")
        expect(row.locator(".flx-metrics")).to_contain_text("reloads: 2")
        picker = row.locator(".flx-revision-picker select")
        expect(picker.locator("option")).to_have_count(2)  # r2 and r1; r3 runs
        picker.select_option(index=1)
        row.locator(".flx-btn-rollback").click()
        expect(row.locator(".flx-version")).to_have_text("1.0.0")
        assert page.evaluate(KERNEL_EVAL, "pm.history('counter')[-1].rollback_of") == "1"
        if isolated:
            worker = board.locator(".flx-row-boxed .flx-isolation")
            expect(worker).to_contain_text("isolated")
            expect(worker).to_contain_text("pid ")
            expect(board.locator(".flx-row-boxed .flx-btn-rollback")).to_be_disabled()
        board.locator(".flx-btn-list").click()
        expect(board.locator(".flx-offers")).to_contain_text("flx-hello")
        expect(board.locator(".flx-offers tr")).to_have_count(2)  # a header and one offer, as a table
        cells = page.evaluate("() => [...document.querySelectorAll('.flx-offer td')].map(td => "
                              "Math.round(td.getBoundingClientRect().top))")
        assert len(set(cells)) == 1, cells  # one line per offer: the cells sit side by side
        expect(board.locator(".flx-outcome-ok")).to_contain_text("1 plugin package")
        assert page.evaluate(OVERFLOWING) == []
        if os.environ.get("FLX_UPDATE_SCREENSHOTS"):
            cell = page.locator(".jp-Cell", has=page.locator(".flx-dashboard")).first
            cell.screenshot(path=str(ROOT / "docs" / "dashboard-ops-dark.png"))
    finally:
        set_theme(page, "JupyterLab Light")
