"""An isolated plugin's metadata, read from its source text — its code never runs in the kernel.

The worker is sandboxed according to the plugin's declared capabilities *before* it imports
the plugin, so the kernel must know them first, and it must not learn them by importing.
Discovery already reads metadata statically; this resolves the other target forms (a file,
a package folder, ``module:Class``, a module name) the same way, locating modules on disk
without importing them or their parent packages.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ..entrypoints import module_file
from ..errors import PluginLoadError, PluginNotFoundError
from ..loader import split_target
from ..source import ClassInfo, build_metadata, read_source
from ..types import PluginMetadata
from .host import WorkerHost


@dataclass
class StaticPlugin:
    metadata: PluginMetadata
    target: str  # what the worker's own manager loads
    file: str


def _classes(file: Path) -> list[ClassInfo]:
    info = read_source(file)
    if info.syntax_error:
        raise PluginLoadError(f"{file}:{info.error_line}: syntax error: {info.syntax_error}",
                              hint="fix the file, then load it again")
    found = [c for c in info.plugin_classes if c.has_metadata]
    if file.name == "__init__.py":
        for name, sub in info.reexports.items():
            base = file.parent.joinpath(*sub[1:].split("."))
            sub_file = next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)
            if sub_file is not None:
                ci = read_source(sub_file).classes.get(name)
                if ci is not None and ci.is_plugin and ci.has_metadata:
                    found.append(ci)
    return found


def _pick(file: Path, cls: str | None, target: str) -> ClassInfo:
    classes = _classes(file)
    if cls is not None:
        chosen = [c for c in classes if c.name == cls]
        if not chosen:
            raise PluginNotFoundError(f"{target}: no Plugin subclass named {cls!r} with metadata in {file}")
        return chosen[0]
    if not classes:
        raise PluginNotFoundError(f"{target}: no Plugin subclass with `metadata` in {file}",
                                  hint="define `class MyPlugin(Plugin): metadata = PluginMetadata(name=...)`")
    if len(classes) > 1:
        raise PluginLoadError(f"{target} defines several plugins ({', '.join(c.name for c in classes)})",
                              hint=f"choose one: '{target}:{classes[0].name}'")
    return classes[0]


def resolve(pm: WorkerHost, target: str) -> StaticPlugin:
    """Metadata of ``target`` without importing it; a clear error when only running it could tell."""
    resolved, cand = pm.resolve(target)
    if cand is not None and not cand.ok:
        raise PluginLoadError(f"{cand.name}: cannot load: {cand.error}", cand.name,
                              hint="fix the plugin's file, then load it again")
    spec = resolved or target
    where, cls = split_target(spec)
    path = Path(os.path.expanduser(where))
    if where.endswith(".py") or os.sep in where or "/" in where or path.exists():
        if not path.exists():
            raise PluginNotFoundError(f"{target}: no such file or folder {path}",
                                      hint="check the path, or `%plugin discover DIR` to list plugins")
        path = path.resolve()
        file = path / "__init__.py" if path.is_dir() else path
        if path.is_dir() and not file.is_file():
            raise PluginLoadError(f"{path} is a folder but not a package (no __init__.py)")
        worker_target = f"{path}:{cls}" if cls else str(path)
    else:
        if not all(part.isidentifier() for part in where.split(".")):
            raise PluginNotFoundError(f"{target!r} is not a known plugin, module or path",
                                      hint="`%plugin discover` lists what can be loaded")
        found = module_file(where, sys.path[0] if sys.path else "", sys.path)
        if found is None:
            raise PluginNotFoundError(f"{target!r}: module {where} was not found on sys.path",
                                      hint="`%plugin discover` lists what can be loaded")
        file = Path(found)
        worker_target = spec
    ci = _pick(file, cls, target)
    if ci.fields is None:
        raise PluginLoadError(
            f"{target}: {ci.name}.metadata is not statically readable ({ci.not_static or 'missing'}); an "
            "isolated plugin's code never runs in the kernel, so its metadata must be written as literals",
            hint="write PluginMetadata(name=..., version=..., capabilities=[...]) with literal values")
    md, problems = build_metadata(ci.fields)
    if md is None:
        listed = "; ".join(f"{f}: {msg}" for f, msg in problems)
        raise PluginLoadError(f"{target}: invalid metadata of {ci.name}: {listed}")
    if cls is None and ":" not in worker_target.rpartition("/")[2]:
        worker_target = f"{worker_target}:{ci.name}"
    return StaticPlugin(md, worker_target, str(file))
