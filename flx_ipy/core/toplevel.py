"""A module's top level as separate pieces, so a reload re-runs only what changed.

A *piece* is one top-level statement (a decorated ``def``/``class`` with its decorators; a few
statements sharing a line stay together), compiled on its own at its own line numbers. The
reload (``codeswap.CodeSwap``) matches the new pieces against the ones that ran before by their
text and runs only the ones that changed, plus imports and whatever reads a name that a run piece
rebound; unchanged assignments are not run again, so the objects they hold (a cache, a registry
filled at run time, the object a decorator returned) stay. See ``docs/reload-semantics.md``.

Splitting without building a Python AST: a top-level statement starts on a line that begins in
column 0 (not a comment, not a closing bracket, not ``else``/``elif``/``except``/``finally``);
the lines from one such line up to the next form a piece if they compile by themselves — if not
(an open bracket, a multi-line string, a decorator), the next candidate line is added. Compiling
is needed anyway (it is what runs), so a split costs about one compile of the changed part:
between two saves only the lines between the common prefix and suffix are split again, the other
pieces are reused (moved by the line delta). Anything unusual falls back to ``ast.parse``; a
source with a BOM or a non-UTF-8 coding cookie is one piece (the whole module runs, as before).
"""

from __future__ import annotations
import __future__

import ast
import dis
import inspect
import re
import types
from dataclasses import dataclass, replace

from .files import digest

_CONT = re.compile(rb"(else|elif|except|finally)\b")
_COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
_FUTURE = re.compile(rb"^from[ \t]+__future__[ \t]+import[ \t]+\(?([^#\n]*)", re.M)
_COMPREHENSIONS = frozenset({"<listcomp>", "<setcomp>", "<dictcomp>", "<genexpr>"})
_NOT_START = frozenset(b" \t\r\n\f#)]}")
_MAX_TRIES = 16
_cache: dict[tuple[str, str], Split] = {}


@dataclass
class Piece:
    start: int  # index of its first line (0-based)
    stop: int  # index after its last line (trailing blank/comment lines included)
    key: bytes  # its text, trailing blank and comment lines left out
    kind: str  # "import", "def", "class" or "other"
    decorated: bool
    binds: frozenset[str] | None  # names it binds at top level; None: ``from x import *``
    reads: frozenset[str]  # names its top-level code (and class bodies) may read
    code: types.CodeType | None  # compiled at ``start`` (None: not compiled at this position)
    deletes: bool = False  # it deletes a top-level name: always run (as a fresh import would)


@dataclass(frozen=True)
class Split:
    pieces: tuple[Piece, ...]
    lines: tuple[bytes, ...]
    flags: int
    names: frozenset[str] | None  # every name the top level binds (None: a star import)


class _Fallback(Exception):
    pass


def _future_flags(data: bytes) -> int:
    flags = 0
    for m in _FUTURE.finditer(data):
        for name in m.group(1).replace(b")", b"").split(b","):
            feature = getattr(__future__, name.strip().split(b" ")[0].decode("ascii", "replace"), None)
            if isinstance(feature, type(__future__.annotations)):
                flags |= feature.compiler_flag
    return flags


def _candidate(line: bytes) -> bool:
    return bool(line) and line[0] not in _NOT_START and not _CONT.match(line)


def _skippable(line: bytes) -> bool:
    s = line.strip()
    return not s or s.startswith(b"#")


def _compile(lines: tuple[bytes, ...], i: int, j: int, path: str, flags: int) -> types.CodeType:
    code: types.CodeType = compile(b"\n" * i + b"".join(lines[i:j]), path, "exec", flags, dont_inherit=True)
    return code


def _reads(code: types.CodeType) -> set[str]:
    """Names read when the code runs now: its own, class bodies' and comprehensions' — not
    function or lambda bodies (they look names up when called)."""
    out = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType) and (not c.co_flags & inspect.CO_OPTIMIZED or c.co_name in _COMPREHENSIONS):
            out |= _reads(c)
    return out


