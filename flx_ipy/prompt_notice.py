"""One dim line at the terminal prompt when a watched save was applied.

In terminal IPython a reload happens either just before the next command runs, or — with
``%gui asyncio`` — while the prompt waits. Either way nothing on screen said so. This prints one
dim line per applied reload ("flx_ipy: greeter reloaded in 1.2 ms (from 1.0.0 to 1.1.0)"), in
the event log's words. While the prompt is on screen the line goes through prompt_toolkit's
``run_in_terminal``, which lifts the prompt, prints, and draws it again, so the line the user is
typing is kept. Failures are not printed here: they are notices, shown before the next cell.
"""

from __future__ import annotations

import sys
from typing import Any

DIM, RESET = "\x1b[2m", "\x1b[0m"

__all__ = ["dim_line", "reload_lines"]


def reload_lines(results: list[Any]) -> list[str]:
    """The lines to print for an applied batch: ok reloads and cleared errors only."""
    lines = []
    for r in results:
        if not getattr(r, "ok", False):
            continue
        notes = list(getattr(r, "notes", None) or [])
        if getattr(r, "modules", None):
            lines.append(f"flx_ipy: {r.summary()}")
        elif notes:
            lines.append(f"flx_ipy: {r.plugin}: error cleared — {notes[0]}")
    return lines


def dim_line(text: str, *, color: bool = True) -> None:
    line = f"{DIM}{text}{RESET}" if color else text
    try:
        from prompt_toolkit.application import get_app_or_none, run_in_terminal

        app = get_app_or_none()
        if app is not None and app.is_running:
            run_in_terminal(lambda: print(line, file=sys.stdout, flush=True))
            return
    except Exception:  # no prompt_toolkit app: a plain print is right
        pass
    print(line, file=sys.stdout, flush=True)
