"""HTML and text fragments of the dashboard, as pure functions of :mod:`flx_ipy.protocol` views.

Kept apart from the widgets (no ipywidgets import) for two reasons: the live dashboard and its
static fallbacks (``text/plain`` for terminals and nbclient, ``text/html`` for saved notebooks)
must say the same thing, and these functions are tested without any widget at all.

Every fragment carries a stable ``flx-*`` CSS class so browser tests and users' CSS can find it;
colours are inline JupyterLab theme variables (with a light fallback), because a notebook's output
area strips no inline style but has no stylesheet of ours; wording, palette and clock are
:mod:`flx_ipy.wording`'s, shared with ``%plugin list`` and the status line.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from .. import wording
from ..protocol import EventView, HealthView, PluginView, ReloadView, StateView, WatcherView
from ..wording import PALETTE, clock, fmt_ms, health_text, one_line, reload_text, watcher_text

#: Colours come from :mod:`flx_ipy.wording` (JupyterLab theme variables): one palette for the
#: dashboard, ``%plugin list`` and the status line, light and dark.
STATE_COLORS: dict[str, tuple[str, str]] = {
    state: (wording.state_color(state), PALETTE["on_color"]) for state in wording.STATE_MEANING}
HEALTH_COLORS: dict[str, str] = {status: wording.health_color(status) for status in wording.HEALTH_MEANING}
OK_COLOR, FAIL_COLOR, MUTED, TEXT = PALETTE["ok"], PALETTE["fail"], PALETTE["muted"], PALETTE["text"]
BORDER = PALETTE["border"]
#: A cell keeps to one line; the full text is in its tooltip.
ONE_LINE = "display:block;white-space:nowrap;overflow:hidden;text-overflow:ellipsis"
#: Long text (an error, a rollback reason) wraps at word boundaries, never clipped mid-word.
WRAP = "display:block;white-space:normal;overflow-wrap:anywhere;word-break:normal"


class Latency(NamedTuple):
    """One point of the reload-latency plot."""

    plugin: str
    ms: float | None  # None: a rollback whose duration is unknown
    ok: bool


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


# --- one row -------------------------------------------------------------------------------


def badge_html(state: str) -> str:
    bg, fg = STATE_COLORS.get(state, (MUTED, PALETTE["on_color"]))
    return (f'<span class="flx-badge flx-state-{esc(state)}" title="lifecycle state" '
            f'style="display:inline-block;min-width:72px;text-align:center;padding:0 8px;line-height:20px;'
            f'border-radius:10px;background:{bg};color:{fg};font-size:12px;font-weight:600">'
            f"{esc(state)}</span>")


def name_html(view: PluginView) -> str:
    title = esc(view["source"] or view["name"])
    desc = f' <span style="color:{MUTED}">{esc(one_line(view["description"], 60))}</span>' \
        if view["description"] else ""
    sig = signature_html(view.get("signature"))
    return (f'<span class="flx-name" title="{title}" style="{ONE_LINE}"><b>{esc(view["name"])}</b>{sig}{desc}'
            '</span>')


def version_html(version: str) -> str:
    return f'<code class="flx-version">{esc(version or "?")}</code>'


def signature_text(sig: Any) -> str:
    """``signed by alice``, ``modified: a.py``; empty when no policy checks signatures."""
    if not sig:
        return ""
    if sig["status"] == "signed":
        return f"signed by {sig['signer']}"
    if sig["status"] == "modified":
        return f"modified: {', '.join(sig['files'])}"
    return str(sig["status"])


def signature_html(sig: Any) -> str:
    """A small outlined badge beside the name: green when signed, red otherwise; the full text
    (a modified plugin's files) is its tooltip and is listed in the row's details."""
    text = signature_text(sig)
    if not text:
        return ""
    color = OK_COLOR if sig["status"] == "signed" else FAIL_COLOR
    mark = "✔" if sig["status"] == "signed" else "⚠"
    return (f' <span class="flx-signature flx-signature-{esc(sig["status"])}" title="{esc(text)}" '
            f'style="display:inline-block;padding:0 6px;margin-left:4px;line-height:16px;border-radius:8px;'
            f'border:1px solid {color};color:{color};font-size:11px">{mark} {esc(one_line(text, 40))}</span>')


# --- a row's details: revisions, timings, the worker ---------------------------------------


def short_sha(sha: str) -> str:
    return sha[:12]


def revision_label(rev: Any) -> str:
    """One option of the rollback picker: ``r2 · 1.0.0 · reload · 23:01:02 · 3fa2b1c9d0e1``."""
    reason = rev["reason"] + (f" of r{rev['rollback_of']}" if rev.get("rollback_of") else "")
    return " · ".join(p for p in (f"r{rev['revision']}", rev["version"] or "?", reason, clock(rev["time"]),
                                  short_sha(rev["code_sha256"])) if p)


def metrics_text(m: Any) -> str:
    """``slowest hook: health_check 3.1 ms max (0.2 ms mean) · 40 calls · reloads: 3, last 12 ms,
    max 20 ms, 1 rolled back``; empty when nothing ran yet."""
    if not m:
        return ""
    parts = []
    if m.get("slowest_hook"):
        parts.append(f"slowest hook: {m['slowest_hook']} {fmt_ms(m['slowest_hook_max_ms'])} max "
                     f"({fmt_ms(m['slowest_hook_mean_ms'])} mean)")
    if m.get("hook_calls"):
        errors = f", {m['hook_errors']} raised" if m.get("hook_errors") else ""
        parts.append(f"{m['hook_calls']} hook call{'s' if m['hook_calls'] != 1 else ''}{errors}")
    if m.get("reloads"):
        failed = f", {m['reloads_failed']} rolled back or failed" if m.get("reloads_failed") else ""
        parts.append(f"reloads: {m['reloads']}, last {fmt_ms(m['reload_last_ms'])}, "
                     f"mean {fmt_ms(m['reload_mean_ms'])}, max {fmt_ms(m['reload_max_ms'])}{failed}")
    return " · ".join(parts)


def metrics_html(m: Any) -> str:
    text = metrics_text(m)
    if not text:
        return ""
    return f'<span class="flx-metrics" style="color:{MUTED};font-size:12px;{WRAP}">{esc(text)}</span>'


def isolation_html(iso: Any) -> str:
    """An isolated plugin's worker: pid, RSS, CPU, enforced layers, what is not in force and why,
    and the last crash with its reason (red). Empty for an in-process plugin."""
    if not iso:
        return ""
    from ..display import isolation_text

    text = isolation_text(iso)
    why = "; ".join(f"{k}: {v}" for k, v in sorted((iso.get("unavailable") or {}).items()))
    crashed = bool(iso.get("last_crash"))
    color = FAIL_COLOR if crashed or iso.get("state") == "failed" else MUTED
    return (f'<span class="flx-isolation flx-isolation-{esc(iso.get("state") or "unknown")}" '
            f'title="{esc(why or text)}" style="color:{color};font-size:12px;{WRAP}">'
            f'<b style="color:{PALETTE["info"]}">isolated</b> {esc(text)}</span>')


def modified_html(sig: Any) -> str:
    """A modified plugin's changed files, listed in full (the badge shows only the start)."""
    if not sig or sig.get("status") != "modified" or not sig.get("files"):
        return ""
    return (f'<span class="flx-signature-files" style="color:{FAIL_COLOR};font-size:12px;{WRAP}">'
            f"changed since signed: {esc(', '.join(sig['files']))}</span>")


def details_html(view: PluginView) -> str:
    """The line(s) under a row: the worker, modified files, timings. Empty: nothing to add."""
    parts = [isolation_html(view.get("isolation")), modified_html(view.get("signature")),
             metrics_html(view.get("metrics"))]
    return "".join(p for p in parts if p)


def health_html(health: HealthView | None) -> str:
    status = health["status"] if health else "unknown"
    color = HEALTH_COLORS.get(status, MUTED)
    return (f'<span class="flx-health flx-health-{esc(status)}" title="{esc(health_text(health))}" '
            f'style="{ONE_LINE}">'
            f'<span style="color:{color}">●</span> {esc(health_text(health))}</span>')


def reload_html(last: ReloadView | None) -> str:
    if last is None:
        return f'<span class="flx-reload flx-reload-none" style="color:{MUTED};{ONE_LINE}">never reloaded</span>'
    kind = ("cleared" if last.get("note") else "ok") if last["ok"] else (
        "rolled-back" if last["rolled_back"] else "failed")
    color = OK_COLOR if last["ok"] else FAIL_COLOR
    when = clock(last["finished_at"])
    tip = (last["error"] or reload_text(last)) + (f" (at {when})" if when else "")
    return (f'<span class="flx-reload flx-reload-{kind}" title="{esc(tip)}" style="{WRAP}">'
            f'<span style="color:{color}">{"✔" if last["ok"] else "↺"}</span> {esc(reload_text(last))}</span>')


def checked_html(plugins: int, changed: int) -> str:
    """What the *check health* button says once the checks ran."""
    what = f"{changed} changed" if changed else "no change"
    text = f"checked {plugins} plugin{'s' if plugins != 1 else ''} just now ({clock(time.time())}) — {what}"
    return f'<span class="flx-checked" style="color:{MUTED};font-size:12px">{esc(text)}</span>'


def error_html(message: str | None) -> str:
    if not message:
        return ""
    return (f'<span class="flx-row-error-text" title="{esc(message)}" '
            f'style="color:{FAIL_COLOR};font-size:12px;{WRAP}">⚠ {esc(one_line(message, 400))}</span>')


# --- the plugin index ----------------------------------------------------------------------


def offers_html(rows: Sequence[Any]) -> str:
    """What an index offers (``flx_ipy.registry.panel.offers`` rows) as a small table."""
    if not rows:
        return f'<span class="flx-offers flx-offers-empty" style="color:{MUTED};font-size:12px">nothing found</span>'
    cell = "padding:1px 10px 1px 0;text-align:left;vertical-align:top;white-space:normal;overflow-wrap:anywhere"
    head = "".join(f'<th style="{cell};color:{MUTED};font-weight:normal">{h}</th>'
                   for h in ("package", "latest", "plugins", "signature", "summary"))
    body = "".join(
        f'<tr class="flx-offer"><td style="{cell}"><b>{esc(r["name"])}</b></td>'
        f'<td style="{cell}"><code>{esc(r["latest"])}</code></td>'
        f'<td style="{cell}">{esc(", ".join(r["plugins"]))}</td>'
        f'<td style="{cell};color:{OK_COLOR if r.get("signature") == "signed" else MUTED}">'
        f'{esc(r.get("signature") or "unsigned")}</td>'
        f'<td style="{cell}">{esc(one_line(r.get("summary") or "", 120))}</td></tr>' for r in rows)
    return (f'<table class="flx-offers" style="border-collapse:collapse;font-size:12px;color:{TEXT}">'
            f"<tr>{head}</tr>{body}</table>")


def progress_html(lines: Sequence[str], *, running: bool) -> str:
    """pip's last lines while it runs (and after a failure, what it said last)."""
    title = "pip is running…" if running else "pip's last lines"
    return (f'<div class="flx-progress{" flx-progress-running" if running else ""}" role="status" '
            f'style="font-size:12px;color:{MUTED}"><b>{title}</b>'
            f'<pre style="margin:2px 0;white-space:pre-wrap;overflow-wrap:anywhere;color:{TEXT};'
            f'background:transparent">{esc(chr(10).join(lines))}</pre></div>')


def outcome_html(ok: bool, text: str) -> str:
    """One line: what an index action did, or why it failed."""
    if not text:
        return ""
    color = OK_COLOR if ok else FAIL_COLOR
    return (f'<span class="flx-outcome flx-outcome-{"ok" if ok else "failed"}" title="{esc(text)}" '
            f'style="color:{color};font-size:12px;{WRAP}">{"✔" if ok else "⚠"} {esc(one_line(text, 300))}</span>')


# --- dashboard-wide parts ------------------------------------------------------------------


def watcher_html(watcher: WatcherView) -> str:
    on = watcher["watching"]
    dot = f'<span style="color:{OK_COLOR if on else MUTED}">{"◉" if on else "○"}</span>'
    return (f'<span class="flx-watcher flx-watcher-{"on" if on else "off"}" style="{ONE_LINE}">{dot} '
            f"{esc(watcher_text(watcher))}</span>")


def header_html(count: int, flx_version: str) -> str:
    return (f'<span class="flx-header"><b>flx_ipy plugins</b> '
            f'<span style="color:{MUTED}">· {count} loaded · flx_ipy {esc(flx_version)}</span></span>')


def log_html(events: Iterable[EventView], limit: int = 12) -> str:
    """The most recent events, newest first."""
    items = []
    for ev in list(events)[:limit]:
        bad = ev["kind"] in ("failed", "reload_failed")
        color = FAIL_COLOR if bad else (TEXT if ev["kind"] != "reloading" else MUTED)
        items.append(f'<li class="flx-log-item flx-log-{esc(ev["kind"])}" title="{esc(ev["summary"])}" '
                     f'style="color:{color};{WRAP}">'
                     f'<code style="color:{MUTED}">{esc(clock(ev["time"]))}</code> '
                     f'{esc(one_line(ev["summary"], 200))}</li>')
    if not items:
        items.append(f'<li style="color:{MUTED}">no events yet</li>')
    return ('<div class="flx-log"><b style="font-size:12px">recent events</b>'
            '<ul style="list-style:none;margin:2px 0;padding:0;font-size:12px;line-height:1.5">'
            + "".join(items) + "</ul></div>")


def latency_points(events: Iterable[EventView], rows: Sequence[PluginView] = ()) -> list[Latency]:
    """Reload latencies from a snapshot's event history (oldest first)."""
    last_fail = {r["name"]: r["last_reload"] for r in rows if r["last_reload"] and not r["last_reload"]["ok"]}
    points = []
    for ev in events:
        if ev["kind"] == "reloaded" and ev["plugin"]:
            duration = ev["details"].get("duration")
            points.append(Latency(ev["plugin"], float(duration) * 1000 if duration is not None else None, True))
        elif ev["kind"] == "reload_failed" and ev["plugin"]:
            last = last_fail.get(ev["plugin"])
            points.append(Latency(ev["plugin"], last["duration_ms"] if last else None, False))
    return points


def latency_svg(points: Sequence[Latency], width: int = 300, height: int = 70) -> str:
    """A bar per reload (green ok, red rolled back); the y scale starts at 0."""
    known = [p.ms for p in points if p.ms is not None]
    if not points:
        return (f'<div class="flx-latency flx-latency-empty" style="color:{MUTED};font-size:12px">'
                "reload latency: no reloads yet</div>")
    top = max(known) if known else 1.0
    top = _nice_ceiling(top)
    n = len(points)
    gap = 2
    bar_w = min(12.0, max(2.0, (width - 40 - gap * n) / max(n, 1)))
    bars = []
    for i, p in enumerate(points):
        h = (p.ms / top) * (height - 16) if p.ms is not None else height - 16
        h = max(h, 1.5)
        x = 36 + i * (bar_w + gap)
        y = height - 12 - h
        color = OK_COLOR if p.ok else FAIL_COLOR
        opacity = "1" if p.ms is not None else "0.35"
        label = f"{p.plugin}: {'ok' if p.ok else 'rolled back'} {fmt_ms(p.ms)}"
        bars.append(f'<rect class="flx-latency-bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                    f'height="{h:.1f}" fill="{color}" fill-opacity="{opacity}"><title>{esc(label)}</title></rect>')
    ok_ms = sorted(p.ms for p in points if p.ok and p.ms is not None)
    p50 = ok_ms[len(ok_ms) // 2] if ok_ms else None
    caption = (f"reload latency, last {n}: p50 {fmt_ms(p50)}, max {fmt_ms(max(ok_ms) if ok_ms else None)}"
               + (f", {sum(1 for p in points if not p.ok)} rolled back" if any(not p.ok for p in points) else ""))
    axis = (f'<line x1="34" y1="{height - 12}" x2="{width}" y2="{height - 12}" stroke="{BORDER}"/>'
            f'<text x="0" y="10" font-size="9" fill="{MUTED}">{esc(fmt_ms(top))}</text>'
            f'<text x="0" y="{height - 12}" font-size="9" fill="{MUTED}">0</text>')
    return (f'<div class="flx-latency"><div style="font-size:12px">{esc(caption)}</div>'
            f'<svg class="flx-latency-plot" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" role="img" '
            f'aria-label="{esc(caption)}">{axis}{"".join(bars)}</svg></div>')


def _nice_ceiling(value: float) -> float:
    """1, 2 or 5 times 10^k at or above ``value``: an axis label a person can read."""
    if value <= 0:
        return 1.0
    exp = math.floor(math.log10(value))
    for m in (1, 2, 5, 10):
        if m * 10**exp >= value:
            return float(m * 10**exp)
    return float(10 ** (exp + 1))


# --- after a kernel restart -------------------------------------------------------------------

#: The dashboard's own stylesheet (inside a hidden HTML widget, so no labextension is needed):
#: disabled buttons look disabled, and it says what happened once its kernel is gone.
#: What the dashboard says once its kernel is gone. ipywidgets marks every view whose comm died
#: with the class ``jupyter-widgets-disconnected`` (and draws a broken-link icon on each: about
#: fifteen over one dashboard). This stylesheet travels inside the dashboard, so it works in any
#: notebook frontend without our labextension: it hides those icons, greys the stale rows out
#: and shows one plain sentence on how to get a live dashboard back.
RESTART_TEXT = ("The kernel restarted, so this dashboard is no longer live: it shows the plugins as they "
                "were before the restart. To get it back, run the notebook's cells again "
                "(%load_ext flx_ipy, load your plugins, then %plugin panel).")


def restart_notice_html() -> str:
    d = ".flx-dashboard.jupyter-widgets-disconnected"
    return (
        "<style>"
        # a disabled button must look disabled in every theme (ipywidgets' own dimming is faint
        # on coloured buttons, dark theme especially)
        ".flx-dashboard .flx-btn:disabled{opacity:.35;filter:grayscale(1);cursor:not-allowed;box-shadow:none}"
        ".flx-dashboard .jupyter-widgets-disconnected::before{display:none !important}"
        f"{d}::before{{display:none !important}}"
        ".flx-dashboard .flx-restart-notice{display:none}"
        f"{d} .flx-restart-notice{{display:block}}"
        f"{d} > :not(.flx-part-restart){{opacity:.45;pointer-events:none}}"
        "</style>"
        f'<div class="flx-restart-notice" role="status" data-testid="flx-restart-notice" '
        # no inline `display` here (WRAP has one): it would beat the stylesheet's display:none,
        # and the notice would show over a live board
        f'style="padding:4px 8px;margin:0 0 4px 0;border-left:3px solid {PALETTE["warn"]};'
        f'color:{TEXT};white-space:normal;overflow-wrap:anywhere;word-break:normal">⟲ {esc(RESTART_TEXT)}</div>'
    )


# --- static fallbacks (no widget frontend) ---------------------------------------------------


def render_text(state: StateView, events: int = 8) -> str:
    """The dashboard as plain text (terminals, nbclient outputs, logs): the same table as
    ``%plugin list`` (:func:`flx_ipy.display.views_table`), then the recent events."""
    from ..display import views_table

    rows = state["plugins"]
    watcher = state["watcher"]
    lines = [f"flx_ipy plugins — {len(rows)} loaded · {watcher_text(watcher)}"]
    table = views_table(rows, watcher["paths"] if watcher["watching"] else [])
    table.footer = ""  # the watcher is on the first line already
    lines.append(table.text())
    lines += [f"  {r['name']}: {metrics_text(r.get('metrics'))}" for r in rows if metrics_text(r.get("metrics"))]
    recent = [e for e in reversed(state["events"]) if e["kind"] not in ("reloading", "saves_waiting")][:events]
    if recent:
        lines.append("recent events (newest first):")
        lines += [f"  {clock(e['time'])}  {e['summary']}" for e in recent]
    return "\n".join(lines)


def render_html(state: StateView, events: int = 8) -> str:
    """The dashboard as a static HTML table: saved notebooks, frontends without widgets."""
    rows = state["plugins"]
    cell = 'style="padding:2px 8px;text-align:left"'
    body = "".join(
        f'<tr class="flx-row flx-row-{esc(r["name"])}"><td {cell}>{badge_html(r["state"])}</td>'
        f"<td {cell}>{name_html(r)}</td><td {cell}>{version_html(r['version'])}</td>"
        f"<td {cell}>{health_html(r['health'])}</td><td {cell}>{reload_html(r['last_reload'])}"
        + (f"<br>{error_html(r['error'])}" if r["error"] else "")
        + (f"<br>{details_html(r)}" if details_html(r) else "") + "</td></tr>"
        for r in rows
    ) or f'<tr><td colspan="5" {cell}>no plugins loaded — <code>%plugin load TARGET</code></td></tr>'
    recent = list(reversed(state["events"]))
    snapshot_note = (f'<div class="flx-static-note" style="color:{MUTED};font-size:12px;{WRAP}">'
                     f"a snapshot taken at {esc(clock(time.time()))}, not live — in a running kernel, "
                     "<code>%plugin panel</code> shows the live dashboard</div>")
    return (f'<div class="flx-dashboard flx-dashboard-static">{header_html(len(rows), state["flx_version"])}'
            f"{snapshot_note}"
            f'<br>{watcher_html(state["watcher"])}<table class="flx-rows" style="border-collapse:collapse">'
            f"{body}</table>{log_html(recent, events)}</div>")
