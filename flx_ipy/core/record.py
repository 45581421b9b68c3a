"""What the manager knows about one loaded plugin (``pm.plugins[name]``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from .context import PluginContext
from .reload import ReloadResult
from .types import HealthStatus, LifecycleState, PluginMetadata


@dataclass(eq=False)
class PluginRecord:
    """A plugin's registry entry. ``error`` is the kept one-line error of a failed plugin (or
    of its last failed reload), ``error_detail`` the plugin's own traceback."""

    name: str
    target: str
    metadata: PluginMetadata
    source: str
    status: LifecycleState = LifecycleState.LOADED
    cls: type | None = None
    module: ModuleType | None = None
    instance: Any = None
    context: PluginContext | None = None
    root: str | None = None
    package_dir: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_detail: str | None = None
    exception: BaseException | None = None
    health: HealthStatus | None = None
    last_reload: ReloadResult | None = None
    reload_count: int = 0
    initialized: bool = False
    want_running: bool = False
    loaded_at: float = field(default_factory=time.time)
    started_at: float | None = None
    #: path -> content hash of a version that failed, so the same broken save is not retried
    failed_hashes: dict[str, str] = field(default_factory=dict)
    #: every file that belongs to the plugin (module files), for routing watch events
    files: set[str] = field(default_factory=set)
    #: the signature verdict on the code that runs (``trust.SignatureInfo``); None: policy off
    signature: Any = None

    @property
    def version(self) -> str:
        return self.metadata.version

    @property
    def running(self) -> bool:
        return self.status == LifecycleState.RUNNING

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe summary (for UIs and logs)."""
        return {
            "name": self.name, "version": self.version, "status": str(self.status),
            "description": self.metadata.description, "requires": list(self.metadata.requires),
            "source": self.source, "target": self.target, "error": self.error,
            "health": self.health.to_dict() if self.health else None,
            "last_reload": self.last_reload.to_dict() if self.last_reload else None,
            "reload_count": self.reload_count, "loaded_at": self.loaded_at,
            "started_at": self.started_at,
            "signature": self.signature.to_dict() if self.signature is not None else None,
        }

    def __repr__(self) -> str:
        err = f" error={self.error!r}" if self.error else ""
        return f"<PluginRecord {self.name} {self.version} {self.status}{err}>"
