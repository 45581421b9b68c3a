"""The plugin manager as a plain library: no IPython, ipywidgets or comm imported here."""

from __future__ import annotations

from .context import PluginContext
from .manager import PluginManager, PluginRecord, get_manager
from .codeswap import ReloadResult
from .types import (
    Event,
    Health,
    HealthStatus,
    LifecycleState,
    Plugin,
    PluginMetadata,
    PluginState,
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
