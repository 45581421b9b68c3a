"""``flx-ipy audit tail FILE`` and ``flx-ipy audit verify FILE`` (``%plugin audit`` reads the
same way: ``flx_ipy.core.audit.tail`` / ``verify_chain``)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .output import CliError, add_json_flag, emit


def register(sub: Any) -> None:
    a = sub.add_parser("audit", help="read or check an audit log (tail | verify)",
                       description="Read (tail) or check (verify) a flx_ipy audit log: JSON Lines, one record "
                                   "per operation outcome, hash-chained through `prev`.")
    verbs = a.add_subparsers(dest="audit_verb", metavar="tail|verify", parser_class=type(a))
    t = verbs.add_parser("tail", help="the last N records, readable",
                         description="Print the last N records of FILE (rotated files are read too).")
    t.add_argument("file", metavar="FILE")
    t.add_argument("-n", type=int, default=20, help="how many records (default 20)")
    add_json_flag(t)
    t.set_defaults(func=run_tail)
    v = verbs.add_parser("verify", help="check the hash chain; exit 1 names the line where it breaks",
                         description="Check every record's `prev` against the sha256 of the line before it, "
                                     "across rotated files (FILE.N ... FILE.1, FILE). Exit 0 when intact, 1 "
                                     "naming the first line where the chain breaks.")
    v.add_argument("file", metavar="FILE")
    add_json_flag(v)
    v.set_defaults(func=run_verify)
    a.set_defaults(func=lambda args: _usage(a))


def _usage(parser: argparse.ArgumentParser) -> int:
    raise CliError("audit: choose `tail FILE` or `verify FILE` (see `flx-ipy audit --help`)", code=2)


def run_tail(args: argparse.Namespace) -> int:
    from ..core.audit import tail
    from ..display import audit_table

    if args.n < 0:
        raise CliError("audit tail: -n must be 0 or more", code=2)
    try:
        records = tail(args.file, args.n)
    except FileNotFoundError as e:
        raise CliError(f"audit tail: {e}", code=2) from None
    emit(args, records, audit_table(records).text())
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from ..core.audit import verify_chain

    try:
        report = verify_chain(args.file)
    except FileNotFoundError as e:
        raise CliError(f"audit verify: {e}", code=2) from None
    emit(args, report.to_dict(), str(report) + (f" ({report.reason})" if report.ok and report.reason else ""))
    return 0 if report.ok else 1


#: where a CLI verb that changes something (``flx-ipy install``) appends its record, when no
#: ``--audit-log`` is given; unset (and no flag): the CLI writes no record
AUDIT_ENV = "FLX_IPY_AUDIT_LOG"


def audit_path(flag: str | None) -> str | None:
    return flag or os.environ.get(AUDIT_ENV) or None


def audit_install(path: str, plugin: str, *, error: str | None = None, **details: Any) -> bool:
    """Append one ``install`` record (origin ``cli``) to the audit log at ``path``, written and
    flushed before the command exits, chained to the log's last line (a kernel may share the
    file: writes take the same advisory lock). A log that cannot be written is a warning on
    stderr, never a failed install: the install already happened."""
    from ..core.audit import AuditLog
    from ..core.errors import FlxError

    record = {"operation": "install", "plugin": plugin, "outcome": "failed" if error else "ok",
              "origin": "cli", "error": error, "code_sha256": None}
    record.update({k: v for k, v in details.items() if v is not None})
    log = AuditLog(path, mode="blocking")
    try:
        log.write(record)
        return True
    except FlxError as e:
        print(f"flx-ipy: warning: {e} (the install is not audited)", file=sys.stderr)
        return False
    finally:
        log.close()
