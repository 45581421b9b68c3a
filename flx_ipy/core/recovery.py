"""A kept reload failure ends when the plugin's files are back to the code that runs.

Break a file and save: the reload is rolled back and the error is kept (``record.error``,
``record.last_reload``) so every UI shows why. Undo the edit and save again: the file is now
byte-identical to the running version, so there is nothing to reload — but the error is no
longer true either. This module is the one rule for that case: when every file of a plugin
whose last reload failed matches what runs, the failure is cleared ("source matches the
running version"), one ``error_cleared`` event says so, and nothing is re-executed.

A plugin whose status is ``failed`` is not covered: its code did not run, so there is no
running version to match; fixing and saving retries it instead (``reloading._retry_failed``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .loader import digest, source_hashes
from .reload import ReloadResult

if TYPE_CHECKING:
    from .manager import PluginManager
    from .record import PluginRecord

#: the reason given in the result, the event and the UIs
REASON = "source matches the running version"

__all__ = ["REASON", "back_to_running", "clear", "kept_reload_failure", "recoverable_files"]


def kept_reload_failure(rec: PluginRecord) -> bool:
    """The plugin runs its previous code and keeps the error of a failed (rolled-back) reload."""
    last = rec.last_reload
    return last is not None and not last.ok and str(rec.status) != "failed"


def back_to_running(rec: PluginRecord) -> bool:
    """Every file of the plugin on disk is byte-identical to the version that runs."""
    if not rec.files:
        return False
    for path in rec.files:
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError:
            return False
        if source_hashes.get(path) != digest(data):
            return False
    return True


def clear(pm: PluginManager, rec: PluginRecord) -> ReloadResult | None:
    """Clear a kept reload failure whose files are back to the running version; ``None`` if
    there is nothing to clear. Called with the manager's lock held (inside an operation)."""
    if not (kept_reload_failure(rec) and back_to_running(rec)):
        return None
    result = ReloadResult(plugin=rec.name, ok=True, changed=False, finished_at=time.time(), notes=[REASON])
    rec.error = None
    rec.error_detail = None
    rec.exception = None
    rec.failed_hashes.clear()
    rec.last_reload = result
    pm._emit("error_cleared", rec.name, reason=REASON, version=rec.version)
    return result


def recoverable_files(pm: PluginManager) -> list[str]:
    """Files whose save would clear a kept failure (``apply_pending`` applies them too)."""
    out: set[str] = set()
    for rec in list(pm._records.values()):
        if kept_reload_failure(rec) and back_to_running(rec):
            out.update(rec.files)
    return sorted(out)
