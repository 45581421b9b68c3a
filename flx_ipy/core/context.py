"""What the manager hands a plugin in ``initialize``: config, a logger, its running
dependencies, a data folder, and ownership of everything the plugin registers.

Resources registered here are released for the plugin when it stops or fails to start (npe2's
disposables): a half-started plugin leaves no trace, and one failing cleanup never skips the
others.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

Cleanup = Callable[[], Any]


class PluginContext:
    """Per-plugin services; ``deps`` maps each required plugin's name to its live object."""

    def __init__(
        self,
        name: str,
        *,
        config: Mapping[str, Any] | None = None,
        deps: Mapping[str, Any] | None = None,
        data_dir: Path | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.name = name
        self.config: dict[str, Any] = dict(config or {})
        self.deps: dict[str, Any] = dict(deps or {})
        self.logger = logger or logging.getLogger(f"flx_ipy.plugins.{name}")
        self._data_dir = data_dir
        self._cleanups: list[tuple[str, Cleanup]] = []
        self._run_cleanups: list[tuple[str, Cleanup]] | None = None
        self._lock = threading.Lock()

    @property
    def data_dir(self) -> Path:
        """A folder of the plugin's own, created on first use (so plugins that never ask cost nothing)."""
        if self._data_dir is None:
            import tempfile

            self._data_dir = Path(tempfile.gettempdir()) / "flx_ipy" / self.name
        self._data_dir.mkdir(parents=True, exist_ok=True)
        return self._data_dir

    def register(self, cleanup: Cleanup, label: str = "") -> Callable[[], None]:
        """Own ``cleanup``: it runs when the plugin stops. Returns a function that runs it early."""
        entry = (label or getattr(cleanup, "__qualname__", repr(cleanup)), cleanup)
        with self._lock:
            owner = self._run_cleanups if self._run_cleanups is not None else self._cleanups
            owner.append(entry)

        def dispose() -> None:
            with self._lock:
                try:
                    owner.remove(entry)
                except ValueError:
                    return
            cleanup()

        return dispose

    def add_cleanup(self, cleanup: Cleanup, label: str = "") -> Callable[[], None]:
        return self.register(cleanup, label)

    @property
    def pending_cleanups(self) -> int:
        with self._lock:
            return len(self._cleanups) + len(self._run_cleanups or ())

    def begin_run(self) -> None:
        """From here on, registrations belong to this run: ``end_run`` (at stop) releases them,
        while what ``initialize`` registered lives until unload."""
        with self._lock:
            if self._run_cleanups is None:
                self._run_cleanups = []

    def end_run(self) -> list[tuple[str, BaseException]]:
        with self._lock:
            todo, self._run_cleanups = self._run_cleanups or [], None
        return _run_all(todo)

    def close(self) -> list[tuple[str, BaseException]]:
        """Run every registered cleanup, newest first; returns ``(label, error)`` for those that raised."""
        errors = self.end_run()
        with self._lock:
            todo, self._cleanups = self._cleanups, []
        return errors + _run_all(todo)

    def __repr__(self) -> str:
        return f"<PluginContext {self.name!r} deps={list(self.deps)} cleanups={self.pending_cleanups}>"


def _run_all(entries: list[tuple[str, Cleanup]]) -> list[tuple[str, BaseException]]:
    """Run cleanups newest first; one raising never skips the rest."""
    errors: list[tuple[str, BaseException]] = []
    for label, fn in reversed(entries):
        try:
            fn()
        except Exception as e:
            errors.append((label, e))
    return errors
