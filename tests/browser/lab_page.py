"""What a browser test does with one notebook page and the side panel (shared by the tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab_js import KERNEL_READY, RUN_CELL

LabServer = Any  # tests/browser/conftest.py's LabServer (conftest modules are not imported by name)

HEALTH = '''
def start(self):
    self.ticks = getattr(self, "ticks", 0)

def health_check(self):
    return HealthStatus.healthy(f"{self.ticks} ticks")
'''

LOAD_EXT = "%load_ext flx_ipy\nimport flx_ipy\npm = flx_ipy.get_manager()"

# Like lab_js.KERNEL_EVAL, but in the kernel of the notebook at `path`, whichever tab is active
# (a test may have an editor in front).
KERNEL_EVAL_IN = """async ({ code, path }) => {
  let panel = null;
  for (const w of window.jupyterapp.shell.widgets('main')) {
    if (w.context && w.context.path === path && w.sessionContext) { panel = w; }
  }
  const kernel = panel.sessionContext.session.kernel;
  const future = kernel.requestExecute({ code, store_history: false });
  let out = null;
  future.onIOPub = msg => {
    if (msg.header.msg_type === 'execute_result') { out = msg.content.data['text/plain']; }
    if (msg.header.msg_type === 'error') { out = 'ERROR ' + msg.content.ename + ': ' + msg.content.evalue; }
  };
  await future.done;
  return out;
}"""

KERNEL_SUBMIT = """(code) => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  kernel.requestExecute({ code, store_history: false });
}"""


class Lab:
    """What a test does with one notebook page and the side panel."""

    def __init__(self, page: Any, server: LabServer, notebook: str) -> None:
        self.page = page
        self.server = server
        self.notebook = notebook

    def open(self) -> Lab:
        self.page.goto(self.server.url(self.notebook))
        self.wait_kernel_ready()
        return self

    def wait_kernel_ready(self, timeout: float = 60_000) -> None:
        self.page.wait_for_function(KERNEL_READY, timeout=timeout)

    def run_cell(self, index: int) -> None:
        self.page.evaluate(RUN_CELL, index)

    def kernel(self, code: str) -> str | None:
        result = self.page.evaluate(KERNEL_EVAL_IN, {"code": code, "path": self.notebook})
        return None if result is None else str(result)

    def submit(self, code: str) -> None:
        """Start code in the kernel without waiting for it (the kernel stays busy)."""
        self.page.evaluate(KERNEL_SUBMIT, code)

    def open_panel_from_palette(self) -> None:
        self.page.keyboard.press("Control+Shift+C")
        palette = self.page.locator(".lm-CommandPalette-input")
        palette.fill("flx_ipy: Open plugin panel")
        self.page.locator(".lm-CommandPalette-item", has_text="flx_ipy: Open plugin panel").first.click()
        self.tid("flx-panel").wait_for(state="visible")

    def open_panel(self) -> None:
        self.page.evaluate("() => window.jupyterapp.commands.execute('flx_ipy:open-panel')")
        self.tid("flx-panel").wait_for(state="visible")

    def tid(self, testid: str) -> Any:
        return self.page.locator(f"[data-testid='{testid}']")

    def expect_attr(self, testid: str, attr: str, value: str, timeout: float = 20_000) -> None:
        from playwright.sync_api import expect

        expect(self.tid(testid)).to_have_attribute(attr, value, timeout=timeout)

    def expect_text(self, testid: str, text: str, timeout: float = 20_000) -> None:
        from playwright.sync_api import expect

        expect(self.tid(testid)).to_contain_text(text, timeout=timeout)

    def panel_comms_in_kernel(self) -> int:
        out = self.kernel("len([c for c in get_ipython().kernel.comm_manager.comms.values() "
                          "if c.target_name == 'flx_ipy'])")
        assert out is not None
        return int(out)


def new_lab(page: Any, server: LabServer, plugin: Path, *extra: str) -> Lab:
    notebook = server.new_notebook([LOAD_EXT, f"pm.load({str(plugin)!r}, start=True)\npm.health('counter')",
                                    *extra])
    return Lab(page, server, notebook).open()


# --- JupyterLab itself: themes, editors, the shell ---------------------------------------------

SET_THEME = """async (theme) => {
  await window.jupyterapp.commands.execute('apputils:change-theme', { theme });
}"""

# The theme manager sets these once the theme's stylesheet has loaded.
THEME_IS = """(theme) => document.body.dataset.jpThemeName === theme &&
  document.body.dataset.jpThemeLight === String(!/dark/i.test(theme))"""

# Path and (0-based) cursor line of the active document, if it is a file editor.
EDITOR_STATE = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  if (!w || !w.context || !w.content || !w.content.editor) { return null; }
  const editor = w.content.editor;
  return { path: w.context.path, line: editor.getCursorPosition().line, text: editor.model.sharedModel.getSource(),
           dirty: w.context.model.dirty };
}"""


def set_theme(page: Any, theme: str) -> None:
    """Switch JupyterLab's theme and wait until its CSS variables apply (it persists: reset it)."""
    page.evaluate(SET_THEME, theme)
    page.wait_for_function(THEME_IS, arg=theme)
    # the stylesheet is in; let the page paint it everywhere before anyone takes a picture
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(null))))")


def editor_state(page: Any) -> dict[str, Any] | None:
    state = page.evaluate(EDITOR_STATE)
    return None if state is None else dict(state)


def open_in_editor(page: Any, path: str) -> None:
    """Open ``path`` (relative to the server root) in JupyterLab's file editor and focus it."""
    page.evaluate("(path) => window.jupyterapp.commands.execute('docmanager:open', { path, factory: 'Editor' })", path)
    page.wait_for_function("(path) => { const w = window.jupyterapp.shell.currentWidget;"
                           " return !!w && !!w.context && w.context.path === path && w.context.isReady; }", arg=path)
    page.locator(".jp-FileEditor .cm-content").first.click()
