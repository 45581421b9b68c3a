"""What every verb shares: its errors (each one line, with an exit code) and ``--json`` output."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["CliError", "UsageFailure", "add_json_flag", "emit"]


class CliError(Exception):
    """A verb's failure, shown as one line on stderr. ``code`` 1: the check failed; 2: bad usage."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class UsageFailure(CliError):
    """Bad usage found by the parser (exit code 2); its message already names the program."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=2)


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def emit(args: argparse.Namespace, data: Any, human: str) -> None:
    """Print ``data`` as JSON under ``--json``, else the human-readable text."""
    if getattr(args, "json", False):
        json.dump(data, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        if human:
            print(human)
