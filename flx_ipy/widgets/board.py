"""The inline dashboard: the plugin manager as live ipywidgets.

Named ``board`` (not ``dashboard``) so importing it does not shadow the package's ``dashboard``
function with a submodule attribute.

It folds the stream of :class:`flx_ipy.uistate.UIState` — one snapshot, then a delta per manager
event, the same messages the JupyterLab side panel receives — into widgets. Nothing here reads
manager internals: rows come from the state model, actions go through the manager's public API.

Why updates are sent from whichever thread the event came from, not marshalled to the kernel's
loop: ipykernel sends comm messages from any thread at once (``docs/architecture.md``), so a
reload applied by the watcher thread — or by a background thread while a long cell runs — shows
immediately. Marshalling to the loop would hold every update until a running cell ends. Widget
mutations stay serialised because ``UIState`` calls its listeners under one lock, and the
dashboard's own changes (a click's error line) take that same lock.

Closing the dashboard stops listening and unsubscribes from the manager.
"""

from __future__ import annotations

import logging
import weakref
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ipywidgets as w

from ..protocol import DeltaMsg, EventView, PluginView, StateView
from ..uistate import UIState, run_action
from ..wording import PALETTE, one_line
from . import render
from .row import PluginRow, css_name

log = logging.getLogger("flx_ipy")

#: Noise in the log: ``reloading`` is always followed by its outcome within milliseconds, and
#: ``saves_waiting`` is shown on the watcher line while it lasts.
_NOT_LOGGED = frozenset({"reloading", "saves_waiting"})


