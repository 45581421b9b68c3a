"""The dashboard's plugin-index section: list what an index offers, install one, watch pip run.

It calls :func:`flx_ipy.registry.panel.index_action` — the same function the side panel's
``index_search`` / ``install`` actions run in the lab bridge — so both panels list, install and
fail the same way: ``(ok, one line, data)``, never a traceback. pip's output arrives line by line
through the ``progress`` callback and is shown while pip runs: ipykernel sends widget updates
from the running handler at once (``docs/architecture.md``), so the lines appear live.

Hidden until the dashboard's *plugin index* toggle opens it, and nothing is read from the index
until *list* is clicked (an index may be a slow URL).
"""

from __future__ import annotations

import os
from collections import deque
from typing import Any

import ipywidgets as w

from ..wording import one_line
from . import render

#: pip lines kept on screen while it runs (the whole output goes to the event log's install line)
PROGRESS_LINES = 8


class IndexPanel(w.VBox):
    """Index location, search term, *list*, the offers, a version and *install*.

    ``target``: install into that folder (pip ``--target``) instead of the kernel's environment.
    Public attributes are for tests and for embedding.
    """

    def __init__(self, manager: Any, *, index: str | None = None, target: str | None = None) -> None:
        self.manager = manager
        self.target = target
        self.rows: list[dict[str, Any]] = []
        self.installing = False
        self._lines: deque[str] = deque(maxlen=PROGRESS_LINES)
        self.location = w.Text(value=index or _configured(), placeholder="index folder or URL (default: "
                               "c.PluginMagics.index, $FLX_IPY_INDEX)",
                               layout=w.Layout(flex="1 1 240px", min_width="160px"))
        self.term = w.Text(placeholder="search (name, plugin, summary)", layout=w.Layout(flex="0 1 200px"))
        self.list_button = w.Button(description="list", icon="search", tooltip="list the plugins the index offers",
                                    layout=w.Layout(width="auto", height="26px"))
        self.offers = w.HTML()
        self.pick = w.Dropdown(options=[], layout=w.Layout(width="auto", max_width="260px", height="26px"))
        self.version = w.Dropdown(options=[], layout=w.Layout(width="auto", max_width="120px", height="26px"))
        self.install_button = w.Button(description="install", icon="download", button_style="success",
                                       disabled=True, layout=w.Layout(width="auto", height="26px"))
        self.progress = w.HTML()
        self.message = w.HTML()
        for cls, widget in (("list", self.list_button), ("install", self.install_button)):
            widget.add_class("flx-btn")
            widget.add_class(f"flx-btn-{cls}")
        for part, widget in (("offers", self.offers), ("progress", self.progress), ("index-message", self.message),
                             ("pick", self.pick), ("pick-version", self.version)):
            widget.add_class(f"flx-part-{part}")
        self.list_button.on_click(lambda _b: self.list())
        self.install_button.on_click(lambda _b: self.install())
        self.pick.observe(lambda _c: self._versions(), names="value")
        self._search = w.HBox([self.location, self.term, self.list_button],
                              layout=w.Layout(flex_flow="row wrap", align_items="center", width="100%"))
        self._choose = w.HBox([self.pick, self.version, self.install_button],
                              layout=w.Layout(flex_flow="row wrap", align_items="center", display="none"))
        super().__init__([self._search, self.message, self.offers, self._choose, self.progress],
                         layout=w.Layout(border_top=f"1px solid {render.BORDER}", padding="4px 0", width="100%"))
        self.add_class("flx-index")

    def _index(self) -> str | None:
        return self.location.value.strip() or None

    def list(self) -> bool:
        """Ask the index for its offers (``index_search``); a failure is one line."""
        from ..registry.panel import index_action

        ok, text, data = index_action(self.manager, "index_search", term=self.term.value.strip() or None,
                                      index=self._index())
        self.rows = list(data or []) if ok else []
        self.offers.value = render.offers_html(self.rows) if ok else ""
        keep = self.pick.value
        self.pick.options = [(f"{r['name']} ({', '.join(r['plugins'])})" if r["plugins"] else r["name"], r["name"])
                             for r in self.rows]
        names = [r["name"] for r in self.rows]
        self.pick.value = keep if keep in names else (names[0] if names else None)  # options= selects nothing
        self._versions()
        self._choose.layout.display = "" if self.rows else "none"
        self.message.value = render.outcome_html(ok, text)
        return ok

    def _versions(self) -> None:
        row = next((r for r in self.rows if r["name"] == self.pick.value), None)
        versions = list(reversed(row["versions"])) if row else []  # newest first
        if list(self.version.options) != versions:
            self.version.options = versions
            self.version.value = versions[0] if versions else None
        self.install_button.disabled = row is None or self.installing
        if row is not None:
            self.install_button.tooltip = f"pip install {row['name']} from the index" + (
                f" into {self.target}" if self.target else " into this kernel's environment")

    def install(self, spec: str | None = None) -> bool:
        """Install the picked distribution and version (or ``spec``); pip's lines show as it runs."""
        from ..registry.panel import index_action

        if spec is None:
            if not self.pick.value:
                self.message.value = render.outcome_html(False, "pick a plugin package to install first")
                return False
            spec = f"{self.pick.value}=={self.version.value}" if self.version.value else str(self.pick.value)
        self.installing = True
        self.install_button.disabled = self.list_button.disabled = True
        self._lines.clear()
        self.progress.value = render.progress_html([f"pip install {spec} …"], running=True)
        self.message.value = ""

        def line(text: str) -> None:
            if text.strip():
                self._lines.append(one_line(text, 200))
                self.progress.value = render.progress_html(list(self._lines), running=True)

        try:
            ok, text, _data = index_action(self.manager, "install", spec=spec, index=self._index(),
                                           progress=line, target=self.target)
        finally:
            self.installing = False
            self.list_button.disabled = False
            self._versions()
        self.progress.value = render.progress_html(list(self._lines), running=False) if not ok and self._lines else ""
        self.message.value = render.outcome_html(ok, text)
        return ok


    def close(self) -> None:
        for child in (self.location, self.term, self.list_button, self.offers, self.pick, self.version,
                      self.install_button, self.progress, self.message, self._search, self._choose):
            child.close()
        super().close()


def _configured() -> str:
    from ..registry import INDEX_ENV
    from ..registry.panel import configured_index

    return configured_index() or os.environ.get(INDEX_ENV, "")


__all__ = ["IndexPanel"]
