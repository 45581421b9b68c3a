"""``pm.rollback``: run a kept revision's code again, through the reload transaction.

A rollback is a reload whose new source is a revision's kept bytes instead of the files on disk
(``transaction.reload_steps(new_sources=...)``), so it has every guarantee a reload has: state
handed over (``migrate_state`` offered when versions differ), the health gate, and on any
failure the current code keeps running. The files on disk are not touched: the next save of a
file reloads from it as usual.
"""

from __future__ import annotations

from typing import Protocol

from .lifecycle import Host
from .revisions import RevisionLog
from .steps import Steps
from .transaction import reload_steps
from .types import ReloadResult


class RollbackHost(Host, Protocol):
    revisions: RevisionLog


def rollback_steps(pm: RollbackHost, name: str, to: int | str | None) -> Steps[ReloadResult]:
    """Run revision ``to``'s code again (default: the one before the current), as a new revision."""
    rec = pm.record(name)
    target = pm.revisions.pick(name, to)  # raises before anything changes
    failed_before = dict(rec.failed_hashes)
    pm.revisions.rolling_back[name] = target.revision
    try:
        result = yield from reload_steps(pm, name, force=True, new_sources=dict(target.code))
    finally:
        pm.revisions.rolling_back.pop(name, None)
    if not result.ok:
        # the reload marked the old revision's bytes as "failed content"; a later save of the
        # same bytes on disk is a user's fix and must not be skipped because of this rollback
        rec.failed_hashes.clear()
        rec.failed_hashes.update(failed_before)
    result.notes.append(f"rolled back to revision {target.revision} ({target.version})")
    return result
