"""Reading an audit log and checking its hash chain (``flx-ipy audit tail|verify``, ``%plugin
audit``), across the files rotation made: ``audit.jsonl.N`` ... ``audit.jsonl.1``, ``audit.jsonl``.

See ``audit.py`` for the record format and for what the chain does and does not prove.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ChainReport", "chain_files", "read_records", "tail", "verify_chain"]


def chain_files(path: Path) -> list[Path]:
    """``path`` with its rotated predecessors, oldest first (``.5 .4 ... .1``, then ``path``)."""
    olders = []
    n = 1
    while path.with_name(f"{path.name}.{n}").exists():
        olders.append(path.with_name(f"{path.name}.{n}"))
        n += 1
    return [*reversed(olders), path] if path.exists() else list(reversed(olders))


def _parse(line: bytes) -> dict[str, Any]:
    try:
        rec = json.loads(line)
    except ValueError:
        rec = None
    return rec if isinstance(rec, dict) else {"operation": "?", "error": "unreadable line", "outcome": "?"}


def read_records(path: str | Path, last: int | None = None) -> list[dict[str, Any]]:
    """The records of one file, oldest first; ``last``: only the last N, read from the end
    (``%plugin audit`` on a 10 MB log reads a few KB)."""
    p = Path(path).expanduser()
    if last is None:
        with open(p, "rb") as fh:
            return [_parse(line.rstrip(b"\n")) for line in fh if line.strip()]
    with open(p, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        pos, buf = fh.tell(), b""
        while pos > 0 and buf.count(b"\n") <= last:
            step = min(65536, pos)
            pos -= step
            fh.seek(pos)
            buf = fh.read(step) + buf
    lines = [line for line in buf.split(b"\n") if line.strip()]
    if pos > 0:
        lines = lines[1:]  # the first piece may be the tail of a longer line
    return [_parse(line) for line in lines[-last:]] if last > 0 else []


def tail(path: str | Path, n: int = 20) -> list[dict[str, Any]]:
    """The last ``n`` records (reading rotated files too when the current one has fewer)."""
    p = Path(path).expanduser()
    files = chain_files(p)
    if not files:
        raise FileNotFoundError(f"no audit log at {p}")
    out: list[dict[str, Any]] = []
    for f in reversed(files):
        out = read_records(f, n - len(out)) + out
        if len(out) >= n:
            break
    return out[-n:] if n > 0 else []


@dataclass
class ChainReport:
    """``ok``, how many ``records`` were checked, and where the chain first breaks."""

    ok: bool
    records: int
    files: list[str]
    broken_file: str | None = None
    broken_line: int | None = None
    reason: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"ok: {self.records} records, hash chain intact ({', '.join(self.files)})"
        return f"{self.broken_file}:{self.broken_line}: hash chain broken: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "files": self.files, "broken_file": self.broken_file,
                "broken_line": self.broken_line, "reason": self.reason}


def verify_chain(path: str | Path, *, follow_rotation: bool = True) -> ChainReport:
    """Check every line's ``prev`` against the previous line, across rotated files.

    The first line of the oldest file kept may point at a file rotated away (``prev`` not
    null): that is accepted, and said in ``reason``."""
    p = Path(path).expanduser()
    files = chain_files(p) if follow_rotation else ([p] if p.exists() else [])
    if not files:
        raise FileNotFoundError(f"no audit log at {p}")
    prev_hash: str | None = None
    count = 0
    first = True
    note = ""
    for f in files:
        with open(f, "rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                line = raw.rstrip(b"\n")
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                    claimed = rec["prev"]
                except (ValueError, KeyError, TypeError):
                    return ChainReport(False, count, [str(x) for x in files], str(f), lineno,
                                       "not a JSON audit record with a `prev` field")
                if first:
                    if claimed is not None:
                        note = "the oldest kept record chains to a file no longer present"
                    first = False
                elif claimed != prev_hash:
                    what = ("the line before it was edited, or lines were deleted or inserted here"
                            if claimed is not None else "`prev` is null in the middle of the log")
                    return ChainReport(False, count, [str(x) for x in files], str(f), lineno,
                                       f"`prev` does not match the sha256 of the previous record ({what})")
                prev_hash = hashlib.sha256(line).hexdigest()
                count += 1
    return ChainReport(True, count, [str(x) for x in files], reason=note)
