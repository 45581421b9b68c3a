"""What the panels (the ipywidgets dashboard and the JupyterLab side panel) call to list the
plugins an index offers and to install one: plain data in, ``(ok, one line, data)`` out, never
an exception — a panel shows the line as it is."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import RegistryError, default_index, load_index, search
from .live import install_live
from .table import search_rows

if TYPE_CHECKING:
    from ..core.manager import PluginManager

__all__ = ["configured_index", "index_action", "offers"]


def configured_index() -> str | None:
    """``c.PluginMagics.index`` of the loaded extension, if any (the env var is read later)."""
    try:
        from ..extension import current
    except ImportError:
        return None
    ext = current()
    magics = getattr(ext, "magics", None)
    return getattr(magics, "index", None) or None


def offers(index: str | None = None, term: str | None = None) -> list[dict[str, Any]]:
    """The rows a panel lists: name, latest version, plugins, summary, versions, signature."""
    return search_rows(search(load_index(default_index(index, configured_index())), term))


def index_action(pm: PluginManager, action: str, *, spec: str | None = None, term: str | None = None,
                 index: str | None = None, progress: Callable[[str], None] | None = None,
                 target: str | None = None) -> tuple[bool, str, Any]:
    """``target``: install into that folder (pip ``--target``, put first on ``sys.path``), as
    ``%plugin install --target`` does; ``None`` installs into this interpreter's environment."""
    try:
        location = default_index(index, configured_index())
        if action == "index_search":
            rows = search_rows(search(load_index(location), term))
            return True, f"{len(rows)} plugin package{'s' if len(rows) != 1 else ''} in {location}", rows
        if action == "install":
            if not spec:
                return False, "install needs a NAME[==VERSION]", None
            live = install_live(pm, load_index(location), spec, on_line=progress, target=target)
            return live.ok, live.summary(), live.to_dict()
        return False, f"flx_ipy: unknown index action {action!r}", None
    except RegistryError as e:
        return False, str(e), None
    except Exception as e:  # a panel shows one line, whatever went wrong
        return False, f"{action} failed inside flx_ipy: {type(e).__name__}: {e}", None
