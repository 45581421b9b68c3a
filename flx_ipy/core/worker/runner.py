"""Isolated plugins' hooks at the manager's hook-call seam (``steps.HookRunner``).

Every lifecycle operation yields ``HookCall``s and never calls a hook itself, so running a
plugin in a worker needs no special case in ``lifecycle.py``: this runner looks up the call's
plugin and, when its record has a worker, swaps the call's ``fn`` for the step that runs in the
worker (``IsolatedRuntime.hook``). The call then goes on through the runner it wraps, unchanged
otherwise — timeouts, the health check's helper thread, and any runner wrapped in before or
after this one (a metrics runner sees isolated calls too, named by plugin and hook like any).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..registry import Registry
from ..steps import HookCall, HookRunner
from .host import WorkerHost


class WorkerRunner:
    """``pm.hooks`` once a plugin was loaded isolated: routes that plugin's calls to its worker."""

    def __init__(self, registry: Registry, inner: HookRunner) -> None:
        self.registry = registry
        self.inner = inner

    def routed(self, call: HookCall) -> HookCall:
        rec = self.registry.get(call.plugin)
        worker = rec.worker if rec is not None else None
        return call if worker is None else dataclasses.replace(call, fn=worker.hook(call.hook))

    def invoke(self, call: HookCall) -> Any:
        return self.inner.invoke(self.routed(call))

    async def ainvoke(self, call: HookCall) -> Any:
        return await self.inner.ainvoke(self.routed(call))


def install(pm: WorkerHost) -> None:
    """Put the runner in front of ``pm.hooks`` (every isolated load calls it; once is enough).
    A runner a user installs later wraps this one and still sees every call; if it hides this
    one, the next isolated load wraps again, which is harmless: routing a routed call changes
    nothing."""
    if not isinstance(pm.hooks, WorkerRunner):
        pm.hooks = WorkerRunner(pm.registry, pm.hooks)
