"""Splitting a module's top level into pieces (``core/toplevel.py``): the line rule agrees with
the AST on tricky sources, and an incremental split equals a fresh one."""

from __future__ import annotations

import ast
import random
import textwrap
from pathlib import Path

import pytest

import flx_ipy
from flx_ipy.core import toplevel

TRICKY = textwrap.dedent('''
    """Module docstring."""
    from __future__ import annotations
    import os, sys
    X = (1,
    2)
    S = """
    not = a statement
    """
    @decorator(
        arg=1,
    )
    def f(x=X):
        return x
    # a comment between statements

    if X:
        Y = 1
    elif S:
        Y = 2
    else:
        Y = 3
    try:
        import json
    except ImportError:
        json = None
    finally:
        pass
    a = 1; b = 2
    class C(
        object,
    ):
        z = [i for i in range(3)]
    T = \\
        5
    del a
    x = [
    ]
''')


def _ast_starts(data: bytes) -> list[int]:
    starts, last = [], -1
    for node in ast.parse(data).body:
        s = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", ())]) - 1
        if s < last:
            last = max(last, node.end_lineno or 0)
            continue
        starts.append(s)
        last = node.end_lineno or 0
    return starts


def test_line_rule_agrees_with_the_ast() -> None:
    data = TRICKY.encode()
    sp = toplevel.split(data, "<tricky>")
    assert [p.start for p in sp.pieces] == _ast_starts(data)
    by_start = {data.splitlines()[p.start].decode(): p for p in sp.pieces}
    assert by_start["import os, sys"].kind == "import" and by_start["import os, sys"].binds == {"os", "sys"}
    assert by_start["@decorator("].kind == "def" and by_start["@decorator("].decorated
    assert by_start["del a"].deletes
    assert "X" in by_start["@decorator("].reads  # a default value is read now; the body is not
    assert sp.names is not None and {"f", "C", "Y", "json", "T", "a", "b"} <= sp.names


def test_syntax_error_is_raised() -> None:
    with pytest.raises(SyntaxError):
        toplevel.split(b"x = 1\ndef f(:\n    pass\n", "<bad>")


def test_incremental_split_equals_a_fresh_one() -> None:
    rng = random.Random(7)
    files = sorted((Path(flx_ipy.__file__).parent / "core").glob("*.py"))
    snippets = [b"x = 1\n", b"    pass\n", b"def zz():\n    return 1\n", b"\n", b"# c\n", b"else:\n    pass\n",
                b'"""\n', b"@deco\n", b")\n"]
    checked = 0
    for path in files:
        data = path.read_bytes()
        old = toplevel.split(data, str(path))
        for _ in range(8):
            lines = data.splitlines(keepends=True)
            if not lines:
                break
            i = rng.randrange(len(lines))
            op = rng.random()
            if op < 0.4:
                lines.insert(i, rng.choice(snippets))
            elif op < 0.7:
                del lines[i]
            else:
                lines[i] = lines[i].replace(b"1", b"2")
            new = b"".join(lines)
            try:
                compile(new, str(path), "exec", dont_inherit=True)
            except SyntaxError:
                continue
            toplevel._cache.clear()
            inc = toplevel.split(new, str(path), old)
            toplevel._cache.clear()
            fresh = toplevel.split(new, str(path))
            assert [(p.start, p.key) for p in inc.pieces] == [(p.start, p.key) for p in fresh.pieces], (path, i)
            checked += 1
    assert checked > 40
