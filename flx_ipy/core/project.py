"""A plugin *project* folder (``pyproject.toml`` with ``flx_ipy.plugins`` entry points), checked
without installing or importing it — what ``flx-ipy validate PROJECT`` does in a plugin's CI.

Each entry point ``name = "module:Class"`` is followed to its module file (``src/`` layout or
flat), which is validated statically, and the class must exist there with a ``metadata.name``
equal to the entry point's name (``%plugin load NAME`` and discovery rely on it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .source import read_source
from .validators import Problem, ValidationResult, validate_path

__all__ = ["GROUP", "entry_points", "module_path", "validate_project"]

GROUP = "flx_ipy.plugins"


def _toml(path: Path) -> dict[str, Any]:
    import importlib

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


def validate_project(folder: str | Path) -> ValidationResult:
    root = Path(folder).expanduser().resolve()
    result = ValidationResult(str(root))
    pyproject = root / "pyproject.toml"
    try:
        eps = entry_points(root)
    except Exception as e:  # a TOML error names the line itself
        result.problems.append(Problem("pyproject.toml", f"cannot read: {e}", "fix the TOML syntax",
                                       str(pyproject)))
        return result
    if not eps:
        result.problems.append(Problem(
            "entry points", f'no [project.entry-points."{GROUP}"] table',
            f'add `[project.entry-points."{GROUP}"]` with `name = "module:ClassName"` per plugin',
            str(pyproject)))
        return result
    for name, value in sorted(eps.items()):
        module, sep, cls_name = value.partition(":")
        where = f'entry point {name} = "{value}"'
        if not sep or not cls_name.isidentifier():
            result.problems.append(Problem(where, "must be `module:ClassName`", f'{name} = "{module}:MyPlugin"',
                                           str(pyproject)))
            continue
        file = module_path(root, module)
        if file is None:
            result.problems.append(Problem(where, f"module {module!r} not found under {root}/src or {root}",
                                           "check the module path (dots, not slashes)", str(pyproject)))
            continue
        sub = validate_path(file)
        result.problems += sub.problems
        result.notes += sub.notes
        info = read_source(file)
        ci = info.classes.get(cls_name)
        if ci is None or not ci.is_plugin:
            result.problems.append(Problem(where, f"{file.name} defines no Plugin subclass {cls_name!r}",
                                           f"class {cls_name}(Plugin): ...", str(file)))
            continue
        declared = (ci.fields or {}).get("name")
        if isinstance(declared, str) and declared != name:
            result.problems.append(Problem(where, f"the entry point's name differs from metadata.name {declared!r}",
                                           f'rename one of them: {declared} = "{value}"', str(file), ci.metadata_line))
    result.problems = list(dict.fromkeys(result.problems))
    return result
