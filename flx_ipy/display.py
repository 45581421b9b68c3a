"""What ``%plugin`` shows: one object per view, rich in a notebook, aligned text in a terminal.

Each view is a small object with ``_repr_html_`` (a table the notebook renders) and
``__repr__`` (aligned columns for terminal IPython and ``text/plain``), so a magic simply
returns it and IPython picks the form the frontend can show. Rows are the protocol's views
(:func:`flx_ipy.uistate.plugin_view`, :func:`~flx_ipy.uistate.event_view`) rendered with
:mod:`flx_ipy.wording` — the dashboard's words, palette and clock. Text tables fit a
160-column terminal: long cells are cut with an ellipsis, and errors are printed in full under
the table instead of wrapping it.

:class:`StatusLine` is the one view that changes after the cell ends: it is shown with a
display id and updated in place on every manager event, which is how a reload applied while
the kernel is idle (no cell runs, and nbclient drops stray output) still reaches the user.
"""

from __future__ import annotations

import html
import logging
import textwrap
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from . import wording

log = logging.getLogger("flx_ipy")

__all__ = ["StatusLine", "Table", "audit_table", "discovery_table", "event_log", "health_table", "plugin_table",
           "signature_label", "validation_view"]

#: the widest line a text table prints (a 160-column terminal)
TEXT_WIDTH = 160
_MEANING = {**wording.STATE_MEANING, **wording.HEALTH_MEANING, "reload_failed": "fail"}


def _clock(ts: float | None) -> str:
    return wording.clock(ts)


def _cell(value: Any) -> str:
    text = html.escape("" if value is None else str(value))
    first = str(value).split(":", 1)[0] if value else ""
    meaning = _MEANING.get(str(value)) or _MEANING.get(first)
    return f'<span style="color:{wording.PALETTE[meaning]}">{text}</span>' if meaning else text


def _cut(text: str, width: int, *, left: bool = False) -> str:
    if len(text) <= width:
        return text
    return "…" + text[-(width - 1):] if left else text[: width - 1] + "…"


class Table:
    """Rows under a header, rendered as an HTML table or as aligned text."""

    def __init__(self, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str = "",
                 empty: str = "(nothing)", footer: str = "", widths: Sequence[int | None] = (),
                 cut_left: Sequence[str] = (), notes: Sequence[str] = (), info: Sequence[str] = ()) -> None:
        self.columns = list(columns)
        self.rows = [["" if v is None else str(v) for v in row] for row in rows]
        self.title, self.empty, self.footer = title, empty, footer
        #: per column, the most characters a text cell shows (None: as wide as it is)
        self.widths = list(widths) + [None] * (len(self.columns) - len(widths))
        self.cut_left = set(cut_left)  # columns (paths) cut at the left: the file name stays
        #: lines under the table, in full (wrapped): errors that would make the table unreadable
        self.notes = list(notes)
        #: lines under the table, in full, that are facts rather than errors (isolated workers)
        self.info = list(info)

    def __len__(self) -> int:
        return len(self.rows)

    def text(self) -> str:
        lines = [self.title] if self.title else []
        if not self.rows:
            lines.append(self.empty)
        else:
            cells = [[_cut(v.splitlines()[0] if v else "", cap or 10**6, left=self.columns[i] in self.cut_left)
                      for i, (v, cap) in enumerate(zip(r, self.widths, strict=True))] for r in self.rows]
            widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(self.columns)]
            lines.append("  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True)).rstrip())
            lines.append("  ".join("-" * w for w in widths))
            for r in cells:
                lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
        for note in [*self.notes, *self.info]:
            lines += textwrap.wrap(note, TEXT_WIDTH, subsequent_indent="    ", break_long_words=False,
                                   break_on_hyphens=False) or [""]
        if self.footer:
            lines += textwrap.wrap(self.footer, TEXT_WIDTH, subsequent_indent="    ", break_long_words=False)
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
        wrap = "white-space:normal;overflow-wrap:anywhere"
        notes = "".join(f"<div class='flx-ipy-note' style='color:{wording.PALETTE['fail']};{wrap}'>"
                        f"{html.escape(n)}</div>" for n in self.notes)
        notes += "".join(f"<div class='flx-ipy-info' style='color:{wording.PALETTE['muted']};{wrap}'>"
                         f"{html.escape(n.strip())}</div>" for n in self.info)
        foot = f"<div style='color:{wording.PALETTE['muted']}'>{html.escape(self.footer)}</div>" if self.footer else ""
        return (f"{title}<table class='flx-ipy'><thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table>{notes}{foot}")


class _Preformatted:
    """``self.text`` as the repr, in IPython's pretty printer, and as a ``<pre>`` block."""

    text: str

    def __repr__(self) -> str:
        return self.text

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.text)

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.text)}</pre>"


