"""Publishing: put wheels into an index folder and rebuild its ``index.json``, in one step.

``add_wheels`` copies built wheels; ``publish_project`` first builds the project's wheel with
``pip wheel --no-deps`` (pip runs the project's own build backend — hatchling, setuptools,
flit… — as it would for an install, honouring the user's pip configuration). A wheel whose
file name is already in the index with *different* bytes is refused unless ``replace=True``:
anyone who installed the old one holds its sha256, so the same version must not silently mean
other bytes — bump the version instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .index import BuildReport, RegistryError, build_index
from .wheels import WheelError, read_wheel, sha256_file

__all__ = ["PublishReport", "add_wheels", "build_wheel", "publish_project"]


@dataclass
class PublishReport:
    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    index: BuildReport | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"added": self.added, "unchanged": self.unchanged,
                "index": self.index.to_dict() if self.index else None}

    def summary(self) -> str:
        parts = []
        if self.added:
            parts.append(f"added {', '.join(self.added)}")
        if self.unchanged:
            parts.append(f"already there: {', '.join(self.unchanged)}")
        if self.index is not None:
            parts.append(self.index.summary())
        return "; ".join(parts)


def add_wheels(wheels: Iterable[str | os.PathLike[str]], index_dir: str | os.PathLike[str], *,
               replace: bool = False) -> PublishReport:
    """Copy plugin wheels into ``index_dir`` (created if missing) and rebuild its index.

    Every wheel is checked first (readable, declares a ``flx_ipy.plugins`` entry point), so a bad
    one changes nothing.
    """
    d = Path(index_dir).expanduser()
    if d.exists() and not d.is_dir():
        raise RegistryError(f"--index {d} is a file; give the index folder", code=2)
    checked = []
    for w in wheels:
        p = Path(w).expanduser()
        if not p.is_file():
            raise RegistryError(f"no such wheel: {p}", code=2)
        try:
            info = read_wheel(p)
        except WheelError as e:
            raise RegistryError(f"{e} (nothing was added)") from None
        if not info.is_plugin:
            raise RegistryError(f"{p.name} is not a plugin: it declares no entry point in group flx_ipy.plugins "
                                "(add `[project.entry-points.\"flx_ipy.plugins\"]` to its pyproject.toml); "
                                "nothing was added")
        dest = d / p.name
        if dest.is_file() and sha256_file(dest) != info.sha256 and not replace:
            raise RegistryError(f"{dest} already exists with other bytes: installers trust its sha256 — bump "
                                f"the version (or pass --replace); nothing was added")
        checked.append((p, dest, info.sha256))
    d.mkdir(parents=True, exist_ok=True)
    report = PublishReport()
    for src, dest, sha in checked:
        if dest.is_file() and sha256_file(dest) == sha:
            report.unchanged.append(dest.name)
            continue
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
        report.added.append(dest.name)
    report.index = build_index(d)
    return report


def build_wheel(project: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                pip_args: Sequence[str] = ()) -> Path:
    """Build the project's wheel into ``out_dir`` with ``pip wheel --no-deps``; returns its path."""
    proj = Path(project).expanduser().resolve()
    if not (proj / "pyproject.toml").is_file() and not (proj / "setup.py").is_file():
        raise RegistryError(f"{proj} is not a Python project (no pyproject.toml or setup.py)", code=2)
    out = Path(out_dir)
    before = set(out.glob("*.whl"))
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-input", "--progress-bar", "off",
           "-w", str(out), *pip_args, str(proj)]
    proc = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", errors="replace",
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("ERROR:") or "Error" in ln]
        raise RegistryError(f"building {proj.name} failed (pip wheel exit {proc.returncode}): "
                            f"{(errors or lines or ['no output'])[-1]}")
    new = sorted(set(out.glob("*.whl")) - before) or sorted(out.glob("*.whl"))
    if not new:
        raise RegistryError(f"pip wheel built nothing for {proj}")
    return new[-1]


def publish_project(project: str | os.PathLike[str], index_dir: str | os.PathLike[str], *,
                    replace: bool = False, pip_args: Sequence[str] = ()) -> PublishReport:
    """Build PROJECT's wheel and add it to the index folder: the one step ``flx-ipy publish`` is."""
    with tempfile.TemporaryDirectory(prefix="flx-ipy-publish-") as tmp:
        wheel = build_wheel(project, tmp, pip_args=pip_args)
        return add_wheels([wheel], index_dir, replace=replace)