def _piece(lines: tuple[bytes, ...], i: int, j: int, code: types.CodeType) -> Piece:
    k = j
    while k > i + 1 and (not lines[k - 1].strip() or lines[k - 1].startswith(b"#")):
        k -= 1  # blank lines and column-0 comments after the statement are not part of it
    first = lines[i]
    decorated = first.startswith(b"@")
    head = first
    if decorated:
        head = next((ln for ln in lines[i:j] if ln.startswith((b"def ", b"async ", b"class "))), b"")
    if first.startswith((b"import ", b"from ")) and not decorated:
        kind = "import"
    elif head.startswith((b"def ", b"async def")):
        kind = "def"
    elif head.startswith(b"class "):
        kind = "class"
    else:
        kind = "other"
    binds: set[str] | None = set()
    deletes = False
    for ins in dis.get_instructions(code):
        if ins.opname in ("STORE_NAME", "STORE_GLOBAL", "DELETE_NAME", "DELETE_GLOBAL"):
            binds.add(ins.argval)  # type: ignore[union-attr]
            deletes = deletes or ins.opname.startswith("DELETE")
        elif ins.opname == "IMPORT_STAR":
            binds = None
            break
    return Piece(i, j, b"".join(lines[i:k]), kind, decorated,
                 frozenset(binds) if binds is not None else None, frozenset(_reads(code)), code, deletes)


def _split_range(lines: tuple[bytes, ...], lo: int, hi: int, path: str, flags: int) -> list[Piece]:
    out: list[Piece] = []
    i = lo
    while i < hi:
        if _skippable(lines[i]):
            i += 1
            continue
        if not _candidate(lines[i]):
            raise _Fallback
        j, tries = i + 1, 0
        while True:
            while j < hi and not _candidate(lines[j]):
                j += 1
            try:
                code = _compile(lines, i, j, path, flags)
                break
            except SyntaxError as e:
                tries += 1
                if j >= hi or tries > _MAX_TRIES:
                    raise _Fallback from e
                j += 1
        out.append(_piece(lines, i, j, code))
        i = j
    if out:  # trailing comment/blank lines belong to the last piece
        last = out[-1]
        out[-1] = replace(last, stop=max(last.stop, hi))
    return out


def _ast_split(data: bytes, lines: tuple[bytes, ...], path: str, flags: int) -> list[Piece]:
    """The robust way (a Python AST of the whole module): used when the line rule is unsure.
    A real syntax error is raised from here."""
    tree = ast.parse(data, path)
    spans: list[list[int]] = []
    for node in tree.body:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", ())]) - 1
        stop = node.end_lineno or node.lineno
        if spans and start < spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], stop)
        else:
            spans.append([start, stop])
    out = []
    for n, (start, _stop) in enumerate(spans):
        nxt = spans[n + 1][0] if n + 1 < len(spans) else len(lines)
        out.append(_piece(lines, start, nxt, _compile(lines, start, nxt, path, flags)))
    return out


def _whole(data: bytes, lines: tuple[bytes, ...], path: str, flags: int) -> list[Piece]:
    code = compile(data, path, "exec", dont_inherit=True)
    p = _piece(lines, 0, len(lines), code)
    return [replace(p, key=data, kind="other")]


def split(data: bytes, path: str, old: Split | None = None) -> Split:
    """``data`` as pieces; ``old``: the split of the version that runs, whose pieces outside the
    changed lines are reused. Raises ``SyntaxError`` for a source that does not compile."""
    key = (path, digest(data))
    hit = _cache.get(key)
    if hit is not None:
        return hit
    lines = tuple(data.splitlines(keepends=True))
    flags = _future_flags(data)
    cookie = [m.group(1).lower() for ln in lines[:2] if (m := _COOKIE.match(ln))]
    pieces: list[Piece] | None = None
    if data.startswith(b"\xef\xbb\xbf") or (cookie and cookie[0] not in (b"utf-8", b"utf8")):
        pieces = _whole(data, lines, path, flags)
    else:
        if old is not None and old.flags == flags:
            try:
                pieces = _incremental(lines, old, path, flags)
            except _Fallback:
                pieces = None
        if pieces is None:
            try:
                pieces = _split_range(lines, 0, len(lines), path, flags)
            except _Fallback:
                pieces = _ast_split(data, lines, path, flags)
    assert pieces is not None
    names: set[str] | None = set()
    for p in pieces:
        if p.binds is None:
            names = None
            break
        names |= p.binds  # type: ignore[operator]
    result = Split(tuple(pieces), lines, flags, frozenset(names) if names is not None else None)
    _cache[key] = result
    if len(_cache) > 16:  # a running version and a save or two per plugin
        _cache.pop(next(iter(_cache)))
    return result


