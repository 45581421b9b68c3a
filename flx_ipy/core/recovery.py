"""A kept reload failure ends when the plugin's files are back to the code that runs.

Break a file and save: the reload is rolled back and the error is kept (``record.error``,
``record.last_reload``) so every UI shows why. Undo the edit and save again: the file is now
byte-identical to the running version, so there is nothing to reload — but the error is no
longer true either. This module is the one rule for that case: when every file of a plugin
whose last reload failed matches what runs, the failure is cleared ("source matches the
running version"), one ``error_cleared`` event says so, and nothing is re-executed.

``Registry.news`` and ``Registry.pending_files`` ask :func:`ends_kept_failure` (such a save is
handed over even though ``PluginRecord.is_news`` says its content is what runs), and the change
batch (``transaction.apply_changes_steps``) calls :func:`clear`.

A plugin whose status is ``failed`` is not covered: its code did not run, so there is no
running version to match; fixing and saving retries it instead (the change batch does).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Protocol

from .files import file_digests, source_hashes
from .types import LifecycleState, ReloadResult

#: the reason given in the result, the event and the UIs
REASON = "source matches the running version"

__all__ = [
    "REASON", "Emitter", "KeptFailure", "back_to_running", "clear", "ends_kept_failure",
    "kept_reload_failure", "recoverable_files",
]


class KeptFailure(Protocol):
    """What this rule reads and clears of a ``PluginRecord`` (``registry.py`` sits above this
    module and asks it, so the record's type is named by shape here, never imported)."""

    name: str
    status: LifecycleState
    files: set[str]
    error: str | None
    error_detail: str | None
    exception: BaseException | None
    last_reload: ReloadResult | None
    failed_hashes: dict[str, str]

    @property
    def version(self) -> str: ...


class Emitter(Protocol):
    """The manager's event queue (``lifecycle.Host`` is one)."""

    def emit(self, kind: str, plugin: str | None = None, *, now: bool = False, **details: Any) -> None: ...


def kept_reload_failure(rec: KeptFailure) -> bool:
    """The plugin runs its previous code and keeps the error of a failed (rolled-back) reload."""
    last = rec.last_reload
    return last is not None and not last.ok and rec.status != LifecycleState.FAILED


def back_to_running(rec: KeptFailure) -> bool:
    """Every file of the plugin on disk is byte-identical to the version that runs."""
    if not rec.files:
        return False
    return all(d is not None and d == source_hashes.get(p) for p, d in file_digests(sorted(rec.files)).items())


def ends_kept_failure(rec: KeptFailure) -> bool:
    """A save now would clear a kept failure: the plugin keeps one and its files are back."""
    return kept_reload_failure(rec) and back_to_running(rec)


def clear(pm: Emitter, rec: KeptFailure) -> ReloadResult | None:
    """Clear a kept reload failure whose files are back to the running version; ``None`` if
    there is nothing to clear. Called with the manager's lock held (inside an operation)."""
    if not ends_kept_failure(rec):
        return None
    result = ReloadResult(plugin=rec.name, ok=True, changed=False, finished_at=time.time(), notes=[REASON])
    rec.error = None
    rec.error_detail = None
    rec.exception = None
    rec.failed_hashes.clear()
    rec.last_reload = result
    pm.emit("error_cleared", rec.name, reason=REASON, version=rec.version)
    return result


def recoverable_files(records: Iterable[KeptFailure]) -> list[str]:
    """Files whose save would clear a kept failure (``apply_pending`` applies them too)."""
    out: set[str] = set()
    for rec in list(records):
        if ends_kept_failure(rec):
            out.update(rec.files)
    return sorted(out)
