"""A plugin *project* folder (``pyproject.toml`` with ``flx_ipy.plugins`` entry points), read
without installing or importing it — what ``flx-ipy validate PROJECT`` follows in a plugin's CI.

Each entry point ``name = "module:Class"`` is followed to its module file (``src/`` layout or
flat); ``validators.validate_path`` then checks that file statically and that the class exists
with a ``metadata.name`` equal to the entry point's name (discovery and ``%plugin load NAME``
rely on it).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["GROUP", "EntryPoint", "entry_points", "is_project", "module_path", "project_entry_points"]

GROUP = "flx_ipy.plugins"


@dataclass(frozen=True)
class EntryPoint:
    """One ``name = "module:Class"`` line, and where its module is (None: not found)."""

    name: str
    value: str
    module: str
    class_name: str
    file: Path | None


def is_project(folder: Path) -> bool:
    """A project folder, not a package: ``pyproject.toml`` and no ``__init__.py``."""
    return folder.is_dir() and (folder / "pyproject.toml").is_file() and not (folder / "__init__.py").is_file()


def _toml(path: Path) -> dict[str, Any]:
    try:
        toml: Any = importlib.import_module("tomllib")
    except ImportError:  # Python 3.10: the same parser from PyPI
        toml = importlib.import_module("tomli")
    with open(path, "rb") as fh:
        data: dict[str, Any] = toml.load(fh)
    return data


def entry_points(folder: Path) -> dict[str, str]:
    """The project's ``[project.entry-points."flx_ipy.plugins"]`` table (may be empty)."""
    data = _toml(folder / "pyproject.toml")
    eps = data.get("project", {}).get("entry-points", {}).get(GROUP, {})
    return {str(k): str(v) for k, v in eps.items()} if isinstance(eps, dict) else {}


def module_path(folder: Path, module: str) -> Path | None:
    """Where ``module`` lives in the project: ``src/pkg/mod.py``, ``pkg/mod.py``, a package's
    ``__init__.py``, or a top-level module file."""
    parts = module.split(".")
    for base in (folder / "src", folder):
        target = base.joinpath(*parts)
        for cand in (target.with_suffix(".py"), target / "__init__.py"):
            if cand.is_file():
                return cand
    return None


def project_entry_points(folder: Path) -> list[EntryPoint]:
    """Every plugin entry point of the project, in name order. Raises ``ValueError`` with the
    parser's message for a ``pyproject.toml`` that does not parse."""
    try:
        eps = entry_points(folder)
    except Exception as e:  # tomllib.TOMLDecodeError names the line
        raise ValueError(str(e)) from None
    out = []
    for name, value in sorted(eps.items()):
        module, _, cls_name = value.partition(":")
        out.append(EntryPoint(name, value, module, cls_name, module_path(folder, module) if module else None))
    return out
