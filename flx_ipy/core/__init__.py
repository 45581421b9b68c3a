"""The plugin manager as a plain library: no IPython, ipywidgets or comm imported here."""

from __future__ import annotations

from .context import PluginContext
from .manager import PluginManager, PluginRecord, get_manager
from .types import (
    Event,
    Health,
    HealthStatus,
    LifecycleState,
    Plugin,
    PluginMetadata,
    PluginState,
    ReloadResult,
    Requirement,
)

__all__ = [
    "Event",
    "Health",
    "HealthStatus",
    "LifecycleState",
    "Plugin",
    "PluginContext",
    "PluginManager",
    "PluginMetadata",
    "PluginRecord",
    "PluginState",
    "ReloadResult",
    "Requirement",
    "get_manager",
]
