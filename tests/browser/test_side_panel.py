"""End to end: the JupyterLab side panel against a real kernel, in headless Chromium.

Each test opens its own notebook (cells written through the contents API, run through the
notebook UI), and asserts what the panel shows and what the kernel did. Set
``FLX_UPDATE_SCREENSHOTS=1`` to refresh ``docs/side-panel.png`` from a real session.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from lab_js import KERNEL_READY  # tests/browser/ is on sys.path (rootdir-less)
from lab_page import HEALTH, LabServer, new_lab

from flx_ipy.testing import plugin_source, write_plugin

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.browser, pytest.mark.timeout(150)]


@pytest.fixture
def plugin_file(lab_server: LabServer) -> Path:
    return write_plugin(lab_server.root / f"counter_{uuid.uuid4().hex[:8]}.py",
                        plugin_source("counter", "1.0.0", HEALTH))


def test_panel_shows_plugins_obeys_buttons_and_survives_restart(page: Any, lab_server: LabServer,
                                                                 plugin_file: Path) -> None:
    lab = new_lab(page, lab_server, plugin_file)
    lab.open_panel_from_palette()
    lab.expect_attr("flx-status", "data-status", "not-loaded")
    lab.expect_text("flx-status", "%load_ext flx_ipy")

    lab.run_cell(0)
    lab.expect_attr("flx-status", "data-status", "ready")
    lab.run_cell(1)
    lab.expect_attr("flx-row-counter", "data-state", "running")
    lab.expect_text("flx-version-counter", "v1.0.0")
    lab.expect_attr("flx-health-counter", "data-health", "healthy")
    lab.expect_text("flx-health-counter", "0 ticks")

    # stop: the kernel obeys, the panel follows
    lab.tid("flx-stop-counter").click()
    lab.expect_attr("flx-row-counter", "data-state", "stopped")
    assert lab.kernel("str(pm.status('counter'))") == "'stopped'"
    lab.tid("flx-start-counter").click()
    lab.expect_attr("flx-row-counter", "data-state", "running")
    assert lab.kernel("str(pm.status('counter'))") == "'running'"

    # while a cell runs, a click is queued and shown as such; it runs after the cell. The cell
    # runs until the test lets it go (a flag file), so no timing decides the outcome.
    release = plugin_file.with_suffix(".release")
    lab.submit(f"import os, time\nwhile not os.path.exists({str(release)!r}): time.sleep(0.02)")
    lab.page.wait_for_function("() => window.jupyterapp.shell.currentWidget.sessionContext.session"
                               ".kernel.status === 'busy'")
    lab.tid("flx-stop-counter").click()
    lab.expect_attr("flx-pending-counter", "data-queued", "true")
    lab.expect_attr("flx-row-counter", "data-state", "running")
    release.touch()
    lab.expect_attr("flx-row-counter", "data-state", "stopped")
    lab.expect_text("flx-notice", "counter stopped")
    assert lab.tid("flx-pending-counter").count() == 0

    lab.tid("flx-start-counter").click()
    lab.expect_attr("flx-row-counter", "data-state", "running")

    # reload picks up the file as it is on disk now
    write_plugin(plugin_file, plugin_source("counter", "1.1.0", HEALTH))
    lab.tid("flx-reload-counter").click()
    lab.expect_text("flx-version-counter", "v1.1.0")
    lab.expect_attr("flx-lastreload-counter", "data-outcome", "ok")
    lab.expect_text("flx-notice", "reloaded")
    assert lab.kernel("pm.plugins['counter'].version") == "'1.1.0'"

    # restart: comms are disposed without onClose; the panel must notice and recover
    lab.page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.restart()")
    lab.expect_attr("flx-status", "data-status", "not-loaded", timeout=60_000)
    lab.wait_kernel_ready()
    lab.run_cell(0)
    lab.run_cell(1)
    lab.expect_attr("flx-status", "data-status", "ready")
    lab.expect_attr("flx-row-counter", "data-state", "running")
    lab.expect_text("flx-version-counter", "v1.1.0")


def test_watching_rollback_and_page_reload(page: Any, lab_server: LabServer,
                                                       plugin_file: Path) -> None:
    clock = write_plugin(plugin_file.with_name(f"clock_{uuid.uuid4().hex[:8]}.py"),
                         plugin_source("clock", "0.3.0", cls="Clock"))
    lab = new_lab(page, lab_server, plugin_file, f"pm.load({str(clock)!r}, start=True)",
                  f"pm.watch([{str(plugin_file.parent)!r}])")
    lab.open_panel()
    for i in range(4):
        lab.run_cell(i)
    lab.expect_attr("flx-row-counter", "data-state", "running")
    lab.expect_attr("flx-row-clock", "data-state", "running")
    lab.expect_attr("flx-watcher", "data-watching", "true")

    # a save on disk, no cell run: the panel shows the new version
    write_plugin(plugin_file, plugin_source("counter", "2.0.0", HEALTH))
    lab.expect_text("flx-version-counter", "v2.0.0")
    lab.expect_attr("flx-lastreload-counter", "data-outcome", "ok")

    # a broken save is rolled back, and the panel says why
    write_plugin(plugin_file, plugin_source("counter", "2.1.0", HEALTH + "\ndef broken(:\n    pass\n"))
    lab.expect_attr("flx-lastreload-counter", "data-outcome", "rolled_back")
    lab.expect_text("flx-error-counter", "SyntaxError")
    lab.expect_text("flx-version-counter", "v2.0.0")
    lab.expect_attr("flx-row-counter", "data-state", "running")
    if os.environ.get("FLX_UPDATE_SCREENSHOTS"):
        lab.tid("flx-refresh").click()  # re-checks health, as a user would
        lab.expect_text("flx-notice", "refreshed")
        lab.page.screenshot(path=str(ROOT / "docs" / "side-panel.png"))

    # a page reload leaves exactly one panel comm in the kernel
    assert lab.panel_comms_in_kernel() == 1
    lab.page.reload()
    lab.wait_kernel_ready()
    lab.open_panel()
    lab.expect_attr("flx-status", "data-status", "ready")
    lab.expect_attr("flx-row-counter", "data-state", "running")
    lab.expect_text("flx-version-counter", "v2.0.0")
    lab.page.wait_for_function(KERNEL_READY)
    assert lab.panel_comms_in_kernel() == 1
    lab.kernel("pm.unwatch()")


def test_panel_follows_the_active_notebook(page: Any, lab_server: LabServer, plugin_file: Path) -> None:
    lab = new_lab(page, lab_server, plugin_file)
    lab.open_panel()
    lab.run_cell(0)
    lab.run_cell(1)
    lab.expect_attr("flx-row-counter", "data-state", "running")
    first = lab.page.evaluate("() => window.jupyterapp.shell.currentWidget.id")

    other = lab_server.new_notebook(["1 + 1"], stem="other")
    lab.page.evaluate("(path) => window.jupyterapp.commands.execute('docmanager:open', { path })", other)
    lab.page.wait_for_function("(path) => window.jupyterapp.shell.currentWidget.context.path === path", arg=other)
    lab.wait_kernel_ready()
    lab.expect_text("flx-kernel", other)
    lab.expect_attr("flx-status", "data-status", "not-loaded")
    assert lab.tid("flx-row-counter").count() == 0

    lab.page.evaluate("(id) => window.jupyterapp.shell.activateById(id)", first)
    lab.expect_text("flx-kernel", lab.notebook)
    lab.expect_attr("flx-status", "data-status", "ready")
    lab.expect_attr("flx-row-counter", "data-state", "running")