class Dashboard(w.VBox):
    """Rows per plugin, watcher state, reload-latency plot and event log; live.

    ``Dashboard(pm)`` follows ``pm`` until :meth:`close`. Public attributes (``rows``,
    ``header``, ``watcher``, ``plot``, ``event_log``, ``health_button``) are for tests and for
    embedding parts elsewhere.
    """

    def __init__(self, manager: Any, *, log_size: int = 12, plot_size: int = 40) -> None:
        self.manager = manager
        self.log_size = log_size
        self.rows: dict[str, PluginRow] = {}
        self._events: deque[EventView] = deque(maxlen=log_size)  # newest first
        self._latencies: deque[render.Latency] = deque(maxlen=plot_size)
        self.header = w.HTML()
        self.health_button = w.Button(description="check health", icon="heartbeat",
                                      tooltip="run every plugin's health check",
                                      layout=w.Layout(width="auto", height="26px"))
        self.health_button.add_class("flx-btn-health")
        self.health_button.on_click(lambda _b: self.check_health())
        #: the plugin-index section (:mod:`flx_ipy.widgets.index`), built on first open
        self.index: Any = None
        self.index_button = w.ToggleButton(description="plugin index", icon="archive", value=False,
                                           tooltip="list the plugins an index offers and install one",
                                           layout=w.Layout(width="auto", height="26px"))
        self.index_button.add_class("flx-btn-index")
        self.index_button.observe(lambda c: self.show_index(bool(c["new"])), names="value")
        self.message = w.HTML()
        self.watcher = w.HTML()
        self.empty = w.HTML(render.error_html(None))
        self.row_box = w.VBox(layout=w.Layout(width="100%"))
        self.plot = w.HTML(layout=w.Layout(flex="0 0 auto", margin="0 24px 0 0"))
        self.event_log = w.HTML(layout=w.Layout(flex="1 1 auto"))
        # Containers are "flx-part-*"; the HTML inside carries the semantic class (flx-watcher ...).
        for part, widget in (("header", self.header), ("message", self.message), ("watcher", self.watcher),
                             ("rows", self.row_box), ("empty", self.empty), ("latency", self.plot),
                             ("log", self.event_log)):
            widget.add_class(f"flx-part-{part}")
        #: hidden while the kernel lives; says how to get a live dashboard back after a restart
        self.restart_notice = w.HTML(render.restart_notice_html())
        self.restart_notice.add_class("flx-part-restart")
        self.header.layout = w.Layout(flex="1 1 auto")
        self._top = w.HBox([self.header, self.message, self.health_button, self.index_button],
                           layout=w.Layout(align_items="center", flex_flow="row wrap"))
        self._bottom = w.HBox([self.plot, self.event_log], layout=w.Layout(margin="6px 0 0 0"))
        super().__init__([self.restart_notice, self._top, self.watcher, self.empty, self.row_box, self._bottom],
                         layout=w.Layout(border=f"1px solid {PALETTE['border']}", padding="6px 10px",
                                         width="100%"))
        self.add_class("flx-dashboard")
        self.closed = False
        self.state = UIState(manager, max_events=max(50, log_size)).attach()
        self._stop_listening = self.state.listen(self._on_message)

    # --- the state stream ----------------------------------------------------------------------

    def _on_message(self, message: Any) -> None:
        """Called by ``UIState`` under its lock, from whichever thread emitted the event."""
        if self.closed:
            return
        if message["kind"] == "snapshot":
            self._load(message["state"])
        elif message["kind"] == "delta":
            self._apply(message)

    def _load(self, state: StateView) -> None:
        self._events.clear()
        self._events.extendleft(e for e in state["events"] if e["kind"] not in _NOT_LOGGED)  # newest first
        self._latencies.clear()
        self._latencies.extend(render.latency_points(state["events"], state["plugins"]))
        seen = set()
        for view in state["plugins"]:
            self._upsert(view)
            seen.add(view["name"])
        for name in set(self.rows) - seen:
            self._remove(name)
        self.watcher.value = render.watcher_html(state["watcher"])
        self._redraw_lists()

    def _apply(self, delta: DeltaMsg) -> None:
        for view in delta["upsert"]:
            self._upsert(view)
        for name in delta["remove"]:
            self._remove(name)
        if delta["watcher"] is not None:
            self.watcher.value = render.watcher_html(delta["watcher"])
        ev = delta["event"]
        if ev is not None:
            if ev["kind"] not in _NOT_LOGGED:
                self._events.appendleft(ev)
            point = self._latency_of(ev, delta["upsert"])
            if point is not None:
                self._latencies.append(point)
        self._redraw_lists()

    @staticmethod
    def _latency_of(ev: EventView, upsert: list[PluginView]) -> render.Latency | None:
        if ev["plugin"] is None or ev["kind"] not in ("reloaded", "reload_failed"):
            return None
        points = render.latency_points([ev], upsert)
        return points[0] if points else None

    def _upsert(self, view: PluginView) -> None:
        row = self.rows.get(view["name"])
        if row is not None:
            row.update(view)
            return
        self.rows[view["name"]] = PluginRow(view, self.run_action, locked=self.locked)
        self.row_box.children = tuple(self.rows[n] for n in sorted(self.rows))

    def _remove(self, name: str) -> None:
        row = self.rows.pop(name, None)
        if row is None:
            return
        self.row_box.children = tuple(self.rows[n] for n in sorted(self.rows))
        row.close()

    def _redraw_lists(self) -> None:
        self.header.value = render.header_html(len(self.rows), self.state.flx_version)
        self.empty.value = ("" if self.rows else
                            f'<span class="flx-empty-text" style="color:{render.MUTED}">no plugins loaded — '
                            "<code>%plugin load TARGET</code></span>")
        self.empty.layout.display = "none" if self.rows else ""
        self.plot.value = render.latency_svg(list(self._latencies))
        self.event_log.value = render.log_html(self._events, self.log_size)

    # --- actions -------------------------------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        """The lock ``UIState`` holds while it calls us: widget changes never interleave."""
        with self.state.locked():
            yield

    def run_action(self, name: str, action: str, revision: int | None = None) -> tuple[bool, str]:
        """What a row's button does (``revision``: a rollback's target); returns ``(ok, one
        line)``. Never raises. The same :func:`flx_ipy.uistate.run_action` the side panel uses."""
        ok, text = run_action(self.manager, action, name, revision=revision)
        return ok, text if ok else one_line(text)

    def check_health(self) -> None:
        """Run every health check; changes arrive as ``health_changed`` events. The message says
        the checks ran even when nothing changed (a click must never look ignored)."""
        events = getattr(self.manager, "events", None)
        before = events.history(1)[-1].seq if events is not None and events.history(1) else 0
        try:
            results = self.manager.health()
        except Exception as e:
            text = render.error_html(f"health check failed: {one_line(e)}")
        else:
            changed = sum(1 for ev in (events.history() if events is not None else [])
                          if ev.seq > before and ev.kind == "health_changed")
            n = len(results) if isinstance(results, dict) else 1
            text = render.checked_html(n, changed)
            self.state.refresh()  # figures without events (worker RSS/CPU, hook timings) as of now
        with self.locked():
            self.message.value = text

    def show_index(self, show: bool = True) -> Any:
        """Open (or close) the plugin-index section; returns its :class:`~flx_ipy.widgets.index.IndexPanel`."""
        if show and self.index is None:
            from .index import IndexPanel

            self.index = IndexPanel(self.manager)
            # above the plot and the log
            self.children = (self.restart_notice, self._top, self.watcher, self.empty, self.row_box, self.index,
                             self._bottom)
        if self.index is not None:
            self.index.layout.display = "" if show else "none"
        if self.index_button.value != show:
            self.index_button.value = show
        return self.index

    # --- display and teardown ------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        """The widget view, plus text/plain and text/html of the same state for frontends
        without a widget manager (terminals, nbclient-executed notebooks, static viewers)."""
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        state = self.state.snapshot()
        bundle["text/plain"] = render.render_text(state)
        bundle["text/html"] = render.render_html(state)
        return dict(bundle)

    def __str__(self) -> str:
        return render.render_text(self.state.snapshot())

    def __repr__(self) -> str:
        return f"<flx_ipy Dashboard: {len(self.rows)} plugins{' (closed)' if self.closed else ''}>"

    def close(self) -> None:
        """Stop following the manager and close every widget of the dashboard."""
        if getattr(self, "closed", True):  # also when __init__ failed half-way (Widget.__del__)
            return
        self.closed = True
        stop = getattr(self, "_stop_listening", None)
        if stop is not None:
            stop()
            self.state.detach()
        for row in list(self.rows.values()):
            row.close()
        self.rows.clear()
        if self.index is not None:
            self.index.close()
        for widget in (self.restart_notice, self.header, self.health_button, self.index_button, self.message,
                       self.watcher,
                       self.empty, self.row_box, self.plot, self.event_log, self._top, self._bottom):
            widget.close()
        _shared.pop(id(self.manager), None)
        super().close()


#: One dashboard per manager for ``display(pm)`` / ``%plugin panel``: every display shows a view
#: of the same widgets, so displaying it in many cells costs one subscription, not one each.
_shared: dict[int, tuple[weakref.ref[Any], Dashboard]] = {}


def dashboard(pm: Any = None, *, new: bool = False) -> Dashboard:
    """The live dashboard of ``pm`` (default: the kernel's manager), shared per manager."""
    if pm is None:
        from ..core import get_manager

        pm = get_manager()
    entry = _shared.get(id(pm))
    if not new and entry is not None and entry[0]() is pm and not entry[1].closed:
        return entry[1]
    board = Dashboard(pm)
    if not new:
        _shared[id(pm)] = (weakref.ref(pm), board)
    return board


__all__ = ["Dashboard", "css_name", "dashboard"]
