"""One plugin's row of the dashboard: badge, name, version, health, last reload, buttons, and a
details line (an isolated plugin's worker, a modified signature's files, hook and reload timings).

The row owns no state: :meth:`PluginRow.update` redraws it from a :class:`~flx_ipy.protocol.PluginView`
(the UI state model's row), and only widgets whose value really changed send a comm message —
traitlets compares before it syncs, so a health tick does not resend the whole row.

Buttons call ``on_action(name, action)``, supplied by the dashboard, which runs the manager and
returns ``(ok, message)``; a failure is one line under the row, never a traceback. A button is
enabled only where the manager accepts the action (:data:`flx_ipy.protocol.ALLOWED_ACTIONS`,
the table the side panel uses too; :func:`~flx_ipy.protocol.row_actions` adds that *rollback* needs
an earlier revision and an in-process plugin). *Unload* throws the plugin's state away, so its first
click only asks: the button becomes "confirm unload" beside a "cancel", and the second click unloads.
*Rollback* runs the revision picked beside it (newest first; default the one before the current).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import ipywidgets as w

from ..protocol import PLUGIN_ACTIONS, REVISION_ACTIONS, PluginView, rollback_targets, row_actions
from ..wording import one_line
from . import render

#: ``(name, action, revision=None) -> (ok, one line)``
ActionRunner = Callable[..., tuple[bool, str]]

_STYLES = {"start": "success", "stop": "", "reload": "info", "unload": "danger", "rollback": "warning"}
_ICONS = {"start": "play", "stop": "stop", "reload": "refresh", "unload": "trash", "rollback": "history"}


def css_name(name: str) -> str:
    """A plugin name usable in a CSS class (names may contain ``.`` and ``-``)."""
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)


class PluginRow(w.VBox):
    """The widgets of one plugin. Attributes are public so tests can assert on them."""

    def __init__(self, view: PluginView, on_action: ActionRunner,
                 locked: Callable[[], AbstractContextManager[object]] = nullcontext) -> None:
        self.name = view["name"]
        self._on_action = on_action
        self._locked = locked
        self._acting = False
        self._action_error: str | None = None
        self._view_error: str | None = None
        self.badge = w.HTML(layout=w.Layout(flex="0 0 92px"))
        self.title = w.HTML(layout=w.Layout(flex="0 0 130px", overflow="hidden"))
        self.version = w.HTML(layout=w.Layout(flex="0 0 72px"))
        self.health = w.HTML(layout=w.Layout(flex="0 0 180px", overflow="hidden"))
        self.last_reload = w.HTML(layout=w.Layout(flex="1 1 0", min_width="110px", overflow="hidden"))
        # the error wraps under the row (never wider than it: no scrollbar of its own)
        self.error = w.HTML(layout=w.Layout(margin="0 0 0 96px", width="auto", overflow="hidden"))
        self.buttons: dict[str, w.Button] = {}
        for action in (*PLUGIN_ACTIONS, *REVISION_ACTIONS):
            button = w.Button(description=action, tooltip=f"{action} {self.name}", icon=_ICONS[action],
                              button_style=_STYLES[action],
                              layout=w.Layout(width="auto", height="26px", padding="0 6px"))
            button.add_class("flx-btn")
            button.add_class(f"flx-btn-{action}")
            button.on_click(lambda _b, a=action: self.act(a))
            self.buttons[action] = button
        #: the revision a rollback runs (``pm.history``, newest first, the current left out)
        self.revision_picker = w.Dropdown(options=[], description="", tooltip=f"revision of {self.name} to run again",
                                          layout=w.Layout(width="auto", max_width="100%", height="24px"))
        self.revision_picker.add_class("flx-revision-picker")
        self.details = w.HTML(layout=w.Layout(margin="0 0 0 96px", width="auto", overflow="hidden"))
        for part, widget in (("badge", self.badge), ("name", self.title), ("version", self.version),
                             ("health", self.health), ("reload", self.last_reload), ("error", self.error),
                             ("details", self.details)):
            widget.add_class(f"flx-cell-{part}")
        self.confirming = False
        self.cancel = w.Button(description="cancel", tooltip="keep the plugin loaded",
                               layout=w.Layout(width="auto", height="26px", padding="0 8px", display="none"))
        self.cancel.add_class("flx-btn")
        self.cancel.add_class("flx-btn-cancel")
        self.cancel.on_click(lambda _b: self.cancel_unload())
        self._button_box = w.HBox([*self.buttons.values(), self.cancel], layout=w.Layout(flex="0 0 auto"))
        # the picker goes on a line of its own under the row (only while there is a revision to
        # go back to), so the five buttons still fit beside the row in a usual notebook width
        self._picker_label = w.HTML(f'<span style="color:{render.MUTED};font-size:12px">roll back to</span>',
                                    layout=w.Layout(flex="0 0 auto", margin="0 6px 0 0"))
        self._picker_line = w.HBox([self._picker_label, self.revision_picker],
                                   layout=w.Layout(margin="0 0 0 96px", align_items="center", display="none",
                                                   flex_flow="row wrap"))
        self._picker_line.add_class("flx-rollback-line")
        self._line = w.HBox([self.badge, self.title, self.version, self.health, self.last_reload,
                             self._button_box],
                            # narrow notebooks wrap the buttons under the row rather than clip them
                            layout=w.Layout(align_items="center", width="100%", flex_flow="row wrap"))
        super().__init__([self._line, self.error, self._picker_line, self.details],
                         layout=w.Layout(border_bottom=f"1px solid {render.BORDER}", padding="2px 0"))
        self.add_class("flx-row")
        self.add_class(f"flx-row-{css_name(self.name)}")
        self.view = view
        self.update(view)

    def update(self, view: PluginView) -> None:
        """Redraw from the state model's row (called under the dashboard's lock)."""
        self.view = view
        if not self._acting:
            self._action_error = None  # news from the manager supersedes an old click's error
        self._view_error = view["error"]
        self.badge.value = render.badge_html(view["state"])
        self.title.value = render.name_html(view)
        self.version.value = render.version_html(view["version"])
        self.health.value = render.health_html(view["health"])
        self.last_reload.value = render.reload_html(view["last_reload"])
        details = render.details_html(view)
        self.details.value = details
        self.details.layout.display = "" if details else "none"
        self._update_picker(view)
        allowed = row_actions(view)
        for action, button in self.buttons.items():
            button.disabled = action not in allowed
            if button.disabled:
                button.tooltip = self._why_not(action, view)
            elif not (action == "unload" and self.confirming):
                button.tooltip = f"{action} {self.name}"
        if self.confirming and "unload" not in allowed:
            self.cancel_unload()
        self._show_error()

    def _why_not(self, action: str, view: PluginView) -> str:
        if action == "rollback" and not rollback_targets(view) and view["state"] in ("running", "stopped",
                                                                                      "loaded", "initialized"):
            return f"{self.name} has no earlier revision to roll back to"
        return f"{action} is not possible while {self.name} is {view['state']}"

    def _update_picker(self, view: PluginView) -> None:
        targets = rollback_targets(view)
        options = [(render.revision_label(r), r["revision"]) for r in targets]
        before = list(self.revision_picker.options)
        if before != options:
            keep = self.revision_picker.value
            values = [v for _, v in options]
            # a new revision (a reload) resets the choice to the one before the current; a
            # relabel or a revision falling off the end keeps what the user picked
            new_head = not before or before[0][1] != (values[0] if values else None)
            self.revision_picker.options = options
            self.revision_picker.value = (values[0] if values else None) if new_head or keep not in values else keep
        self.revision_picker.disabled = "rollback" not in row_actions(view)
        self._picker_line.layout.display = "" if options else "none"

    def _show_error(self) -> None:
        self.error.value = render.error_html(self._action_error or self._view_error)
        self.error.layout.display = "" if (self._action_error or self._view_error) else "none"

    def ask_unload(self) -> None:
        """First click on *unload*: ask, because unloading throws the plugin's state away."""
        with self._locked():
            self.confirming = True
            button = self.buttons["unload"]
            button.description = "confirm unload"
            button.tooltip = f"unloading {self.name} throws its state away; click again to unload"
            self.cancel.layout.display = ""

    def cancel_unload(self) -> None:
        with self._locked():
            self.confirming = False
            button = self.buttons["unload"]
            button.description = "unload"
            button.tooltip = f"unload {self.name}"
            self.cancel.layout.display = "none"

    def act(self, action: str, *, confirmed: bool = False, revision: int | None = None) -> bool:
        """What a click does: run ``action`` on the manager; a failure becomes the row's error.
        *Unload* needs a second click (or ``confirmed=True``); the first returns False.
        *Rollback* runs ``revision`` (default: the one picked beside the button)."""
        if action == "unload" and not (confirmed or self.confirming):
            self.ask_unload()
            return False
        if action == "unload":
            self.cancel_unload()
        self._acting = True
        extra: dict[str, Any] = {}
        if action == "rollback":
            extra["revision"] = revision if revision is not None else self.revision_picker.value
        try:
            ok, message = self._on_action(self.name, action, **extra)
        except Exception as e:  # the runner is ours; still, a click must never raise into the kernel
            ok, message = False, f"{action} {self.name} failed: {e}"
        finally:
            self._acting = False
        with self._locked():  # the watcher thread may be redrawing this row right now
            self._action_error = None if ok else one_line(message, 240)
            self._show_error()
        return ok

    def close(self) -> None:
        for child in (self.badge, self.title, self.version, self.health, self.last_reload, self.error,
                      self.details, self.revision_picker, self._picker_label, self._picker_line,
                      *self.buttons.values(), self.cancel, self._button_box, self._line):
            child.close()
        super().close()
