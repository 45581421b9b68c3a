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

#: how the top-level ``--help`` groups the verbs: (heading, the modules whose verbs it lists)
VERB_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("develop", ("inspect", "scaffold")),
    ("sign and audit", ("trust", "audit")),
    ("operate", ("serve",)),
    ("share (plugin indexes)", ("registry",)),
)


#: the namespace attributes that hold the verb (and sub-verb) a command line chose, outermost first
_VERB_ATTRS: tuple[str, ...] = ("verb", "audit_verb", "index_verb")


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad usage as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageFailure(f"{self.prog}: {message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="flx-ipy", description="Develop, sign, operate and share flx_ipy plugins.",
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    from .._version import __version__

    parser.add_argument("--version", action="version", version=f"flx-ipy {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser,
                                help="one of the verbs below; `flx-ipy VERB --help` for its options")
    by_module: dict[str, list[argparse.Action]] = {}
    for name in VERB_MODULES:
        before = len(sub._choices_actions)
        importlib.import_module(f"{__name__}.{name}").register(sub)
        by_module[name] = sub._choices_actions[before:]
    # A newcomer reads the verbs by task, not as one flat list: the epilog groups them, and the
    # flat listing argparse would print under "positional arguments" is dropped (same lines).
    sub._choices_actions = []
    parser.epilog = _grouped_verbs(by_module)
    return parser


def _grouped_verbs(by_module: dict[str, list[argparse.Action]]) -> str:
    rows = [(heading, [(a.dest, a.help or "") for m in modules for a in by_module.get(m, [])])
            for heading, modules in VERB_GROUPS]
    listed = {m for _, modules in VERB_GROUPS for m in modules}
    rest = [(a.dest, a.help or "") for m, actions in by_module.items() if m not in listed for a in actions]
    if rest:
        rows.append(("other", rest))
    width = max((len(verb) for _, verbs in rows for verb, _ in verbs), default=0)
    blocks = [f"{heading}:\n" + "\n".join(f"  {verb:<{width}}  {text}" for verb, text in verbs)
              for heading, verbs in rows if verbs]
    return "\n\n".join(blocks)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # name the verb whose options were wrong, and point at its own --help
            prog = " ".join(["flx-ipy", *(v for v in (getattr(args, a, None) for a in _VERB_ATTRS) if v)])
            raise UsageFailure(f"{prog}: unrecognized arguments: {' '.join(extra)} (see `{prog} --help`)")
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
