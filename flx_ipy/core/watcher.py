"""Watch plugin sources and hand settled changes to the manager.

* Folders, not files, are given to the OS: editors save by replacing the file (``os.replace``),
  which arrives as "added" and would end a per-file watch. What is *applied* is exactly what was
  asked for: ``pm.watch([file])`` (or ``%plugin watch NAME`` of a one-file plugin) reloads only
  for that file, though its folder is watched; another plugin in the same folder is left alone.
* Saves made while nothing watched (``pm.pending_changes()``) are applied as soon as the watch
  is armed, as if they had just been saved.
* Polling (``force_polling``) where the file system delivers no events: see ``polling.py``.
* The change source is anything shaped like watchfiles' ``RustNotify`` (``watch(debounce_ms,
  step_ms, timeout_ms, stop_event)`` → a set of changes, ``"timeout"`` or ``"stop"``). We build
  ``RustNotify`` ourselves so that ``start()`` returns only once the OS watch is armed: a save
  made right after ``pm.watch()`` returns is seen. Tests pass a scripted source (``ScriptedChanges``).
* Latency is set by ``step`` (watchfiles groups events until ``step`` ms pass quietly), not by
  ``debounce`` (which only caps a continuous stream). Then ``settle.Settler`` decides when a save
  is ready (the same rule ``apply_pending`` uses): a half-written file is never applied, and a
  truly broken save is still reported.
* Which files matter and whether a save is news are the registry's rules
  (``Registry.owned``, ``Registry.news``); the watcher only asks. It talks to the manager through
  the small ``WatchHost`` protocol, so it never imports the manager.
* The watcher runs in a daemon thread (an ``awatch`` task left running hangs ipykernel's
  shutdown). It does not apply reloads itself unless nobody else will: ``applier`` receives a
  zero-argument function to run where reloads are safe (the IPython layer runs it on the
  kernel's loop between cells); the default runs it right here, serialised by the manager lock.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from . import polling
from .files import norm
from .origin import origin_scope
from .registry import Registry
from .settle import BROKEN_GRACE, SETTLE, Settler

log = logging.getLogger("flx_ipy")

Applier = Callable[[Callable[[], Any]], Any]

__all__ = ["Applier", "ChangeSource", "Settler", "WatchHost", "Watcher"]


class ChangeSource(Protocol):
    def watch(self, debounce_ms: int, step_ms: int, timeout_ms: int, stop_event: Any) -> Any: ...

    def close(self) -> None: ...


class WatchHost(Protocol):
    """What the watcher needs from a manager: its records, its folders, a way to apply."""

    registry: Registry

    def watch_roots(self) -> list[str]: ...

    def apply_changes(self, paths: Iterable[str], *, force: bool = False) -> list[Any]: ...


class Watcher:
    """Owns the watch thread. ``pm.watch()`` creates and starts one."""

    def __init__(
        self,
        pm: WatchHost,
        paths: list[str] | None = None,
        *,
        debounce: int = 200,
        step: int = 5,
        settle: float = SETTLE,
        broken_grace: float = BROKEN_GRACE,
        applier: Applier | None = None,
        source: ChangeSource | Callable[[list[str]], ChangeSource] | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_applied: Callable[[list[Any], float], Any] | None = None,
        force_polling: bool | None = None,
        poll_delay_ms: int = 50,
        apply_pending: bool = True,
    ) -> None:
        self.pm = pm
        self.auto = not paths  # follow the loaded plugins' folders as plugins are loaded
        self.options: dict[str, Any] = dict(debounce=debounce, step=step, settle=settle, broken_grace=broken_grace,
                            applier=applier, source=source, clock=clock, on_applied=on_applied,
                            force_polling=force_polling, poll_delay_ms=poll_delay_ms,
                            apply_pending=apply_pending)
        roots = paths if paths else pm.watch_roots()
        #: what is watched, as asked: folders (everything under them) and single files
        self.paths = sorted({os.path.abspath(os.path.expanduser(p)) for p in roots})
        self._files = {os.path.normcase(p) for p in self.paths
                       if os.path.isfile(p) or (not os.path.exists(p) and p.endswith(".py"))}
        self._dirs = [os.path.normcase(p) for p in self.paths if os.path.normcase(p) not in self._files]
        #: folders handed to the OS watch (a file's folder: saves replace the file)
        self.folders = sorted({_folder(p) for p in self.paths})
        self.polling, self.polling_reason = polling.resolve(force_polling, self.folders)
        self.poll_delay_ms = poll_delay_ms
        self.apply_pending = apply_pending
        #: saves found pending when the watch was armed (handed over like fresh saves)
        self.pending_at_start: list[str] = []
        self.debounce, self.step = debounce, step
        self.settler = Settler(settle=settle, broken_grace=broken_grace)
        self.applier: Applier = applier or (lambda fn: fn())
        self._source_arg = source
        # a real RustNotify batch comes after `step` ms without events; a scripted one may not
        self.quiet_for = step / 1000 if source is None and not self.polling else 0.0
        self.clock = clock
        self.on_applied = on_applied
        self._stop = threading.Event()
        self._armed = threading.Event()
        self._thread: threading.Thread | None = None
        self._source: ChangeSource | None = None
        self.error: BaseException | None = None
        self.applied = 0
        #: settled saves handed to the applier so far (a script can wait for its save to be seen)
        self.handed = 0

    def __repr__(self) -> str:
        state = "watching" if self.running else "stopped"
        mode = f" (polling every {self.poll_delay_ms} ms: {self.polling_reason})" if self.polling else ""
        return (f"<Watcher {state} {', '.join(self.paths) or '(no folders yet)'}{mode}; "
                f"{self.applied} changes applied>")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def start(self, timeout: float = 10.0) -> None:
        self._thread = threading.Thread(target=self._run, name="flx_ipy-watch", daemon=True)
        self._thread.start()
        if not self._armed.wait(timeout):
            raise TimeoutError("flx_ipy: the file watcher did not start")
        if self.error is not None:
            raise self.error

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)

    def _make_source(self) -> ChangeSource:
        src = self._source_arg
        if src is None and self.polling:
            return polling.PollingSource(self._dirs, self._files, self.poll_delay_ms)
        if src is None:
            from watchfiles._rust_notify import RustNotify

            existing = [p for p in self.folders if os.path.isdir(p)]
            return RustNotify(existing, False, False, self.poll_delay_ms, bool(self._dirs), True)
        if callable(src) and not hasattr(src, "watch"):
            return src(self.paths)
        return src  # type: ignore[return-value]

    def _run(self) -> None:
        try:
            self._source = self._make_source()
        except BaseException as e:
            self.error = e
            self._armed.set()
            return
        self._armed.set()
        try:
            if self.apply_pending:
                self._take_pending()
            while not self._stop.is_set():
                now = self.clock()
                deadline = self.settler.next_deadline(now)
                timeout_ms = 1000 if deadline is None else max(1, int((deadline - now) * 1000) + 1)
                raw = self._source.watch(self.debounce, self.step, timeout_ms, self._stop)
                if raw == "stop" or self._stop.is_set():
                    break
                now = self.clock()
                if isinstance(raw, (set, frozenset, list)) and raw:
                    relevant = [p for _, p in raw if self._relevant(p)]
                    if relevant:
                        self.settler.changed(sorted(set(relevant)), now, self.quiet_for)
                ready = self.settler.ready(self.clock())
                if ready:
                    self._hand_over(ready, now)
        except BaseException as e:  # pragma: no cover - reported, never silent
            self.error = e
            log.exception("flx_ipy: the file watcher stopped")
        finally:
            try:
                self._source.close()
            except Exception:
                pass

    def _take_pending(self) -> None:
        """Saves made while not watching: settle and apply them like fresh ones."""
        todo = [p for p in self.pm.registry.pending_files() if self._relevant(p)]
        if todo:
            self.pending_at_start = todo
            self.settler.changed(todo, self.clock(), quiet_for=self.settler.settle)

    def in_scope(self, path: str) -> bool:
        p = os.path.normcase(os.path.abspath(path))
        return p in self._files or any(p == d or p.startswith(d.rstrip(os.sep) + os.sep) for d in self._dirs)

    def _relevant(self, path: str) -> bool:
        return path.endswith(".py") and self.in_scope(path) and self.pm.registry.owned(norm(path))

    def _hand_over(self, paths: list[str], seen_at: float) -> None:
        # a save that leaves the content as it already runs (or as it already failed) does nothing
        todo = self.pm.registry.news(norm(p) for p in paths)
        if not todo:
            return

        def apply() -> list[Any]:
            with origin_scope("watcher"):  # the audit log's origin, wherever the applier runs this
                results = self.pm.apply_changes(todo)
            self.applied += 1
            if self.on_applied is not None:
                self.on_applied(results, seen_at)
            return results

        try:
            self.applier(apply)
            self.handed += 1
        except Exception:
            log.exception("flx_ipy: applying a change to %s failed", ", ".join(todo))


def _folder(p: str) -> str:
    p = os.path.abspath(os.path.expanduser(p))
    if os.path.isfile(p) or (not os.path.exists(p) and p.endswith(".py")):
        return os.path.dirname(p)
    return p
