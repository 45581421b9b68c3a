"""``flx-ipy``: the command-line face of the plugin manager.

Every verb is a thin adapter over a function the notebook magics call too (one implementation,
several faces). Verbs live in their own modules under ``flx_ipy.cli`` and are imported only when
the command line is parsed, so ``import flx_ipy`` never pays for them. A verb module exposes
``register(subparsers)``, which adds its parser(s) and sets ``func`` (``args -> exit code``).

Exit codes (DESIGN.md, "Command line"): 0 ok, 1 the check failed, 2 bad usage. Bad input is one
line on stderr, never a traceback from flx_ipy's internals.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .output import CliError, UsageFailure

__all__ = ["CliError", "UsageFailure", "build_parser", "main"]

#: verb modules, in the order ``--help`` lists them; each has ``register(subparsers)``
VERB_MODULES: tuple[str, ...] = ("inspect", "scaffold", "trust", "audit", "serve", "registry")


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad usage as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageFailure(f"{self.prog}: {message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="flx-ipy", description="Develop, trust and operate flx_ipy plugins.")
    from .._version import __version__

    parser.add_argument("--version", action="version", version=f"flx-ipy {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    for name in VERB_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        func = getattr(args, "func", None)
        if func is None:
            parser.print_help(sys.stderr)
            return 2
        from ..core.origin import origin_scope

        with origin_scope("cli"):  # what the audit log records as this operation's origin
            return int(func(args) or 0)
    except UsageFailure as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except CliError as exc:
        print(f"flx-ipy: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("flx-ipy: interrupted", file=sys.stderr)
        return 130
