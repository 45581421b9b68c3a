"""Which modules to re-execute, in which order, when some files of a plugin change.

Built from the sources' ASTs rather than from ``sys.modules`` inspection: a module that only
does ``from .consts import LIMIT`` holds no reference to ``consts`` at run time, yet must be
re-executed after it. Child → parent-package edges are dropped (a package's ``__init__`` runs
before its submodules anyway, and the edge would make every package a cycle).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping


def imports_of(name: str, source: bytes | str, is_package: bool, known: Iterable[str]) -> set[str]:
    """Names among ``known`` that module ``name`` imports (absolute or relative)."""
    known_set = set(known)
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    package = name if is_package else name.rpartition(".")[0]
    out: set[str] = set()

    def add(mod: str) -> None:
        # importing a.b.c also runs a and a.b: depend on the deepest known prefix chain
        parts = mod.split(".")
        for i in range(len(parts), 0, -1):
            cand = ".".join(parts[:i])
            if cand in known_set:
                out.add(cand)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".") if package else []
                if node.level > 1:
                    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts)
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            if mod:
                add(mod)
            for alias in node.names:  # `from pkg import sub` imports the submodule pkg.sub
                if mod:
                    add(f"{mod}.{alias.name}")
    out.discard(name)
    # drop child -> parent-package edges
    return {m for m in out if not name.startswith(m + ".")}


def build_graph(modules: Mapping[str, tuple[bytes | str, bool]]) -> dict[str, set[str]]:
    """``{module: (source, is_package)}`` -> ``{module: modules it imports}``."""
    return {name: imports_of(name, src, is_pkg, modules) for name, (src, is_pkg) in modules.items()}


def dependants_closure(changed: Iterable[str], graph: Mapping[str, set[str]]) -> set[str]:
    """``changed`` plus every module that imports one of them, transitively."""
    importers: dict[str, set[str]] = {}
    for mod, deps in graph.items():
        for d in deps:
            importers.setdefault(d, set()).add(mod)
    todo = [c for c in changed if c in graph]
    seen = set(todo)
    while todo:
        m = todo.pop()
        for imp in importers.get(m, ()):
            if imp not in seen:
                seen.add(imp)
                todo.append(imp)
    return seen


def import_order(subset: Iterable[str], graph: Mapping[str, set[str]]) -> list[str]:
    """Modules of ``subset`` with every module after the ones it imports.

    A real import cycle cannot be ordered; its members come out in a stable (sorted) order and
    are re-executed as one unit by the caller's transaction.
    """
    wanted = set(subset)
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = done

    def visit(m: str) -> None:
        if state.get(m) == 2:
            return
        if state.get(m) == 1:
            return  # cycle: keep going; the transaction applies the whole set or nothing
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            if d in wanted:
                visit(d)
        state[m] = 2
        order.append(m)

    # parents (packages) first, then by name: deterministic
    for m in sorted(wanted, key=lambda n: (n.count("."), n)):
        visit(m)
    return order
