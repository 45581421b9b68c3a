"""One rule for "this save is ready to apply", used by the watcher and by ``apply_pending``.

Editors save in several writes (truncate, write, rename), and some save twice. Applying the
first event would run a half-written file; waiting too long makes hot reload feel slow. So:

* a file is **ready** once its content has been stable for ``settle`` seconds and it compiles;
* a file that is stable but does not compile (empty, a syntax error) is held back for
  ``broken_grace`` seconds in case the editor is still writing, then it is ready too — a truly
  broken save is reported (and rolled back) instead of waiting forever.

The watcher feeds it file events; ``%plugin sync`` (``pm.apply_pending``) has no events and polls
with ``Settle.pauses``. Both give the same answer to the same broken save (before, one waited
0.3 s and the other its whole 5 s timeout). ``Settler`` is pure logic over a clock and a reader,
so tests drive it without threads or sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from . import toplevel
from .files import digest, norm, read, sources

#: defaults shared by the watcher and apply_pending
SETTLE = 0.008
BROKEN_GRACE = 0.3


def looks_complete(data: bytes, path: str = "<settle>") -> bool:
    """Non-empty and compiles: what a finished save of a Python file looks like. The pieces
    compiled for it are cached (``toplevel.split``, split against the version that runs), so
    the reload that follows does not pay for them twice."""
    if not data.strip():
        return False
    try:
        running = sources.get(norm(path))
        try:
            old = toplevel.split(running, path) if running is not None else None
        except (SyntaxError, ValueError):
            old = None
        toplevel.split(data, path, old)
    except (SyntaxError, ValueError):
        return False
    return True


@dataclass
class _Pending:
    first_seen: float
    last_event: float
    digest: str | None = None
    broken: bool = False  # stable, but does not compile yet: waiting out broken_grace


@dataclass
class Settler:
    """Decides when a changed file is ready (see the module docstring)."""

    settle: float = SETTLE
    broken_grace: float = BROKEN_GRACE
    read: Callable[[str], bytes | None] = field(default=read)
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
                entry.last_event, entry.digest, entry.broken = now, d, False

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
                entry.last_event, entry.digest, entry.broken = now, d, False
                continue
            if data is not None and not looks_complete(data, p) and now - entry.last_event < self.broken_grace:
                entry.broken = True
                continue
            del self.pending[p]
            out.append(p)
        return out

    def next_deadline(self, now: float) -> float | None:
        """When ``ready`` can next say something new (None: nothing pending)."""
        if not self.pending:
            return None
        return min(max(e.last_event + (self.broken_grace if e.broken else self.settle), now)
                   for e in self.pending.values())


@dataclass
class Settle:
    """Wait for files with no event source (``apply_pending``): iterate ``pauses`` and sleep (or
    ``await asyncio.sleep``) each; when it ends, every path is ready or ``timeout`` passed."""

    paths: list[str]
    settle: float = SETTLE
    broken_grace: float = BROKEN_GRACE
    timeout: float = 5.0
    clock: Callable[[], float] = time.monotonic
    read: Callable[[str], bytes | None] = field(default=read)

    def pauses(self) -> Iterator[float]:
        if not self.paths:
            return
        settler = Settler(settle=self.settle, broken_grace=self.broken_grace, read=self.read)
        start = self.clock()
        settler.changed(self.paths, start)
        deadline = start + self.timeout
        while True:
            now = self.clock()
            settler.ready(now)
            nxt = settler.next_deadline(now)
            if nxt is None or now >= deadline:
                return
            yield max(min(nxt, deadline) - now, 0.001)
