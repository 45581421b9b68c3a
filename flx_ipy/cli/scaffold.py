"""``flx-ipy new NAME [--dir DIR]``: scaffold an installable plugin project (``flx_ipy.scaffold``)."""

from __future__ import annotations

import argparse
from typing import Any

from .output import CliError, add_json_flag, emit


def register(sub: Any) -> None:
    p = sub.add_parser("new", help="scaffold an installable plugin project",
                       description="Write NAME/ under DIR: pyproject.toml with a flx_ipy.plugins entry point, "
                                   "src/PKG/plugin.py with every hook stubbed, pytest tests, a README and a "
                                   "notebook that loads and watches it. `flx-ipy validate NAME` passes.")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--dir", default=".", metavar="DIR", help="where to create NAME/ (default: here)")
    add_json_flag(p)
    p.set_defaults(func=run_new)


def run_new(args: argparse.Namespace) -> int:
    from ..scaffold import new_project

    try:
        root = new_project(args.name, args.dir)
    except ValueError as e:
        raise CliError(f"new: {e}", code=2) from None
    except (FileExistsError, OSError) as e:
        raise CliError(f"new: {e}") from None
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    emit(args, {"project": str(root), "files": files},
         f"created {root}\n" + "".join(f"  {f}\n" for f in files)
         + f"next: cd {args.name} && pip install -e '.[test]' && flx-ipy validate . && pytest")
    return 0
