"""Text/HTML views of revisions and metrics, for ``%plugin history`` and ``%plugin stats``.

Kept apart from ``display.py`` (the development views) because these read the operations side
of the manager: revisions (``pm.history``) and hook timings (``pm.metrics``).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from .display import Table


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds * 1e6:.0f} µs" if seconds < 0.001 else f"{seconds * 1000:.1f} ms"


def history_table(name: str, revisions: list[Any], current: int | None) -> Table:
    rows = []
    for r in revisions:
        mark = "*" if r.revision == current else ""
        when = _dt.datetime.fromtimestamp(r.time).strftime("%H:%M:%S")
        reason = f"rollback to {r.rollback_of}" if r.reason == "rollback" and r.rollback_of else r.reason
        rows.append([f"{r.revision}{mark}", r.version, reason, when, r.code_sha256[:12], len(r.code)])
    return Table(["revision", "version", "reason", "time", "code sha256", "files"], rows,
                 title=f"{name}: revisions, oldest first (* = running)",
                 empty=f"{name}: no revisions", footer=f"`%plugin rollback {name} [REVISION]` runs one again")


def stats_table(metrics: dict[str, dict[str, Any]]) -> Table:
    rows = []
    for name, m in sorted(metrics.items()):
        hooks = m["hooks"]
        calls = sum(h["count"] for h in hooks.values())
        total = sum(h["total"] for h in hooks.values())
        slow = m.get("slowest_hook")
        slowest = f"{slow} {_ms(hooks[slow]['max'])}" if slow else ""
        r = m["reloads"]
        reloads = f"{r['ok']} ok / {r['rolled_back']} rolled back / {r['failed']} failed" if r["count"] else "0"
        rows.append([name, calls, _ms(total) if calls else "", slowest, reloads,
                     _ms(r["mean_duration"]) if r["count"] else "", _ms(r["max_duration"]) if r["count"] else ""])
    return Table(["name", "hook calls", "hook time", "slowest hook (max)", "reloads", "reload mean", "reload max"],
                 rows, empty="no plugins loaded")


def hook_table(name: str, metrics: dict[str, Any]) -> Table:
    rows = [[hook, h["count"], h["errors"], _ms(h["mean"]), _ms(h["max"]), _ms(h["total"])]
            for hook, h in sorted(metrics["hooks"].items(), key=lambda kv: -kv[1]["max"])]
    return Table(["hook", "calls", "errors", "mean", "max", "total"], rows, title=f"{name}: hook timings",
                 empty=f"{name}: no hook calls yet")