class Text(_Preformatted):
    """Preformatted text that also renders as a ``<pre>`` block in a notebook."""

    def __init__(self, text: str) -> None:
        self.text = text


# ------------------------------------------------------------------------------ views
def _reload_cell(view: Any) -> str:
    last = view["last_reload"]
    text = wording.reload_text(last)
    when = wording.clock(last["finished_at"]) if last else ""
    return f"{when} {text}" if when else text  # the time first: a cut keeps it


def plugin_table(pm: Any) -> Table:
    """``%plugin list``: the dashboard's rows as a table; each kept error in full under it."""
    from .uistate import plugin_view

    views = [plugin_view(rec) for _, rec in sorted(pm.plugins.items())]
    return views_table(views, list(getattr(pm, "watched_paths", [])))


def views_table(views: Sequence[Any], watching: Sequence[str]) -> Table:
    """The one text/HTML table of protocol ``PluginView`` rows: ``%plugin list`` and
    the dashboard's text fallback both print this."""
    signed = any(v.get("signature") for v in views)  # the column only when a policy checks signatures
    rows = [[v["name"], v["version"], v["state"], wording.health_text(v["health"]), _reload_cell(v),
             *([signature_label(v.get("signature"))] if signed else []), v["source"]] for v in views]
    notes = [f"! {v['name']}: {v['error']}" for v in views if v["error"]]
    # an isolated plugin's worker, one line each under the table (a column would not fit 160)
    info = [f"  {v['name']}: isolated — {isolation_text(v['isolation'])}" for v in views if v.get("isolation")]
    footer = (f"watching {len(watching)} folder{'s' if len(watching) != 1 else ''}: {', '.join(watching)}"
              if watching else "not watching (`%plugin watch` to reload on save)")
    columns = ["name", "version", "state", "health", "last reload", *(["signature"] if signed else []), "source"]
    return Table(columns, rows,
                 empty="no plugins loaded — `%plugin discover DIR` then `%plugin load NAME`", footer=footer,
                 widths=[24, 12, 11, 30, 36, *([32] if signed else []), 36], cut_left=["source"], notes=notes,
                 info=info)


def signature_label(sig: Any) -> str:
    """``signed (alice)``, ``modified: a.py, b.py``, ``unsigned``; empty when nothing is checked.
    ``sig``: a record's ``SignatureInfo`` or a protocol ``SignatureView``."""
    if not sig:
        return ""

    def get(k: str) -> Any:
        return sig.get(k) if isinstance(sig, dict) else getattr(sig, k, None)

    if get("status") == "signed":
        return f"signed ({get('signer')})"
    if get("status") == "modified":
        return f"modified: {', '.join(get('files') or [])}"
    return str(get("status"))


def audit_table(records: Iterable[dict[str, Any]]) -> Table:
    """Audit records (``%plugin audit``, ``flx-ipy audit tail``), oldest first."""
    def short(text: Any, limit: int = 100) -> str:
        s = " ".join(str(text or "").split())
        return s if len(s) <= limit else s[:limit - 1] + "…"

    rows = [[r.get("time", ""), r.get("operation", ""), r.get("plugin") or "", r.get("outcome", ""),
             r.get("origin", ""), r.get("actor", ""), short(r.get("error"))] for r in records]
    return Table(["time", "operation", "plugin", "outcome", "origin", "actor", "error"], rows,
                 empty="no audit records yet")


