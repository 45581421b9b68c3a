"""What a plugin's health is when no check needs to run, and when a cached verdict is stale.

One rule for every reader: ``pm.health(name)``, ``record.health`` and through it every panel,
``%plugin list`` and the status line. A verdict from a ``health_check`` describes one run of
the plugin; once the plugin stops, fails or starts again, it describes nothing that exists any
more (a hot reload keeps the run: the poller and the health gate re-check it). So the
record keeps each verdict with the run it was taken in (:func:`run_key`), and a verdict from
another run is replaced by :func:`without_check`:

* ``failed`` → unhealthy, with the kept error;
* not running → unknown, "not running (stopped)";
* running without a ``health_check`` → healthy, "no health_check";
* running with one → ``None``: not checked in this run yet.
"""

from __future__ import annotations

from typing import Any, Protocol

from .types import HealthStatus, LifecycleState, Plugin

__all__ = ["Run", "has_own_check", "run_key", "without_check"]


class Run(Protocol):
    """What these rules read of a ``PluginRecord`` (``registry.py`` sits above this module and
    asks it, so the record's type is named by shape here, never imported)."""

    @property
    def status(self) -> LifecycleState: ...

    @property
    def started_at(self) -> float | None: ...

    @property
    def error(self) -> str | None: ...

    @property
    def instance(self) -> Any: ...


def run_key(rec: Run) -> tuple[Any, ...]:
    """Identifies one run: a verdict taken under another key is stale. ``reloading`` belongs to
    the run it reloads, so a reload (rolled back or not) keeps the verdict."""
    status = str(rec.status)
    if status == "reloading":
        status = "running"
    return status, rec.started_at


def without_check(rec: Run) -> HealthStatus | None:
    """The verdict that needs no hook call, or ``None`` when only the plugin's check can tell."""
    status = str(rec.status)
    if status == "failed":
        return HealthStatus.unhealthy(rec.error or "failed")
    if status not in ("running", "reloading"):
        return HealthStatus.unknown(f"not running ({status})")
    if not has_own_check(rec.instance):
        return HealthStatus.healthy("no health_check")
    return None


def has_own_check(instance: Any) -> bool:
    """Whether the plugin defines a ``health_check`` (``Plugin``'s default only says "running",
    so it is answered here, the same way before and after anyone asked)."""
    fn = getattr(instance, "health_check", None)
    if not callable(fn):
        return False
    return getattr(fn, "__func__", None) is not Plugin.health_check
