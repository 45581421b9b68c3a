"""The shape of ``flx_ipy/core``: one stack, imports pointing down, no private names shared.

``STACK`` is the order, bottom to top (``docs/architecture.md`` explains each layer). A new core
module must be placed in it. The checks read the source with ``ast``, so they see every import
— at module level, inside functions and under ``if TYPE_CHECKING:`` — without running anything.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import flx_ipy

PACKAGE = Path(flx_ipy.__file__).parent
CORE = PACKAGE / "core"

STACK = [
    "files",
    "errors",
    "origin",
    "context",
    "types",
    "graph",
    "entrypoints",
    "source",
    "project",
    "sshsig",
    "signing",
    "validators",
    "loader",
    "trust",
    "toplevel",
    "redirect",
    "binding",
    "codeswap",
    "instance_guard",
    "steps",
    "metrics",
    "events",
    "settle",
    "discovery",
    "health_rules",
    "recovery",
    "registry",
    "lifecycle",
    "revisions",
    "transaction",
    "rollback",
    "polling",
    "watcher",
    "auditfile",
    "audit",
    "manager",
]
#: the package face re-exports from anywhere in the stack; nothing imports it back
FACE = "__init__"


def _host_modules(package: Path) -> set[str]:
    """Every module and package of ``flx_ipy`` outside the core (the layers above it)."""
    return {p.stem if p.is_file() else p.name for p in package.iterdir()
            if p.name != "core" and not p.name.startswith(("_", "."))
            and (p.suffix == ".py" or (p / "__init__.py").exists())}


def _modules(core: Path) -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text(encoding="utf-8"), str(p)) for p in sorted(core.glob("*.py"))}


def _imported(node: ast.Import | ast.ImportFrom) -> list[tuple[str, str | None]]:
    """``(core module, imported name)`` pairs for imports of the core by a core module;
    ``("<host>", name)`` for an import of a module outside the core."""
    out: list[tuple[str, str | None]] = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            parts = alias.name.split(".")
            if parts[0] == "flx_ipy":
                out.append((parts[2], None) if parts[1:2] == ["core"] and len(parts) > 2 else ("<host>", alias.name))
        return out
    mod = node.module or ""
    if node.level == 0:
        parts = mod.split(".")
        if parts[0] != "flx_ipy":
            return out
        if parts[1:2] != ["core"]:
            return [("<host>", mod)]
        if len(parts) == 2:
            return [(a.name, None) for a in node.names]
        return [(parts[2], a.name) for a in node.names]
    if node.level > 1:
        return [("<host>", "." * node.level + mod)]
    if mod:
        return [(mod.split(".")[0], a.name) for a in node.names]
    return [(a.name, None) for a in node.names]  # from . import loader


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def layer_violations(core: Path = CORE, stack: list[str] = STACK) -> list[str]:
    """Every broken rule, one line each (empty: the shape holds)."""
    mods = _modules(core)
    problems = [f"{name}.py is not in STACK: place it in the order" for name in mods
                if name != FACE and name not in stack]
    rank = {name: i for i, name in enumerate(stack)}
    for name, tree in mods.items():
        if name == FACE:
            continue
        core_aliases: set[str] = set()
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target, item in _imported(node):
                where = f"{name}.py:{node.lineno}"
                if target == "<host>":
                    problems.append(f"{where}: the core imports a host module ({item})")
                    continue
                if target == FACE or target not in mods:
                    problems.append(f"{where}: imports {target!r}, which is not a module of the stack")
                    continue
                if rank.get(target, len(stack)) >= rank.get(name, len(stack)):
                    problems.append(f"{where}: imports {target} from above (or beside) it")
                if item is not None and _is_private(item):
                    problems.append(f"{where}: takes the private name {item} from {target}")
                if item is None:
                    core_aliases.add(target)
            for alias in node.names:
                if isinstance(node, ast.ImportFrom) and node.level == 1 and not node.module:
                    core_aliases.add(alias.asname or alias.name)
        problems += _private_reads(name, tree, core_aliases)
        problems += _function_imports(name, tree)
    return problems


def _private_reads(name: str, tree: ast.Module, core_aliases: set[str]) -> list[str]:
    """``loader._lock`` (a core module's private name) or ``pm._records`` (another object's
    private field): only ``self`` and ``cls`` may be read for underscored attributes."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            v = node.value
            if isinstance(v, ast.Name) and v.id in ("self", "cls"):
                continue
            what = "module" if isinstance(v, ast.Name) and v.id in core_aliases else "object"
            out.append(f"{name}.py:{node.lineno}: reads the private {what} name {ast.unparse(node)}")
    return out