def isolation_text(view: Any) -> str:
    """A protocol ``IsolationView`` in a line: the worker's pid, RSS, CPU, enforced layers and
    last crash (``in-process`` for None)."""
    if not view:
        return "in-process"
    parts = [f"pid {view['pid']}" if view.get("pid") else str(view.get("state", ""))]
    if view.get("rss_mb") is not None:
        parts.append(f"{view['rss_mb']:.0f} MB")
    if view.get("cpu_seconds") is not None:
        parts.append(f"{view['cpu_seconds']:.2f} s CPU")
    parts.append("enforced: " + ("+".join(view.get("enforced") or []) or "nothing"))
    if view.get("unavailable"):
        parts.append("not in force: " + "+".join(sorted(view["unavailable"])))
    if view.get("last_crash"):
        parts.append(f"last crash {_clock(view.get('last_crash_at'))}: {view['last_crash']} "
                     f"({view.get('crashes', 0)} total)")
    return ", ".join(parts)


def health_table(statuses: dict[str, Any]) -> Table:
    from .uistate import health_view

    rows = [[name, str(h.status), wording.health_text(health_view(h)).partition(": ")[2]]
            for name, h in sorted(statuses.items())]
    return Table(["name", "health", "message"], rows, empty="no plugins loaded", widths=[24, 10, 120])


def discovery_table(candidates: Iterable[Any]) -> Table:
    rows = []
    for c in candidates:
        md = c.metadata
        rows.append([c.name or "?", md.version if md else "", c.kind, md.description if md else "",
                     c.error or c.note or "", c.target])
    return Table(["name", "version", "from", "description", "problem", "target"], rows,
                 empty="no plugins found — `%plugin discover DIR` adds a folder")


def event_log(events: Iterable[Any], *, verbose: bool = False, details: dict[str, str] | None = None) -> Text | Table:
    """The manager's recent events, in the dashboard's words; ``verbose`` adds each failing
    plugin's own traceback."""
    from .uistate import event_view

    rows = [[wording.clock(v["time"]), v["summary"]] for v in (event_view(ev) for ev in events)]
    table = Table(["time", "event"], rows, empty="no events yet")  # a log line is never cut
    if not verbose or not details:
        return table
    text = table.text() + "".join(f"\n\n--- {name} ---\n{tb.rstrip()}" for name, tb in details.items())
    return Text(text)


class StateView(_Preformatted, dict):  # type: ignore[type-arg]
    """``%plugin state NAME``: the mapping itself (``p = %plugin state x`` gives the data), shown
    as real JSON for a ``save_state`` hand-over, or one real repr per attribute otherwise —
    never repr strings inside something that looks like JSON."""

    def __init__(self, name: str, data: dict[str, Any]) -> None:
        super().__init__(data)
        self.name = name
        if data.get("kind") == "attributes":
            attrs = data.get("attributes") or {}
            head = (f"{name} {data.get('version', '')}: no save_state, so its attributes are what the next "
                    f"version keeps ({len(attrs)})")
            width = max((len(k) for k in attrs), default=0)
            body = [f"  {k.ljust(width)} = {v}" for k, v in attrs.items()]  # the values are repr() already
            self.text = "\n".join([head, *body]) if body else head + "\n  (no attributes)"
        else:
            payload = {k: v for k, v in data.items() if k != "kind"}
            self.text = f"{name}: save_state() hands over\n" + _json(payload)


def _json(value: Any) -> str:
    import json

    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=repr)


