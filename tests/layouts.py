"""The three places a plugin's code can live, for tests that must hold in each of them.

``single``: a one-file plugin (the code under test and the plugin class in one module);
``package``: the package's ``__init__``; ``helper``: a helper module of a package (the plugin
class in ``__init__`` imports it). ``Layout.mod`` is the module holding the code under test.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

from flx_ipy import PluginManager
from flx_ipy.testing import write_plugin

LAYOUTS = ("single", "package", "helper")

HEAD = "from flx_ipy import Plugin, PluginMetadata, PluginState\n"


class Layout:
    def __init__(self, kind: str, pm: PluginManager, folder: Path, name: str = "peer") -> None:
        self.kind, self.pm, self.folder, self.name = kind, pm, folder, name
        if kind == "single":
            self.path = folder / f"{name}.py"
            self.target = self.path
        else:
            self.target = folder / f"{name}_pkg"
            self.path = self.target / ("__init__.py" if kind == "package" else "helper.py")

    def plugin_class(self, body: str, meta: str | None) -> str:
        kw = f", metaclass={meta}" if meta else ""
        body = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") if body.strip() else "    pass"
        return (f"class PeerPlugin(Plugin{kw}):\n"
                f"    metadata = PluginMetadata(name={self.name!r}, version='1.0.0')\n{body}\n")

    def source(self, code: str, body: str = "", meta: str | None = None) -> str:
        code = textwrap.dedent(code)
        if self.kind == "helper":
            return HEAD + code
        return HEAD + code + "\n" + self.plugin_class(body, meta)

    def write(self, code: str, body: str = "", meta: str | None = None) -> None:
        """Write version 1 and load the plugin (started)."""
        if self.kind == "helper":
            write_plugin(self.target / "__init__.py",
                         HEAD + "from . import helper\n" + self.plugin_class(body, None))
        write_plugin(self.path, self.source(code, body, meta))
        self.pm.load(str(self.target), start=True)

    @property
    def mod(self) -> Any:
        top = self.pm.plugins[self.name].module
        return sys.modules[top.__name__ + ".helper"] if self.kind == "helper" else top

    def save(self, code: str, body: str = "", meta: str | None = None, *, ok: bool = True) -> list[Any]:
        """Write a new version of the code under test and apply it as the watcher would."""
        write_plugin(self.path, self.source(code, body, meta))
        results = self.pm.apply_changes([self.path])
        if ok:
            assert results and all(r.ok for r in results), [r.summary() for r in results]
        return results
