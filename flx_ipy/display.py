"""What ``%plugin`` shows: one object per view, rich in a notebook, aligned text in a terminal.

Each view is a small object with ``_repr_html_`` (a table the notebook renders) and
``__repr__`` (aligned columns for terminal IPython and ``text/plain``), so a magic simply
returns it and IPython picks the form the frontend can show. Nothing here talks to the
manager's internals beyond ``pm.plugins``, records' public fields and events.

:class:`StatusLine` is the one view that changes after the cell ends: it is shown with a
display id and updated in place on every manager event, which is how a reload applied while
the kernel is idle (no cell runs, and nbclient drops stray output) still reaches the user.
"""

from __future__ import annotations

import datetime as _dt
import html
import logging
import threading
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

log = logging.getLogger("flx_ipy")

__all__ = ["StatusLine", "Table", "audit_table", "discovery_table", "event_log", "health_table", "plugin_table",
           "signature_label", "validation_view"]

_COLORS = {"running": "#1a7f37", "healthy": "#1a7f37", "failed": "#cf222e", "unhealthy": "#cf222e",
           "reload_failed": "#cf222e", "degraded": "#9a6700", "reloading": "#9a6700",
           "stopped": "#57606a", "unknown": "#57606a"}


def _clock(ts: float | None) -> str:
    return _dt.datetime.fromtimestamp(ts).strftime("%H:%M:%S") if ts else ""


def _cell(value: Any) -> str:
    text = html.escape("" if value is None else str(value))
    color = _COLORS.get(str(value))
    return f'<span style="color:{color}">{text}</span>' if color else text


class Table:
    """Rows under a header, rendered as an HTML table or as aligned text."""

    def __init__(self, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str = "",
                 empty: str = "(nothing)", footer: str = "") -> None:
        self.columns = list(columns)
        self.rows = [["" if v is None else str(v) for v in row] for row in rows]
        self.title, self.empty, self.footer = title, empty, footer

    def __len__(self) -> int:
        return len(self.rows)

    def text(self) -> str:
        lines = [self.title] if self.title else []
        if not self.rows:
            lines.append(self.empty)
        else:
            widths = [max(len(c), *(len(r[i].splitlines()[0] if r[i] else "") for r in self.rows))
                      for i, c in enumerate(self.columns)]
            lines.append("  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True)).rstrip())
            lines.append("  ".join("-" * w for w in widths))
            for r in self.rows:
                first = [v.splitlines()[0] if v else "" for v in r]
                lines.append("  ".join(v.ljust(w) for v, w in zip(first, widths, strict=True)).rstrip())
        if self.footer:
            lines.append(self.footer)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.text())

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{_cell(v)}</td>" for v in r) + "</tr>"
                       for r in self.rows)
        title = f"<div><b>{html.escape(self.title)}</b></div>" if self.title else ""
        if not self.rows:
            return f"{title}<div><i>{html.escape(self.empty)}</i></div>"
        foot = f"<div>{html.escape(self.footer)}</div>" if self.footer else ""
        return (f"{title}<table class='flx-ipy'><thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table>{foot}")