def _incremental(lines: tuple[bytes, ...], old: Split, path: str, flags: int) -> list[Piece]:
    a_lines, n_old, n_new = old.lines, len(old.lines), len(lines)
    p = 0
    limit = min(n_old, n_new)
    while p < limit and a_lines[p] == lines[p]:
        p += 1
    s = 0
    while s < limit - p and a_lines[n_old - 1 - s] == lines[n_new - 1 - s]:
        s += 1
    delta = n_new - n_old
    pieces = list(old.pieces)
    head = 0
    while head < len(pieces) and pieces[head].stop <= p:
        head += 1
    tail = len(pieces)
    while tail > head and pieces[tail - 1].start >= n_old - s:
        tail -= 1
    lo = pieces[head - 1].stop if head else 0
    hi = (pieces[tail].start + delta) if tail < len(pieces) else n_new
    if hi < lo:
        raise _Fallback
    middle = _split_range(lines, lo, hi, path, flags)
    moved = [replace(pc, start=pc.start + delta, stop=pc.stop + delta, code=pc.code if not delta else None)
             for pc in pieces[tail:]]
    return pieces[:head] + middle + moved


def code_of(split_: Split, index: int, path: str) -> types.CodeType:
    """The piece's code at its current line numbers (compiled now if it moved)."""
    pc = split_.pieces[index]
    if pc.code is not None:
        return pc.code
    code = _compile(split_.lines, pc.start, pc.stop, path, split_.flags)
    pc.code = code
    return code


# ----------------------------------------------------------------------------- class bodies
_segments_cache: dict[types.CodeType, dict[str, tuple[object, ...] | None]] = {}


def class_bodies(split_: Split, path: str) -> dict[str, types.CodeType]:
    """The class-body code objects of a split (nested ones too), by ``__qualname__``."""
    out: dict[str, types.CodeType] = {}

    def visit(code: types.CodeType, prefix: str) -> None:
        for c in code.co_consts:
            if isinstance(c, types.CodeType) and not c.co_flags & inspect.CO_OPTIMIZED:
                qual = prefix + c.co_name  # (co_qualname is 3.11+)
                out.setdefault(qual, c)
                visit(c, qual + ".")

    for index, pc in enumerate(split_.pieces):
        if pc.kind == "class":
            visit(code_of(split_, index, path), "")
    return out


def _norm_arg(value: object) -> object:
    if isinstance(value, types.CodeType):
        return (value.co_name, value.co_code, tuple(_norm_arg(c) for c in value.co_consts))
    return value


def _segments(body: types.CodeType) -> dict[str, tuple[object, ...] | None]:
    """Per name the class body stores, the instructions that compute it (positions left out);
    None for a name stored more than once."""
    hit = _segments_cache.get(body)
    if hit is not None:
        return hit
    out: dict[str, tuple[object, ...] | None] = {}
    current: list[object] = []
    for ins in dis.get_instructions(body):
        if ins.opname in ("RESUME", "NOP", "CACHE", "EXTENDED_ARG"):
            continue
        if ins.opname == "STORE_NAME":
            name = str(ins.argval)
            out[name] = None if name in out else tuple(current)
            current = []
            continue
        current.append((ins.opname, _norm_arg(ins.argval) if ins.arg is not None else None))
    _segments_cache[body] = out
    if len(_segments_cache) > 64:
        _segments_cache.pop(next(iter(_segments_cache)))
    return out


def same_assignment(old_body: types.CodeType, new_body: types.CodeType, name: str) -> bool:
    """Does the class body compute ``name`` exactly as before (the statement did not change)?"""
    before = _segments(old_body).get(name)
    return before is not None and before == _segments(new_body).get(name)
