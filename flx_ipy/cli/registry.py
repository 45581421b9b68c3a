"""``flx-ipy index build|add``, ``search``, ``install`` and ``publish``: plugin indexes.

Thin adapters over :mod:`flx_ipy.registry` (``%plugin search`` / ``%plugin install`` call the
same functions). ``--index`` defaults to ``$FLX_IPY_INDEX``; ``install --audit-log`` to
``$FLX_IPY_AUDIT_LOG`` (no manager runs here, so the CLI writes its own record, origin ``cli``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from .output import CliError, add_json_flag, emit


def _guard(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """RegistryError is already one line with the next step: pass it on with its exit code."""

    def call(args: argparse.Namespace) -> int:
        from ..registry import RegistryError

        try:
            return run(args)
        except RegistryError as e:
            raise CliError(str(e), e.code) from None

    return call


def _index_source(p: argparse.ArgumentParser) -> None:
    """``search`` and ``install`` read an index: a folder or a URL."""
    p.add_argument("--index", metavar="URL|PATH", help="index folder or URL (default: $FLX_IPY_INDEX)")


def _index_target(p: argparse.ArgumentParser) -> None:
    """``index add`` and ``publish`` write wheels into an index folder."""
    p.add_argument("--index", required=True, metavar="DIR", help="the index folder (created if missing)")
    p.add_argument("--replace", action="store_true", help="overwrite a wheel of the same name with other bytes")


def register(sub: Any) -> None:
    p = sub.add_parser("index", help="build or add to a plugin index folder",
                       description="A plugin index is a folder of wheels plus the index.json this writes; serve it "
                                   "from any static HTTP host or use the folder directly.")
    isub = p.add_subparsers(dest="index_verb", metavar="ACTION", parser_class=type(p))
    b = isub.add_parser("build", help="write DIR/index.json from the wheels in DIR",
                        description="Write DIR/index.json from the *.whl files in DIR, reading their metadata and "
                                    "entry points from the zip (nothing is installed or run). Only wheels with an "
                                    "entry point in group flx_ipy.plugins are listed; others are named as skipped. "
                                    "Rebuilding an unchanged folder leaves index.json byte-identical.")
    b.add_argument("dir", metavar="DIR")
    add_json_flag(b)
    b.set_defaults(func=_guard(_index_build))
    a = isub.add_parser("add", help="copy plugin wheels into an index folder and rebuild it",
                        description="Copy each WHEEL into the index folder and rebuild its index.json. A wheel "
                                    "already there with other bytes is refused unless --replace.")
    a.add_argument("wheels", nargs="+", metavar="WHEEL")
    _index_target(a)
    add_json_flag(a)
    a.set_defaults(func=_guard(_index_add))
    p.set_defaults(func=_index_no_action)

    s = sub.add_parser("search", help="search an index for plugins (all of them without TERM)",
                       description="List the plugins an index offers whose name, plugin names or summary contain "
                                   "TERM (all of them without TERM).")
    s.add_argument("term", nargs="?", metavar="TERM")
    _index_source(s)
    add_json_flag(s)
    s.set_defaults(func=_guard(_search))

    i = sub.add_parser("install", help="pip-install a plugin from an index, hash-checked",
                       description="Install NAME (a package or plugin name, optionally ==VERSION or another "
                                   "specifier) from the index through pip, in hash-checking mode: a wheel whose "
                                   "sha256 differs from the index is refused and nothing is installed. "
                                   "Dependencies are checked, not installed (--no-deps).")
    i.add_argument("requirement", metavar="NAME[==VERSION]")
    _index_source(i)
    i.add_argument("--dry-run", action="store_true", help="show what would change; install nothing")
    i.add_argument("--target", metavar="DIR", help="install into DIR (pip --target) instead of this environment")
    i.add_argument("--reinstall", action="store_true", help="reinstall even when this version is installed")
    i.add_argument("--audit-log", metavar="FILE", default=None,
                   help="append the install's outcome (origin `cli`) to this audit log, hash-chained like "
                        "the kernel's (default: $FLX_IPY_AUDIT_LOG; unset: no record)")
    add_json_flag(i)
    i.set_defaults(func=_guard(_install))

    pub = sub.add_parser("publish", help="build a plugin project's wheel and add it to an index folder",
                         description="One step from a project (e.g. made by `flx-ipy new`) to an index: "
                                     "`pip wheel --no-deps PROJECT`, copy the wheel into the index folder, "
                                     "rebuild index.json.")
    pub.add_argument("project", metavar="PROJECT")
    _index_target(pub)
    pub.add_argument("--no-build-isolation", action="store_true",
                     help="build with the backend installed here (offline) instead of a fresh build env")
    add_json_flag(pub)
    pub.set_defaults(func=_guard(_publish))


def _index_no_action(args: argparse.Namespace) -> int:
    from .output import UsageFailure

    raise UsageFailure("flx-ipy index: say what to do: build DIR, or add WHEEL... --index DIR "
                       "(see `flx-ipy index --help`)")


def _index_build(args: argparse.Namespace) -> int:
    from ..registry import build_index

    report = build_index(args.dir)
    lines = [report.summary()] + [f"  skipped {s['file']}: {s['reason']}" for s in report.skipped]
    emit(args, report.to_dict(), "\n".join(lines))
    return 0


def _index_add(args: argparse.Namespace) -> int:
    from ..registry.publish import add_wheels

    report = add_wheels(args.wheels, args.index, replace=args.replace)
    emit(args, report.to_dict(), report.summary())
    return 0


def _search(args: argparse.Namespace) -> int:
    from ..registry import default_index, load_index, search
    from ..registry.table import format_table, search_rows

    index = load_index(default_index(args.index))
    rows = search_rows(search(index, args.term))
    if not rows:
        human = (f"no plugin in {index.location} matches {args.term!r}" if args.term
                 else f"{index.location} lists no plugins")
    else:
        human = format_table(rows)
    emit(args, rows, human)
    return 0


def _install(args: argparse.Namespace) -> int:
    from ..registry import RegistryError, default_index, install, load_index
    from .audit import audit_install, audit_path

    audit_to = audit_path(args.audit_log)
    quiet = args.json
    try:
        index = load_index(default_index(args.index))
        result = install(index, args.requirement, target=args.target, dry_run=args.dry_run,
                         reinstall=args.reinstall,
                         on_line=None if quiet else (lambda line: print(f"  pip: {line}", file=sys.stderr)))
    except RegistryError as e:
        if audit_to is not None and not args.dry_run:
            audit_install(audit_to, args.requirement, error=str(e), index=args.index)
        raise
    if audit_to is not None and result.changed and not result.dry_run:
        p = result.plan
        for name in p.plugins or [p.name]:
            audit_install(audit_to, name, distribution=p.name, version=p.version, previous=p.installed,
                          index=index.location, wheel_sha256=p.sha256, target=args.target)
    human = result.summary()
    if result.changed and result.plan.plugins:
        human += f" — load one: `%plugin load {result.plan.plugins[0]}`"
    emit(args, result.to_dict(), human)
    return 0


def _publish(args: argparse.Namespace) -> int:
    from ..registry.publish import publish_project

    pip_args = ["--no-build-isolation"] if args.no_build_isolation else []
    report = publish_project(args.project, args.index, replace=args.replace, pip_args=pip_args)
    emit(args, report.to_dict(), report.summary())
    return 0