def _function_imports(name: str, tree: ast.Module) -> list[str]:
    """A core import inside a function is how a cycle hides; imports of the core belong at the
    top of the module (optional third-party dependencies may still import when used)."""
    out = []
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("flx_ipy")):
                    out.append(f"{name}.py:{node.lineno}: imports {'.' * node.level}{node.module or ''} "
                               f"inside {fn.name}()")
    return out


def host_mentions(core: Path = CORE, package: Path = PACKAGE) -> list[str]:
    """The core never names a host module, not even in a string (``importlib.import_module``)."""
    hosts = _host_modules(package)
    pattern = re.compile(r"flx_ipy[./](" + "|".join(sorted(map(re.escape, hosts))) + r")\b")
    out = []
    for p in sorted(core.glob("*.py")):
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            m = pattern.search(line)
            if m:
                out.append(f"{p.name}:{i}: names the host module {m.group(0)}")
    return out


# ------------------------------------------------------------------------------- the tests
def test_every_core_module_is_in_the_stack_and_imports_only_downward() -> None:
    assert layer_violations() == []


def test_the_core_names_no_host_module() -> None:
    assert host_mentions() == []


def test_the_stack_lists_only_modules_that_exist() -> None:
    assert sorted(STACK) == sorted(p.stem for p in CORE.glob("*.py") if p.stem != FACE)


# The checker itself, on small trees written here: each rule must catch what it names.
@pytest.mark.parametrize(("files", "expected"), [
    ({"low.py": "from .high import x\n", "high.py": ""}, "imports high from above"),
    ({"low.py": "", "high.py": "from .low import _helper\n"}, "private name _helper"),
    ({"low.py": "", "high.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .top import T\n",
      "top.py": ""}, "imports top from above"),
    ({"low.py": "", "high.py": "def f():\n    from .low import g\n"}, "inside f()"),
    ({"low.py": "", "high.py": "def f(pm):\n    return pm._records\n"}, "private object name pm._records"),
    ({"low.py": "", "high.py": "from . import low\nx = low._cache\n"}, "private module name low._cache"),
    ({"low.py": "from .. import widgets\n", "high.py": ""}, "imports a host module"),
    ({"low.py": "import flx_ipy.magics\n", "high.py": ""}, "imports a host module"),
    ({"low.py": "", "high.py": "", "stray.py": ""}, "stray.py is not in STACK"),
], ids=["upward", "private-import", "type-checking", "function-level", "private-field", "private-module-attr",
        "host-relative", "host-absolute", "unlisted"])
def test_the_checker_catches(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    for fname, text in files.items():
        (tmp_path / fname).write_text(text)
    problems = layer_violations(tmp_path, ["low", "high", "top"])
    assert any(expected in p for p in problems), problems


def test_the_checker_accepts_a_clean_stack(tmp_path: Path) -> None:
    (tmp_path / "low.py").write_text("def helper():\n    return 1\n")
    (tmp_path / "high.py").write_text("from . import low\nfrom .low import helper\n\n"
                                      "class A:\n    def f(self):\n        return self._x, low.helper()\n")
    assert layer_violations(tmp_path, ["low", "high"]) == []


def test_host_mentions_are_found(tmp_path: Path) -> None:
    core = tmp_path / "core"
    core.mkdir()
    (tmp_path / "widgets").mkdir()
    (tmp_path / "widgets" / "__init__.py").write_text("")
    (core / "manager.py").write_text('import importlib\nimportlib.import_module("flx_ipy.widgets")\n')
    assert host_mentions(core, tmp_path) == ['manager.py:2: names the host module flx_ipy.widgets']
