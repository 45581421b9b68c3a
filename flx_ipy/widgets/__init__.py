"""ipywidgets views of the plugin manager: ``dashboard(pm)`` is the inline dashboard.

``%plugin panel`` and ``display(pm)`` show :func:`dashboard`. Importing this package does not
import ipywidgets (``Dashboard`` and ``dashboard`` load it on first use), so
:func:`mimebundle` — what ``display(pm)`` calls (``flx_ipy`` registers it with
``set_rich_display``) — still gives a text and HTML summary where ipywidgets is missing or no
kernel can host widgets (terminal IPython).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from . import render

if TYPE_CHECKING:
    from .board import Dashboard
    from .row import PluginRow

__all__ = ["Dashboard", "PluginRow", "dashboard", "mimebundle", "render"]


def dashboard(pm: Any = None, *, new: bool = False) -> Dashboard:
    """The live dashboard of ``pm`` (default: the kernel's manager).

    One dashboard is shared per manager, so showing it in several cells adds views, not
    subscriptions; ``new=True`` builds a separate one (close it when done).
    """
    from .board import dashboard as _dashboard

    return _dashboard(pm, new=new)


def _widgets_can_render() -> bool:
    """True inside a Jupyter kernel (a frontend may host widgets); False in a terminal."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def _filter(bundle: dict[str, Any], include: Any, exclude: Any) -> dict[str, Any]:
    return {k: v for k, v in bundle.items()
            if (not include or k in include) and not (exclude and k in exclude)}


def mimebundle(pm: Any, include: Any = None, exclude: Any = None) -> dict[str, Any]:
    """``display(pm)``: the live dashboard in a kernel, else text/plain + text/html of the state."""
    if _widgets_can_render():
        try:
            bundle = dashboard(pm)._repr_mimebundle_(include=include, exclude=exclude)
        except ImportError:  # ipywidgets not installed: the static summary below still works
            bundle = None
        if bundle:
            return _filter(bundle, include, exclude)
    from ..uistate import UIState

    state = UIState(pm).snapshot()
    return _filter({"text/plain": render.render_text(state), "text/html": render.render_html(state)},
                   include, exclude)


def __getattr__(name: str) -> Any:
    if name == "Dashboard":
        from .board import Dashboard

        return Dashboard
    if name == "PluginRow":
        from .row import PluginRow

        return PluginRow
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
