"""Watch plugin sources and hand settled changes to the manager.

* Folders, not files, are watched: editors save by replacing the file (``os.replace``), which
  arrives as "added" and would end a per-file watch.
* The change source is anything shaped like watchfiles' ``RustNotify`` (``watch(debounce_ms,
  step_ms, timeout_ms, stop_event)`` → a set of changes, ``"timeout"`` or ``"stop"``). We build
  ``RustNotify`` ourselves so that ``start()`` returns only once the OS watch is armed: a save
  made right after ``pm.watch()`` returns is seen. Tests pass ``flx_ipy.testing.ScriptedChanges``.
* Latency is set by ``step`` (watchfiles groups events until ``step`` ms pass quietly), not by
  ``debounce`` (which only caps a continuous stream). Then the **settler** waits until a file's
  content hash is stable for ``settle`` seconds, and holds back an empty or non-compiling file
  for up to ``broken_grace`` seconds in case the editor is still writing: a half-written file is
  never applied, and a truly broken save is still reported.
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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .loader import compile_source, digest, source_hashes

if TYPE_CHECKING:
    from .manager import PluginManager

log = logging.getLogger("flx_ipy")

Applier = Callable[[Callable[[], Any]], Any]


class ChangeSource(Protocol):
    def watch(self, debounce_ms: int, step_ms: int, timeout_ms: int, stop_event: Any) -> Any: ...

    def close(self) -> None: ...


@dataclass
class _Pending:
    first_seen: float
    last_event: float
    digest: str | None = None


@dataclass
class Settler:
    """Decides when a changed file is ready: pure logic over a clock and a reader, so tests can
    drive it without threads or sleeps."""

    settle: float = 0.008
    broken_grace: float = 0.3
    read: Callable[[str], bytes | None] = field(default=lambda p: _read(p))
    pending: dict[str, _Pending] = field(default_factory=dict)

    def changed(self, paths: Iterable[str], now: float, quiet_for: float = 0.0) -> None:
        """Record changed ``paths``; ``quiet_for``: how long the source already saw no event
        (watchfiles yields a batch only after ``step`` ms of quiet), counted into ``settle``."""
        now -= quiet_for
        for p in paths:
            entry = self.pending.get(p)
            data = self.read(p)
            d = digest(data) if data is not None else None
            if entry is None:
                self.pending[p] = _Pending(now, now, d)
            else:
                entry.last_event, entry.digest = now, d

    def ready(self, now: float) -> list[str]:
        """Paths whose content has been stable for ``settle`` and looks complete (or stopped
        changing for ``broken_grace`` even though it does not compile)."""
        out = []
        for p, entry in list(self.pending.items()):
            if now - entry.last_event < self.settle:
                continue
            data = self.read(p)
            d = digest(data) if data is not None else None
            if d != entry.digest:  # it changed without (yet) an event: wait again
                entry.last_event, entry.digest = now, d
                continue
            if data is not None and not _looks_complete(data, p) and now - entry.last_event < self.broken_grace:
                continue
            del self.pending[p]
            out.append(p)
        return out

    def next_deadline(self, now: float) -> float | None:
        if not self.pending:
            return None
        return min(max(e.last_event + self.settle, now) for e in self.pending.values())


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


def _looks_complete(data: bytes, path: str = "<settle>") -> bool:
    if not data.strip():
        return False
    try:
        compile_source(data, path)  # the reload that follows reuses this compile
    except (SyntaxError, ValueError):
        return False
    return True


class Watcher:
    """Owns the watch thread. ``pm.watch()`` creates and starts one."""

    def __init__(
        self,
        pm: PluginManager,
        paths: list[str] | None = None,
        *,
        debounce: int = 200,
        step: int = 5,
        settle: float = 0.008,
        broken_grace: float = 0.3,
        applier: Applier | None = None,
        source: ChangeSource | Callable[[list[str]], ChangeSource] | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_applied: Callable[[list[Any], float], Any] | None = None,
    ) -> None:
        self.pm = pm
        self.auto = not paths  # follow the loaded plugins' folders as plugins are loaded
        self.options = dict(debounce=debounce, step=step, settle=settle, broken_grace=broken_grace,
                            applier=applier, source=source, clock=clock, on_applied=on_applied)
        roots = paths if paths else pm.watch_roots()
        self.paths = sorted({_folder(p) for p in roots})
        self.debounce, self.step = debounce, step
        self.settler = Settler(settle=settle, broken_grace=broken_grace)
        self.applier: Applier = applier or (lambda fn: fn())
        self._source_arg = source
        # a real RustNotify batch comes after `step` ms without events; a scripted one may not
        self.quiet_for = step / 1000 if source is None else 0.0
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
        return f"<Watcher {state} {', '.join(self.paths) or '(no folders yet)'}; {self.applied} changes applied>"

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
        if src is None:
            from watchfiles._rust_notify import RustNotify

            existing = [p for p in self.paths if os.path.isdir(p)]
            return RustNotify(existing, False, False, 50, True, True)
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

    def _relevant(self, path: str) -> bool:
        if not path.endswith(".py"):
            return False
        p = os.path.normcase(os.path.abspath(path))
        for rec in self.pm._records.values():
            if p in rec.files or (rec.package_dir and p.startswith(rec.package_dir + os.sep)):
                return True
            if rec.module is None and os.path.normcase(os.path.abspath(rec.target)) == p:
                return True
        return False

    def _hand_over(self, paths: list[str], seen_at: float) -> None:
        # drop saves that leave the content as it already runs: they must do nothing at all
        todo = [p for p in paths if digest(_read(p) or b"") != source_hashes.get(os.path.normcase(p))
                or self._failed_plugin(p)]
        if not todo:
            return

        def apply() -> list[Any]:
            from .origin import origin_scope

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

    def _failed_plugin(self, path: str) -> bool:
        p = os.path.normcase(os.path.abspath(path))
        return any(r.status == "failed" and (p in r.files or os.path.normcase(os.path.abspath(r.target)) == p)
                   for r in self.pm._records.values())


def _folder(p: str) -> str:
    p = os.path.abspath(os.path.expanduser(p))
    return p if os.path.isdir(p) or not os.path.exists(p) else os.path.dirname(p)
