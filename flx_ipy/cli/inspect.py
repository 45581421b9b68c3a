"""``flx-ipy list`` and ``flx-ipy validate``: what is there and what is wrong, running no plugin code.

``list`` is ``%plugin discover`` (the same ``PluginManager.discover`` and table); ``validate``
is ``%plugin validate`` (the same ``validate_path``), and understands project folders, so a
plugin's CI can run ``flx-ipy validate .``.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from .output import CliError, add_json_flag, emit


def register(sub: Any) -> None:
    p = sub.add_parser("list", help="list discovered plugins (entry points + DIRs), with errors",
                       description="List plugins from installed entry points and from DIRs, without "
                                   "importing them. A broken plugin is listed with its error (exit 0).")
    p.add_argument("dirs", nargs="*", metavar="DIR", help="folders of plugins to scan too")
    p.add_argument("--no-entry-points", action="store_true", help="scan only the DIRs")
    add_json_flag(p)
    p.set_defaults(func=run_list)

    v = sub.add_parser("validate", help="check a plugin file, package, folder or project; runs no plugin code",
                       description="Report every problem (field, fix, file:line) of a plugin .py file, package "
                                   "folder, folder of plugins, or project folder (pyproject.toml entry points, "
                                   "src/ layouts included). Exit 1 when there are problems.")
    v.add_argument("path", metavar="PATH")
    add_json_flag(v)
    v.set_defaults(func=run_validate)


def run_list(args: argparse.Namespace) -> int:
    from ..core.manager import PluginManager
    from ..display import discovery_table

    missing = [d for d in args.dirs if not os.path.isdir(d)]
    if missing:
        raise CliError(f"list: no such folder: {missing[0]}", code=2)
    pm = PluginManager(plugin_dirs=[os.path.abspath(d) for d in args.dirs], entry_points=not args.no_entry_points)
    pm.discover()
    data = [{"name": c.name, "version": c.metadata.version if c.metadata else None, "kind": c.kind,
             "target": c.target, "source": c.source, "error": c.error, "note": c.note,
             "description": c.metadata.description if c.metadata else None} for c in pm.candidates]
    table = discovery_table(pm.candidates)
    table.empty = "no plugins found — `flx-ipy list DIR` scans a folder too"  # the table's own hint is a magic's
    emit(args, data, table.text())
    return 0


def run_validate(args: argparse.Namespace) -> int:
    from ..core.validators import validate_path

    if not os.path.exists(os.path.expanduser(args.path)):
        raise CliError(f"validate: no such file or folder: {args.path}", code=2)
    result = validate_path(args.path)
    data = {"target": result.target, "ok": result.ok, "notes": result.notes,
            "problems": [{"field": p.field, "message": p.message, "fix": p.fix, "file": p.file, "line": p.line}
                         for p in result.problems]}
    emit(args, data, str(result))
    return 0 if result.ok else 1