def state_view(name: str, data: dict[str, Any]) -> StateView:
    return StateView(name, data)


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

    The line ends with the latest notice ("greeter reloaded in 1.2 ms (from 1.0.0 to 1.1.0)")
    in the event log's words. A notice is replaced by the next plugin event, fades after
    ``fade`` seconds, and is dropped when its plugin is unloaded — it never names a plugin that
    is gone. Saves held back while a cell runs are counted ("1 save waiting for the running
    cell") until they are applied.
    """

    #: events that replace the notice (others, e.g. health ticks, leave it)
    NOTICE_KINDS = frozenset({"loaded", "started", "stopped", "failed", "reloaded", "reload_failed",
                              "error_cleared", "unloaded"})

    def __init__(self, pm: Any, *, fade: float = 10.0) -> None:
        self.pm = pm
        self.fade = fade
        self.display_id = f"flx-ipy-status-{uuid.uuid4().hex[:12]}"
        self.last: str = ""
        self.last_plugin: str | None = None
        self.last_failed = False
        self.saves_waiting = 0
        self.shown = False
        self.updates = 0
        self._lock = threading.Lock()
        self._unsubscribe: Any = None
        self._timer: threading.Timer | None = None
        self._generation = 0

    def attach(self) -> StatusLine:
        if self._unsubscribe is None:
            self._unsubscribe = self.pm.subscribe(self._on_event)
        return self

    def detach(self) -> None:
        unsub, self._unsubscribe = self._unsubscribe, None
        if unsub is not None:
            unsub()
        self._cancel_fade()

    def show(self) -> None:
        from IPython.display import display

        display(self.view(), display_id=self.display_id)
        self.shown = True

    def view(self) -> _StatusView:
        with self._lock:
            return self._render()

    def _render(self) -> _StatusView:
        from .uistate import plugin_view

        parts = []
        for _name, rec in sorted(self.pm.plugins.items()):
            v = plugin_view(rec)
            last = v["last_reload"]
            bad = v["state"] == "failed" or (last is not None and not last["ok"])
            mark = "✗" if bad else "✓" if v["state"] == "running" else "·"
            parts.append(f"{v['name']} {v['version']} {v['state']} {mark}")
        watching = self.pm.watched_paths
        head = f"flx_ipy: watching {len(watching)} folder{'s' if len(watching) != 1 else ''}" if watching \
            else "flx_ipy: not watching"
        if self.saves_waiting and watching:
            head += f" · {wording.waiting_text(self.saves_waiting)}"
        text = " │ ".join([head, *parts])
        if self.last:
            text += f" │ {self.last}"
        color = wording.PALETTE["fail"] if self.last_failed else wording.PALETTE["muted"]
        html_text = (f"<div data-flx-ipy='status' style='font-family:var(--jp-code-font-family, monospace);"
                     f"color:{color};white-space:normal;overflow-wrap:anywhere'>{html.escape(text)}</div>")
        return _StatusView(text, html_text)

    def _on_event(self, ev: Any) -> None:
        from .uistate import summarize

        kind = ev.kind
        with self._lock:
            if kind == "saves_waiting":
                self.saves_waiting = max(0, int(ev.details.get("count") or 0))
            elif kind == "watch_stopped":
                self.saves_waiting = 0
            elif kind == "unloaded":
                if self.last_plugin == ev.plugin:  # never name a plugin that is gone
                    self._clear_locked()
            elif kind in self.NOTICE_KINDS:
                self.last = f"{wording.clock(ev.time)} {summarize(kind, ev.plugin, ev.details)}"
                self.last_plugin = ev.plugin
                self.last_failed = kind in ("failed", "reload_failed")
                self._arm_fade_locked()
            elif kind != "watch_started":
                return
        if self.shown:
            self.update()

    # --- fading ---------------------------------------------------------------------------
    def _clear_locked(self) -> None:
        self.last, self.last_plugin, self.last_failed = "", None, False
        self._generation += 1
        self._cancel_fade()

    def _arm_fade_locked(self) -> None:
        self._generation += 1
        self._cancel_fade()
        if self.fade and self.fade > 0:
            gen = self._generation
            self._timer = threading.Timer(self.fade, self._fade_out, args=(gen,))
            self._timer.daemon = True
            self._timer.start()

    def _cancel_fade(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def _fade_out(self, generation: int) -> None:
        with self._lock:
            if generation != self._generation:
                return  # a newer notice replaced this one
            self.last, self.last_plugin, self.last_failed = "", None, False
            self.faded_at = time.time()
        if self.shown:
            self.update()

    def update(self) -> None:
        try:
            from IPython.display import update_display

            update_display(self.view(), display_id=self.display_id)
            self.updates += 1
        except Exception:  # a status line must never break the manager
            log.debug("flx_ipy: updating the status line failed", exc_info=True)
