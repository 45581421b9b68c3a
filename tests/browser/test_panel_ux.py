"""The side panel as a user meets it: status bar, shortcut, links into the editor, themes, the
banner, and an undo-save through JupyterLab's own editor. Real JupyterLab, kernel and Chromium.

Screenshots of the panel in the light and the dark theme land in ``test-results/`` on every run
(look at them); ``FLX_UPDATE_SCREENSHOTS=1`` also refreshes the README's from notebook 01.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from lab_page import HEALTH, LOAD_EXT, THEME_IS, Lab, LabServer, editor_state, open_in_editor, set_theme
from lab_server import running_lab
from playwright.sync_api import expect

from flx_ipy.testing import plugin_source, write_plugin

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "test-results"

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

BROKEN_TAIL = "\ndef broken(:\n    pass\n"


@pytest.fixture
def work(lab_server: LabServer) -> Path:
    """A folder of this test's own under the server root (so JupyterLab can open its files)."""
    folder = lab_server.root / f"w{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    return folder


def _lab(page: Any, server: LabServer, work: Path, *cells: str) -> Lab:
    """A notebook that loads flx_ipy, runs ``cells`` and watches ``work``; all cells are run."""
    notebook = server.new_notebook([LOAD_EXT, *cells, f"pm.watch([{str(work)!r}])"], stem="ux")
    lab = Lab(page, server, notebook).open()
    for i in range(len(cells) + 2):
        lab.run_cell(i)
    lab.page.wait_for_function("() => { const k = window.jupyterapp.shell.currentWidget.sessionContext"
                               ".session.kernel; return k.status === 'idle'; }")
    return lab


def _plugin(work: Path, name: str, body: str = "", version: str = "1.0.0") -> Path:
    return write_plugin(work / f"{name}.py", plugin_source(name, version, body, cls=name.capitalize()))


def _load(path: Path, start: bool = True) -> str:
    return f"pm.load({str(path)!r}, start={start})"


def test_status_bar_sidebar_tab_and_shortcut_open_the_panel(page: Any, lab_server: LabServer, work: Path) -> None:
    counter = _plugin(work, "counter", HEALTH)
    clock, gauge = _plugin(work, "clock"), _plugin(work, "gauge")
    lab = _lab(page, lab_server, work, _load(counter) + "\npm.health('counter')", _load(clock), _load(gauge))
    item = lab.tid("flx-statusbar")
    expect(item).to_have_text("flx_ipy: 3 running")
    expect(lab.tid("flx-panel")).to_be_hidden()  # a fresh workspace: the panel is not open yet

    # a broken save is counted as rolled back, and the item turns to the error colour
    write_plugin(counter, plugin_source("counter", "1.1.0", HEALTH + BROKEN_TAIL, cls="Counter"))
    expect(item).to_have_text("flx_ipy: 3 running · 1 rolled back")
    expect(item).to_have_class(re.compile(r"flx-StatusItem-bad"))

    item.click()
    expect(lab.tid("flx-panel")).to_be_visible()
    lab.expect_attr("flx-lastreload-counter", "data-outcome", "rolled_back")

    # the right sidebar has the panel's tab; the keyboard shortcut opens the panel too
    tab = lab.page.locator(".jp-SideBar.jp-mod-right .lm-TabBar-tab[title='flx_ipy plugins']")
    expect(tab).to_have_count(1)
    lab.page.evaluate("() => window.jupyterapp.shell.collapseRight()")
    expect(lab.tid("flx-panel")).to_be_hidden()
    tab.click()
    expect(lab.tid("flx-panel")).to_be_visible()
    lab.page.evaluate("() => window.jupyterapp.shell.collapseRight()")
    expect(lab.tid("flx-panel")).to_be_hidden()
    lab.page.locator(".jp-Notebook").first.click()
    lab.page.keyboard.press("Alt+Shift+P")
    expect(lab.tid("flx-panel")).to_be_visible()

    # a good save: events have a time and no "reloading" line of their own
    write_plugin(clock, plugin_source("clock", "1.1.0", cls="Clock"))
    lab.expect_text("flx-version-clock", "v1.1.0")
    events = lab.tid("flx-events")
    expect(events.locator("[data-kind='reloaded']")).not_to_have_count(0)
    expect(events.locator("[data-kind='reloading']")).to_have_count(0)
    times = events.locator("[data-testid='flx-event-time']").all_inner_texts()
    assert times and all(re.fullmatch(r"\d\d:\d\d:\d\d", t) for t in times), times

    # "refresh" re-checks health; with nothing changed the row still says it was checked now
    lab.tid("flx-refresh").click()
    lab.expect_text("flx-health-counter", "checked just now")
    lab.kernel("pm.unwatch()")


