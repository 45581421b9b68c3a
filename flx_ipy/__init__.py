"""flx_ipy: develop plugins interactively — save a file, the running plugin is the new code.

Importing the package is cheap and never imports IPython, ipywidgets or comm: the notebook
layers load only inside ``load_ipython_extension`` (as anywidget does).
"""

from __future__ import annotations

from typing import Any

from ._version import __version__
from .core import (
    Event,
    Health,
    HealthStatus,
    LifecycleState,
    Plugin,
    PluginContext,
    PluginManager,
    PluginMetadata,
    PluginState,
    ReloadResult,
    get_manager,
)
from .core.errors import (
    DependencyError,
    FlxError,
    HookError,
    InvalidStateError,
    PluginCallError,
    PluginCrashedError,
    PluginError,
    PluginLoadError,
    PluginNotFoundError,
    PluginValidationError,
    ReloadError,
)
from .core.manager import set_rich_display

__all__ = [
    "DependencyError",
    "Event",
    "FlxError",
    "Health",
    "HealthStatus",
    "HookError",
    "InvalidStateError",
    "LifecycleState",
    "Plugin",
    "PluginCallError",
    "PluginContext",
    "PluginCrashedError",
    "PluginError",
    "PluginLoadError",
    "PluginManager",
    "PluginMetadata",
    "PluginNotFoundError",
    "PluginState",
    "PluginValidationError",
    "ReloadError",
    "ReloadResult",
    "__version__",
    "get_manager",
    "load_ipython_extension",
    "unload_ipython_extension",
]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext flx_ipy``: registers the ``%plugin`` magics and the kernel integration."""
    from .extension import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .extension import unload_ipython_extension as _unload

    _unload(ipython)


def _dashboard_mimebundle(pm: PluginManager, include: Any, exclude: Any) -> dict[str, Any]:
    """``display(pm)``: the widgets layer renders it; imported on first display, not at import."""
    from .widgets import mimebundle

    return mimebundle(pm, include, exclude)


set_rich_display(_dashboard_mimebundle)


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """The Jupyter server extension (``flx_ipy.serverext``), imported only by jupyter_server."""
    from .serverext import FlxIpyServerExtension

    return [{"module": "flx_ipy.serverext", "app": FlxIpyServerExtension}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "flx_ipy-labextension"}]
