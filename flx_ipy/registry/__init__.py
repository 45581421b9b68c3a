"""Plugin indexes: publish wheels to a folder, find plugins in it, install them hash-checked.

An index is a folder (or the HTTP URL of one) holding plugin wheels and the ``index.json``
that :func:`build_index` writes from them. Nothing here is imported by ``flx_ipy.core``; the
command line (``flx-ipy index|search|install|publish``), ``%plugin install`` and the panels
call these functions. See ``docs/registry.md``.
"""

from __future__ import annotations

from .index import (
    FORMAT,
    FORMAT_VERSION,
    INDEX_FILE,
    BuildReport,
    Index,
    RegistryError,
    build_index,
    load_index,
    resolve,
    search,
)
from .install import InstallPlan, InstallResult, install, installed_version, plan_install
from .wheels import PLUGIN_GROUP, SIGNATURE_NAMES, WheelError, WheelInfo, read_wheel

__all__ = [
    "FORMAT", "FORMAT_VERSION", "INDEX_FILE", "PLUGIN_GROUP", "SIGNATURE_NAMES", "BuildReport", "Index",
    "InstallPlan", "InstallResult", "RegistryError", "WheelError", "WheelInfo", "build_index", "default_index",
    "install", "installed_version", "load_index", "plan_install", "read_wheel", "resolve", "search",
]

#: environment variable naming the default index (a folder or URL)
INDEX_ENV = "FLX_IPY_INDEX"


def default_index(given: str | None = None, configured: str | None = None) -> str:
    """The index to use: ``--index``, else the configured one (``c.PluginMagics.index``), else
    ``$FLX_IPY_INDEX``; raises :class:`RegistryError` (usage) when there is none."""
    import os

    for value in (given, configured, os.environ.get(INDEX_ENV)):
        if value and value.strip():
            return value.strip()
    raise RegistryError(f"no index given: pass --index URL|PATH, or set {INDEX_ENV} "
                        "(in IPython also c.PluginMagics.index)", code=2)