def test_an_errors_file_and_line_open_in_the_editor(page: Any, lab_server: LabServer, work: Path) -> None:
    counter = _plugin(work, "counter", HEALTH)
    lab = _lab(page, lab_server, work, _load(counter))
    lab.open_panel()
    lab.expect_attr("flx-row-counter", "data-state", "running")

    # the broken line is near the top, so opening the file must move the cursor there
    lines = counter.read_text().splitlines()
    broken = "\n".join([*lines[:2], "def broken(:", *lines[2:]]) + "\n"
    with pytest.raises(SyntaxError) as info:
        compile(broken, str(counter), "exec")
    write_plugin(counter, broken)
    lab.expect_text("flx-error-counter", "SyntaxError")
    link = lab.tid("flx-open-counter").first
    expect(link).to_have_text(f"{counter.name}:{info.value.lineno}")  # the whole path is in the tooltip
    expect(link).to_have_attribute("title", re.compile(re.escape(str(counter))))
    link.click()
    rel = str(counter.relative_to(lab_server.root))
    lab.page.wait_for_function("(path) => { const w = window.jupyterapp.shell.currentWidget;"
                               " return !!w && !!w.context && w.context.path === path && !!w.content.editor; }",
                               arg=rel)
    lab.page.wait_for_function("(line) => window.jupyterapp.shell.currentWidget.content.editor"
                               ".getCursorPosition().line === line", arg=info.value.lineno - 1)
    state = editor_state(lab.page)
    assert state is not None and state["path"] == rel and state["line"] == info.value.lineno - 1
    lab.kernel("pm.unwatch()")


def test_undo_save_in_jupyterlabs_editor_clears_the_error(page: Any, lab_server: LabServer, work: Path) -> None:
    counter = _plugin(work, "counter", HEALTH)
    original = counter.read_text()
    lab = _lab(page, lab_server, work, _load(counter))
    lab.open_panel()
    lab.expect_attr("flx-row-counter", "data-state", "running")
    rel = str(counter.relative_to(lab_server.root))
    open_in_editor(lab.page, rel)

    # break it in the editor and save with Ctrl+S: rolled back, shown, the old code runs on
    lab.page.keyboard.press("Control+End")
    lab.page.keyboard.press("Enter")
    lab.page.keyboard.type(")")
    lab.page.keyboard.press("Control+s")
    lab.expect_attr("flx-lastreload-counter", "data-outcome", "rolled_back")
    lab.expect_text("flx-error-counter", "SyntaxError")
    expect(lab.tid("flx-statusbar")).to_contain_text("1 rolled back")
    assert lab.kernel("pm.status('counter')") == "'running'"

    # undo until the text is the running version again, and save
    for _ in range(8):
        state = editor_state(lab.page)
        if state is not None and state["text"] == original:
            break
        lab.page.keyboard.press("Control+z")
    state = editor_state(lab.page)
    assert state is not None and state["text"] == original, "undo did not restore the file"
    lab.page.keyboard.press("Control+s")
    lab.page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty")
    assert counter.read_text() == original

    # the file is byte-identical to the running version again: the failure is over
    expect(lab.tid("flx-error-counter")).to_have_count(0)
    lab.expect_text("flx-lastreload-counter", "error cleared: source matches the running version")
    expect(lab.tid("flx-statusbar")).to_have_text("flx_ipy: 1 running")
    assert lab.kernel("pm.plugins['counter'].error is None") == "True"
    lab.kernel("pm.unwatch()")


# Colours as the user sees them: text colour, the panel behind it, and the element's opacity.
LOOK = """(testid) => {
  const el = document.querySelector(`[data-testid='${testid}']`);
  const panel = document.querySelector("[data-testid='flx-panel']");
  const s = getComputedStyle(el);
  return { color: s.color, background: getComputedStyle(panel).backgroundColor, opacity: Number(s.opacity),
           border: s.borderTopStyle, cursor: s.cursor, disabled: el.disabled,
           underline: s.textDecorationLine.includes('underline') };
}"""


def _rgb(css: str) -> tuple[float, float, float, float]:
    nums = [float(x) for x in re.findall(r"[\d.]+", css)]
    return nums[0], nums[1], nums[2], nums[3] if len(nums) > 3 else 1.0