class Text:
    """Preformatted text that also renders as a ``<pre>`` block in a notebook."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.text)

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.text)}</pre>"


# ------------------------------------------------------------------------------ views
def _last_reload(rec: Any) -> str:
    r = getattr(rec, "last_reload", None)
    if r is None:
        return ""
    if r.ok:
        return f"ok {r.duration * 1000:.1f} ms {_clock(r.finished_at)}".strip()
    return f"failed ({r.phase}) {_clock(r.finished_at)}".strip()


def plugin_table(pm: Any) -> Table:
    rows = []
    for name, rec in sorted(pm.plugins.items()):
        health = rec.health.status if rec.health is not None else ""
        rows.append([name, rec.version, rec.status, health, rec.reload_count, _last_reload(rec),
                     signature_label(getattr(rec, "signature", None)), rec.error or "", rec.source])
    watching = getattr(pm, "watched_paths", [])
    footer = (f"watching {len(watching)} folder{'s' if len(watching) != 1 else ''}: {', '.join(watching)}"
              if watching else "not watching (`%plugin watch` to reload on save)")
    return Table(["name", "version", "status", "health", "reloads", "last reload", "signature", "error", "source"],
                 rows,
                 empty="no plugins loaded — `%plugin discover DIR` then `%plugin load NAME`", footer=footer)


def signature_label(sig: Any) -> str:
    """``signed (alice)``, ``modified: a.py, b.py``, ``unsigned``; empty when nothing is checked."""
    if sig is None:
        return ""
    if sig.status == "signed":
        return f"signed ({sig.signer})"
    if sig.status == "modified":
        return f"modified: {', '.join(sig.files)}"
    return str(sig.status)


def audit_table(records: Iterable[dict[str, Any]]) -> Table:
    """Audit records (``%plugin audit``, ``flx-ipy audit tail``), oldest first."""
    def short(text: Any, limit: int = 100) -> str:
        s = " ".join(str(text or "").split())
        return s if len(s) <= limit else s[:limit - 1] + "…"

    rows = [[r.get("time", ""), r.get("operation", ""), r.get("plugin") or "", r.get("outcome", ""),
             r.get("origin", ""), r.get("actor", ""), short(r.get("error"))] for r in records]
    return Table(["time", "operation", "plugin", "outcome", "origin", "actor", "error"], rows,
                 empty="no audit records yet")


def health_table(statuses: dict[str, Any]) -> Table:
    rows = [[name, h.status, h.message] for name, h in sorted(statuses.items())]
    return Table(["name", "health", "message"], rows, empty="no plugins loaded")


def discovery_table(candidates: Iterable[Any]) -> Table:
    rows = []
    for c in candidates:
        md = c.metadata
        rows.append([c.name or "?", md.version if md else "", c.kind, md.description if md else "",
                     c.error or c.note or "", c.target])
    return Table(["name", "version", "from", "description", "problem", "target"], rows,
                 empty="no plugins found — `%plugin discover DIR` adds a folder")


def event_log(events: Iterable[Any], *, verbose: bool = False, details: dict[str, str] | None = None) -> Text | Table:
    """The manager's recent events; ``verbose`` adds each failing plugin's own traceback."""
    rows = []
    for ev in events:
        d = dict(ev.details)
        what = d.pop("error", None) or ""
        if ev.kind == "reloaded" and "duration" in d:
            what = f"{d['duration'] * 1000:.1f} ms" + (f" → {d['version']}" if d.get("version") else "")
        elif ev.kind in ("loaded", "started") and d.get("version"):
            what = str(d["version"])
        elif ev.kind == "watch_started":
            what = ", ".join(d.get("paths") or [])
        if d.get("where"):
            what = f"{what} ({d['where']})"
        rows.append([_clock(ev.time), ev.kind, ev.plugin or "", what])
    table = Table(["time", "event", "plugin", "details"], rows, empty="no events yet")
    if not verbose or not details:
        return table
    text = table.text() + "".join(f"\n\n--- {name} ---\n{tb.rstrip()}" for name, tb in details.items())
    return Text(text)


def validation_view(result: Any) -> Text:
    return Text(str(result))


# ------------------------------------------------------------------------------ status line
class _StatusView:
    def __init__(self, text: str, html_text: str) -> None:
        self._text, self._html = text, html_text

    def __repr__(self) -> str:
        return self._text

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self._text)

    def _repr_html_(self) -> str:
        return self._html


class StatusLine:
    """One line, shown under ``%plugin watch`` / ``%plugin panel`` and updated in place.

    All copies share one display id, so every cell that showed it updates together. Updates
    come from whichever thread emitted the event (the kernel's loop when a save is applied
    while idle); a display update is one iopub message and needs no running cell.
    """

    def __init__(self, pm: Any) -> None:
        self.pm = pm
        self.display_id = f"flx-ipy-status-{uuid.uuid4().hex[:12]}"
        self.last: str = ""
        self.last_failed = False
        self.shown = False
        self.updates = 0
        self._lock = threading.Lock()
        self._unsubscribe: Any = None

    def attach(self) -> StatusLine:
        if self._unsubscribe is None:
            self._unsubscribe = self.pm.subscribe(self._on_event)
        return self

    def detach(self) -> None:
        unsub, self._unsubscribe = self._unsubscribe, None
        if unsub is not None:
            unsub()

    def show(self) -> None:
        from IPython.display import display

        display(self.view(), display_id=self.display_id)
        self.shown = True

    def view(self) -> _StatusView:
        with self._lock:
            return self._render()

    def _render(self) -> _StatusView:
        plugins = sorted(self.pm.plugins.items())
        parts = []
        for name, rec in plugins:
            mark = "✗" if rec.status == "failed" or (rec.last_reload is not None and not rec.last_reload.ok) \
                else "✓" if rec.status == "running" else "·"
            parts.append(f"{name} {rec.version} {rec.status} {mark}")
        watching = self.pm.watched_paths
        head = f"flx_ipy: watching {len(watching)} folder{'s' if len(watching) != 1 else ''}" if watching \
            else "flx_ipy: not watching"
        text = " │ ".join([head, *parts])
        if self.last:
            text += f" │ {self.last}"
        color = "#cf222e" if self.last_failed else "#57606a"
        html_text = (f"<div data-flx-ipy='status' style='font-family:monospace;color:{color}'>"
                     f"{html.escape(text)}</div>")
        return _StatusView(text, html_text)

    def _on_event(self, ev: Any) -> None:
        kind = ev.kind
        if kind == "reloaded":
            ms = ev.details.get("duration", 0) * 1000
            self.last, self.last_failed = f"{_clock(ev.time)} {ev.plugin} reloaded ({ms:.1f} ms)", False
        elif kind == "reload_failed":
            where = ev.details.get("where")
            self.last = (f"{_clock(ev.time)} {ev.plugin} reload failed: {ev.details.get('error')}"
                         + (f" at {where}" if where else "") + " — previous version still running")
            self.last_failed = True
        elif kind == "failed":
            self.last, self.last_failed = f"{_clock(ev.time)} {ev.plugin} failed: {ev.details.get('error')}", True
        elif kind not in ("started", "stopped", "loaded", "unloaded", "watch_started", "watch_stopped"):
            return
        if self.shown:
            self.update()

    def update(self) -> None:
        try:
            from IPython.display import update_display

            update_display(self.view(), display_id=self.display_id)
            self.updates += 1
        except Exception:  # a status line must never break the manager
            log.debug("flx_ipy: updating the status line failed", exc_info=True)
