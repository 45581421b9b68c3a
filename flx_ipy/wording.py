"""One voice for people: the palette, the clock and the phrases every view of flx_ipy uses.

``%plugin list`` (``display.py``), the inline dashboard (``widgets/render.py``), the status line
under ``%plugin watch`` and the event log all render the same :mod:`flx_ipy.protocol` views
through these functions, so a failure reads the same everywhere, a time is always ``HH:MM:SS``
local time, and a colour means the same thing in a table and on a badge.

Colours are JupyterLab CSS variables with a light-theme fallback (a saved notebook rendered
elsewhere, nbconvert HTML): in JupyterLab they follow the theme, dark included.
Pure Python; no IPython, no ipywidgets.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

__all__ = ["PALETTE", "clock", "health_text", "reload_text", "state_color", "watcher_text"]


def _var(name: str, fallback: str) -> str:
    return f"var(--jp-{name}, {fallback})"


#: the meaning of each colour, as CSS values (JupyterLab's theme variables, light fallback)
PALETTE: dict[str, str] = {
    "ok": _var("success-color1", "#2e7d32"),
    "fail": _var("error-color1", "#c62828"),
    "warn": _var("warn-color1", "#ef6c00"),
    "info": _var("brand-color1", "#1565c0"),
    "muted": _var("ui-font-color2", "#757575"),
    "faint": _var("ui-font-color3", "#9e9e9e"),
    "text": _var("ui-font-color1", "#212121"),
    "border": _var("border-color2", "#e0e0e0"),
    "on_color": _var("ui-inverse-font-color1", "#fff"),
}

#: lifecycle state -> colour meaning
STATE_MEANING: dict[str, str] = {
    "running": "ok", "stopped": "muted", "unloaded": "faint", "failed": "fail", "reloading": "warn",
    "loaded": "info", "initialized": "info", "discovered": "info",
}
#: health status -> colour meaning
HEALTH_MEANING: dict[str, str] = {"healthy": "ok", "degraded": "warn", "unhealthy": "fail", "unknown": "faint"}


def state_color(state: str) -> str:
    return PALETTE[STATE_MEANING.get(state, "muted")]


def health_color(status: str) -> str:
    return PALETTE[HEALTH_MEANING.get(status, "muted")]


def clock(epoch: float | None) -> str:
    """The one clock: local ``HH:MM:SS`` (empty when unknown)."""
    return time.strftime("%H:%M:%S", time.localtime(epoch)) if epoch else ""


def one_line(text: Any, limit: int = 160) -> str:
    """The first line of ``text``, shortened with an ellipsis: rows never show a traceback."""
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "?"
    return f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms"


def _get(view: Any, key: str) -> Any:
    return view.get(key) if isinstance(view, Mapping) else getattr(view, key, None)


def health_text(health: Any) -> str:
    """A :class:`~flx_ipy.protocol.HealthView` (or ``None``: not checked in this run)."""
    if health is None:
        return "not checked"
    message = _get(health, "message")
    return f"{_get(health, 'status')}" + (f": {one_line(message, 80)}" if message else "")


def reload_text(last: Any) -> str:
    """A :class:`~flx_ipy.protocol.ReloadView`: what the last reload did, in one line."""
    if last is None:
        return "never reloaded"
    note = _get(last, "note")
    if _get(last, "ok"):
        return note if note else f"ok in {fmt_ms(_get(last, 'duration_ms'))}"
    why = one_line(_get(last, "error") or "unknown error", 120)
    return f"rolled back: {why}" if _get(last, "rolled_back") else f"failed: {why}"


def watcher_text(watcher: Any) -> str:
    if not _get(watcher, "watching"):
        return "not watching — `%plugin watch` reloads plugins when you save"
    paths = _get(watcher, "paths") or []
    text = f"watching {len(paths)} folder{'s' if len(paths) != 1 else ''}: " + ", ".join(paths)
    waiting = _get(watcher, "saves_waiting") or 0
    return text + (f" · {waiting_text(waiting)}" if waiting else "")


def waiting_text(count: int) -> str:
    return f"{count} save{'s' if count != 1 else ''} waiting for the running cell"


def failure_text(phase: str | None, error: str | None, where: str | None = None, *,
                 reload: bool = False, rolled_back: bool = False) -> str:
    """The one phrasing of a failure; the core's kept ``record.error`` reads the same way
    ("start failed: RuntimeError: boom at greeter.py:12", "reload failed in compile: ... at
    greeter.py:10 — previous version still running"). The location is said once."""
    if reload:
        head = "reload failed" + (f" in {phase}" if phase else "")
    else:
        head = f"{phase} failed" if phase else "failed"
    text = head + (f": {error}" if error else "")
    if where and where not in (error or ""):
        text += f" at {where}"
    if reload:
        text += " — previous version still running" if rolled_back else " — plugin not running"
    return text