def _seen_contrast(look: dict[str, Any]) -> float:
    """WCAG contrast of the text against the panel, after the element's opacity blends it in."""
    r, g, b, a = _rgb(look["color"])
    br, bg, bb, _ = _rgb(look["background"])
    alpha = a * look["opacity"]
    fg = [c * alpha + back * (1 - alpha) for c, back in ((r, br), (g, bg), (b, bb))]

    def lum(rgb: list[float] | tuple[float, ...]) -> float:
        lin = [(c / 255 / 12.92) if c / 255 <= 0.03928 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted([lum(fg), lum((br, bg, bb))], reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_buttons_look_disabled_in_light_and_dark(page: Any, lab_server: LabServer, work: Path) -> None:
    counter, clock = _plugin(work, "counter", HEALTH), _plugin(work, "clock")
    flaky = _plugin(work, "flaky", "def start(self):\n    raise RuntimeError('no database')")
    lab = _lab(page, lab_server, work, _load(counter) + "\npm.health('counter')", _load(clock, start=False),
               f"try:\n    {_load(flaky)}\nexcept Exception as e:\n    print(e)")
    lab.open_panel()
    lab.expect_attr("flx-row-flaky", "data-state", "failed")
    lab.expect_attr("flx-row-clock", "data-state", "loaded")
    write_plugin(counter, plugin_source("counter", "1.1.0", HEALTH + BROKEN_TAIL, cls="Counter"))
    lab.expect_attr("flx-lastreload-counter", "data-outcome", "rolled_back")
    # what the manager allows, and nothing else (protocol.ALLOWED_ACTIONS)
    for testid, disabled in [("flx-start-counter", True), ("flx-stop-counter", False),
                             ("flx-reload-flaky", True), ("flx-start-flaky", False), ("flx-stop-clock", True)]:
        expect(lab.tid(testid)).to_be_disabled() if disabled else expect(lab.tid(testid)).to_be_enabled()
    RESULTS.mkdir(exist_ok=True)
    try:
        for theme, shot in [("JupyterLab Light", "light"), ("JupyterLab Dark", "dark")]:
            set_theme(lab.page, theme)
            enabled = lab.page.evaluate(LOOK, "flx-stop-counter")
            disabled = lab.page.evaluate(LOOK, "flx-start-counter")
            assert enabled["disabled"] is False and disabled["disabled"] is True
            assert _seen_contrast(enabled) >= 4.5, (theme, enabled)  # readable
            assert _seen_contrast(disabled) < _seen_contrast(enabled) / 2, (theme, enabled, disabled)  # faded
            assert disabled["border"] == "dashed" and enabled["border"] == "solid", (theme, disabled)
            assert disabled["cursor"] == "not-allowed", (theme, disabled)
            for testid in ("flx-error-counter", "flx-health-counter", "flx-open-counter"):
                assert _seen_contrast(lab.page.evaluate(LOOK, testid)) >= 3, (theme, testid)
            link, error = lab.page.evaluate(LOOK, "flx-open-counter"), lab.page.evaluate(LOOK, "flx-error-counter")
            assert link["color"] != error["color"] and link["underline"], (theme, link, error)  # looks like a link
            lab.tid("flx-panel").screenshot(path=str(RESULTS / f"side-panel-{shot}.png"))
    finally:
        set_theme(lab.page, "JupyterLab Light")  # the theme is a user setting: do not leak it
    lab.kernel("pm.unwatch()")


def test_unload_asks_first_and_the_banner_fades(page: Any, lab_server: LabServer, work: Path) -> None:
    counter = _plugin(work, "counter", HEALTH)
    lab = _lab(page, lab_server, work, _load(counter))
    lab.open_panel()
    lab.expect_attr("flx-row-counter", "data-state", "running")

    lab.tid("flx-unload-counter").click()
    dialog = lab.page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("Unload counter?")
    dialog.locator("button", has_text="Cancel").click()
    expect(dialog).to_have_count(0)
    assert lab.kernel("str(pm.status('counter'))") == "'running'"
    lab.expect_attr("flx-row-counter", "data-state", "running")

    lab.tid("flx-unload-counter").click()
    lab.page.locator(".jp-Dialog button.jp-mod-warn", has_text="Unload").click()
    expect(lab.tid("flx-row-counter")).to_have_count(0)
    lab.expect_text("flx-notice", "counter unloaded")
    assert lab.kernel("str(pm.status('counter'))") == "'unloaded'"
    expect(lab.tid("flx-notice")).to_have_count(0, timeout=20_000)  # fades by itself
    lab.kernel("pm.unwatch()")


def _tutorial_cells(nb: dict[str, Any]) -> int:
    """How many cells to run: all before the optional clean-up section."""
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "markdown" and re.search(r"^#+ .*clean[ -]?up", "".join(cell["source"]), re.I | re.M):
            return i
    return len(nb["cells"])


def _server_theme(server: LabServer, theme: str) -> None:
    """Set the theme as a saved user setting, so the next page loads in it from the start (a live
    switch leaves parts of the page painted in the old theme in headless Chromium's pictures)."""
    server.api("PUT", "/lab/api/settings/@jupyterlab/apputils-extension:themes",
               {"raw": json.dumps({"theme": theme})})


@pytest.mark.skipif(not os.environ.get("FLX_UPDATE_SCREENSHOTS"), reason="set FLX_UPDATE_SCREENSHOTS=1 to refresh "
                    "docs/*.png from notebook 01 in a real session")
def test_readme_screenshots_from_the_tutorial(page: Any) -> None:
    """Notebook 01 run as a newcomer would (up to its clean-up), then both panels, light and dark.

    Its own server, rooted at ``/tmp/flx_ipy/notebooks`` as a checkout's would be, so the
    pictures show the paths a user sees rather than pytest's temporary folders.
    """
    base = Path(tempfile.gettempdir()) / "flx_ipy"
    shutil.rmtree(base, ignore_errors=True)
    source = json.loads((ROOT / "notebooks" / "01-first-plugin.ipynb").read_text())
    cells = source["cells"][:_tutorial_cells(source)]
    if not any(re.search(r"%plugin panel|display\(pm\)", "".join(c["source"])) for c in cells):
        cells.append({"cell_type": "code", "id": "flxshots", "metadata": {}, "outputs": [], "execution_count": None,
                      "source": "%plugin panel"})
    source["cells"] = cells
    board = ".jp-Notebook .jp-OutputArea:has(.jupyter-widgets)"
    with running_lab(base) as server:
        try:
            for theme, suffix in [("JupyterLab Light", ""), ("JupyterLab Dark", "-dark")]:
                _server_theme(server, theme)
                name = f"01-first-plugin{suffix}.ipynb"
                server.api("PUT", f"/api/contents/{name}", {"type": "notebook", "format": "json", "content": source})
                lab = Lab(page, server, name).open()
                page.wait_for_function(THEME_IS, arg=theme)
                lab.open_panel()
                page.evaluate("async () => { await window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
                page.wait_for_function("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                                       ".status === 'idle' && window.jupyterapp.shell.currentWidget.content.widgets"
                                       ".every(c => c.model.type !== 'code' || c.model.executionCount !== null)",
                                       timeout=120_000)
                expect(page.locator(board).last).to_be_visible()
                expect(lab.tid("flx-plugins").locator("[data-testid^='flx-row-']")).not_to_have_count(0)
                page.locator(board).last.scroll_into_view_if_needed()
                if not suffix:
                    # Both panels and the status bar. Light only: headless Chromium without a GPU
                    # keeps parts of a dark page painted light in a full-page picture.
                    page.screenshot(path=str(ROOT / "docs" / "jupyterlab.png"))
                page.screenshot(path=str(ROOT / "docs" / f"side-panel{suffix}.png"), clip=page.evaluate(PANEL_BOX))
                page.locator(board).last.screenshot(path=str(ROOT / "docs" / f"dashboard{suffix}.png"))
                lab.kernel("%plugin unwatch")
        finally:
            _server_theme(server, "JupyterLab Light")


# The side panel's box, down to the end of its content (not the empty space below it).
PANEL_BOX = """() => {
  const panel = document.querySelector("[data-testid='flx-panel']");
  const box = panel.getBoundingClientRect();
  const bottom = Math.max(...[...panel.children].map(c => c.getBoundingClientRect().bottom));
  return { x: box.x, y: box.y, width: box.width, height: Math.min(box.height, bottom - box.y + 8) };
}"""


def test_a_save_waiting_for_the_running_cell_is_shown(page: Any, lab_server: LabServer, work: Path) -> None:
    """While a cell runs, a settled save waits (one cell sees one version) and the panel says so."""
    counter = _plugin(work, "counter", HEALTH)
    # %plugin watch (not pm.watch): the magic's watcher holds saves back while a cell runs
    notebook = lab_server.new_notebook([LOAD_EXT, _load(counter), f"%plugin watch {work}"], stem="ux")
    lab = Lab(page, lab_server, notebook).open()
    for i in range(3):
        lab.run_cell(i)
    lab.open_panel()
    lab.expect_attr("flx-row-counter", "data-state", "running")
    lab.expect_attr("flx-watcher", "data-watching", "true")
    lab.wait_kernel_ready()
    release = work / "release.flag"
    lab.submit(f"import os, time\nwhile not os.path.exists({str(release)!r}): time.sleep(0.02)")
    lab.page.wait_for_function("() => window.jupyterapp.shell.currentWidget.sessionContext.session"
                               ".kernel.status === 'busy'")
    write_plugin(counter, plugin_source("counter", "1.1.0", HEALTH, cls="Counter"))
    lab.expect_text("flx-saves-waiting", "1 save waiting for the running cell")
    lab.expect_text("flx-version-counter", "v1.0.0")  # not applied mid-cell
    release.touch()
    lab.expect_text("flx-version-counter", "v1.1.0")
    expect(lab.tid("flx-saves-waiting")).to_have_count(0)
    lab.kernel("%plugin unwatch")
