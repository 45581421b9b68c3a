"""What the kernel's side of isolation needs from the manager that runs it.

The same ``lifecycle.Host`` every operation gets, plus the few things only isolation asks for:
the isolation policy and discovery (which loads are isolated without ``isolated=True``), the
hook-call seam (``hooks``: isolated plugins' hooks are routed through it, ``runner.py``) and the
manager's lock for work that is not an operation (a restart after a crash, ``supervise.py``).
Written as a protocol so this package sits below the manager in the core's stack and never
imports it (``docs/architecture.md``); only the worker process's own program (``main.py``),
which *runs* a manager, sits above it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

from ..discovery import Candidate, Discovery
from ..lifecycle import Host
from ..steps import HookRunner


class WorkerHost(Host, Protocol):
    #: which plugins load isolated without ``isolated=True`` (``policy.py``)
    isolate: Any
    discovery: Discovery
    #: the hook-call seam; ``runner.install`` puts the isolated plugins' runner in front of it
    hooks: HookRunner

    @property
    def candidates(self) -> list[Candidate]: ...

    def exclusive(self, timeout: float = 60.0) -> AbstractContextManager[None]:
        """Hold the manager's lock (as an operation does) for ``timeout`` at most."""
        ...
