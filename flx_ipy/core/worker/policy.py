"""Which plugins run isolated without asking each time: ``PluginManager(isolate=...)``.

``True``/``"all"`` isolates every load; ``"entry_points"`` isolates plugins that come from
installed distributions (code you did not write in this notebook); a collection of names
isolates those plugins; a callable ``(target, candidate) -> bool`` decides itself. The policy
only ever *adds* isolation: an explicit ``isolated=True`` always wins.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from .host import WorkerHost

Policy = bool | str | Collection[str] | Callable[[str, Any], bool] | None


def wants_isolation(pm: WorkerHost, target: str) -> bool:
    policy: Any = getattr(pm, "isolate", None)
    if not policy:
        return False
    if policy is True or policy == "all":
        return True
    cand = pm.discovery.find(target) if (target.isidentifier() or "-" in target) else None
    if callable(policy):
        return bool(policy(target, cand))
    if policy == "entry_points":
        return (cand is not None and cand.kind == "entry_point") or _is_installed(pm, target)
    if isinstance(policy, str):
        raise ValueError(f"isolate={policy!r}: use True, 'all', 'entry_points', a list of names or a function")
    name = cand.name if cand is not None else target
    return name in set(policy)


def _is_installed(pm: WorkerHost, target: str) -> bool:
    """``module:Class`` naming an entry point's value counts as that entry point."""
    return any(c.kind == "entry_point" and c.target == target for c in pm.candidates)
