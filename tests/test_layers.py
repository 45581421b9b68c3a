"""The shape of ``flx_ipy/core``: one stack, imports pointing down, no private names shared.

``STACK`` is the order, bottom to top (``docs/architecture.md`` explains each layer). A new core
module must be placed in it. The checks read the source with ``ast``, so they see every import
— at module level, inside functions and under ``if TYPE_CHECKING:`` — without running anything.

A subpackage (``worker``) is one layer: its modules are named ``worker.runtime`` and so on, rank
where ``worker`` is listed unless a module of it is listed itself (``worker.main``, the worker
process's program, runs a manager and so sits above ``manager``), and may import each other;
every other rule applies to them as to any core module.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable, Iterable
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
    "serial",
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
    "worker",
    "watcher",
    "auditfile",
    "audit",
    "manager",
    "worker.main",
]
#: the package face re-exports from anywhere in the stack; nothing imports it back
FACE = "__init__"
#: documented standard-library functions whose names start with an underscore
STDLIB_PUBLIC = {"os._exit"}


def _host_modules(package: Path) -> set[str]:
    """Every module and package of ``flx_ipy`` outside the core (the layers above it)."""
    return {p.stem if p.is_file() else p.name for p in package.iterdir()
            if p.name != "core" and not p.name.startswith(("_", "."))
            and (p.suffix == ".py" or (p / "__init__.py").exists())}


def _core_files(core: Path) -> list[Path]:
    return sorted(p for p in core.rglob("*.py") if "__pycache__" not in p.parts)


def _module_name(core: Path, path: Path) -> str:
    """``manager``, ``worker.runtime``; a subpackage's ``__init__`` is the package (``worker``)."""
    parts = list(path.relative_to(core).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _modules(core: Path) -> dict[str, ast.Module]:
    return {_module_name(core, p): ast.parse(p.read_text(encoding="utf-8"), str(p)) for p in _core_files(core)}


def _packages(core: Path) -> set[str]:
    return {_module_name(core, p) for p in _core_files(core) if p.name == "__init__.py" and p.parent != core}


def _target(base: str, name: str, mods: Iterable[str]) -> tuple[str, str | None]:
    """``from <base> import <name>``: the module ``base.name`` if there is one, else ``name``
    taken from the module ``base``."""
    sub = f"{base}.{name}" if base else name
    return (sub, None) if sub in mods or not base else (base, name)


def _imported(node: ast.Import | ast.ImportFrom, importer: str = "", packages: Iterable[str] = (),
              mods: Iterable[str] = ()) -> list[tuple[str, str | None]]:
    """``(core module, imported name)`` pairs for imports of the core by the core module
    ``importer`` (``packages``: the subpackages, ``mods``: every core module, for resolving
    relative imports); ``("<host>", name)`` for an import of a module outside the core."""
    mods = set(mods)
    out: list[tuple[str, str | None]] = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            parts = alias.name.split(".")
            if parts[0] == "flx_ipy":
                out.append((".".join(parts[2:]), None) if parts[1:2] == ["core"] and len(parts) > 2
                           else ("<host>", alias.name))
        return out
    mod = node.module or ""
    if node.level == 0:
        parts = mod.split(".")
        if parts[0] != "flx_ipy":
            return out
        if parts[1:2] != ["core"]:
            return [("<host>", mod)]
        base = ".".join(parts[2:])
    else:
        # the package the importer lives in: a subpackage's __init__ is its own package
        here = importer.split(".") if importer in set(packages) else importer.split(".")[:-1]
        if node.level - 1 > len(here):
            return [("<host>", "." * node.level + mod)]
        base = ".".join(here[:len(here) - (node.level - 1)] + ([mod] if mod else []))
    return [_target(base, a.name, mods) for a in node.names]


def _layer(name: str, stack: list[str]) -> str | None:
    """The STACK entry a module ranks at: itself, else its nearest listed package."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in stack:
            return ".".join(parts[:i])
    return None


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def layer_violations(core: Path = CORE, stack: list[str] = STACK) -> list[str]:
    """Every broken rule, one line each (empty: the shape holds)."""
    mods = _modules(core)
    packages = _packages(core)
    problems = [f"{name}.py is not in STACK: place it in the order" for name in mods
                if name != FACE and _layer(name, stack) is None]
    rank = {name: i for i, name in enumerate(stack)}

    def rank_of(module: str) -> int:
        layer = _layer(module, stack)
        return rank[layer] if layer is not None else len(stack)

    for name, tree in mods.items():
        if name == FACE:
            continue
        core_aliases: set[str] = set()
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target, item in _imported(node, name, packages, mods):
                where = f"{name}.py:{node.lineno}"
                if target == "<host>":
                    problems.append(f"{where}: the core imports a host module ({item})")
                    continue
                if target == FACE or target not in mods:
                    problems.append(f"{where}: imports {target!r}, which is not a module of the stack")
                    continue
                same_layer = _layer(target, stack) == _layer(name, stack) and target != name
                if not same_layer and rank_of(target) >= rank_of(name):
                    problems.append(f"{where}: imports {target} from above (or beside) it")
                if item is not None and _is_private(item):
                    problems.append(f"{where}: takes the private name {item} from {target}")
                if item is None:
                    core_aliases.add(target)
            for alias in node.names:
                if isinstance(node, ast.ImportFrom) and node.level >= 1 and not node.module:
                    core_aliases.add(alias.asname or alias.name)
        problems += _private_reads(name, tree, core_aliases)
        problems += _function_imports(name, tree, functools.partial(_other_layers, name, packages, mods, stack))
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
            if ast.unparse(node) in STDLIB_PUBLIC:
                continue
            what = "module" if isinstance(v, ast.Name) and v.id in core_aliases else "object"
            out.append(f"{name}.py:{node.lineno}: reads the private {what} name {ast.unparse(node)}")
    return out


def _other_layers(name: str, packages: set[str], mods: dict[str, ast.Module], stack: list[str],
                  node: ast.ImportFrom) -> list[str]:
    """The targets of ``node`` (in module ``name``) outside ``name``'s layer."""
    return [t for t, _ in _imported(node, name, packages, mods)
            if t == "<host>" or _layer(t, stack) != _layer(name, stack)]


def _function_imports(name: str, tree: ast.Module,
                      other_layers: Callable[[ast.ImportFrom], list[str]] = lambda node: ["?"]) -> list[str]:
    """A core import inside a function is how a cycle hides; imports of the core belong at the
    top of the module (optional third-party dependencies may still import when used). Within a
    package layer, whose modules may import each other anyway, a lazy import hides nothing
    (the sandbox loads its ctypes layers only in the worker): ``other_layers`` says which
    targets of an import lie outside the importer's layer."""
    out = []
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("flx_ipy")) \
                        and other_layers(node):
                    out.append(f"{name}.py:{node.lineno}: imports {'.' * node.level}{node.module or ''} "
                               f"inside {fn.name}()")
    return out


def host_mentions(core: Path = CORE, package: Path = PACKAGE) -> list[str]:
    """The core never names a host module, not even in a string (``importlib.import_module``)."""
    hosts = _host_modules(package)
    pattern = re.compile(r"flx_ipy[./](" + "|".join(sorted(map(re.escape, hosts))) + r")\b")
    out = []
    for p in _core_files(core):
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            m = pattern.search(line)
            if m:
                out.append(f"{p.relative_to(core)}:{i}: names the host module {m.group(0)}")
    return out


# ------------------------------------------------------------------------------- the tests
def test_every_core_module_is_in_the_stack_and_imports_only_downward() -> None:
    assert layer_violations() == []


def test_the_core_names_no_host_module() -> None:
    assert host_mentions() == []


def test_the_stack_lists_only_modules_that_exist() -> None:
    """Every top-level module and subpackage is listed; every entry names one that exists."""
    top_packages = {p for p in _packages(CORE) if "." not in p}
    layers = {p.stem for p in CORE.glob("*.py") if p.stem != FACE} | top_packages
    assert layers <= set(STACK)
    assert set(STACK) <= set(_modules(CORE))


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
    ({"low.py": "", "high.py": "", "pkg/__init__.py": "", "pkg/a.py": "from ..high import x\n"},
     "imports high from above"),
    ({"low.py": "", "high.py": "", "pkg/__init__.py": "", "pkg/a.py": "from .b import _x\n", "pkg/b.py": ""},
     "private name _x"),
    ({"low.py": "", "high.py": "", "pkg/__init__.py": "", "pkg/a.py": "def f(rt):\n    return rt._ready\n"},
     "private object name rt._ready"),
    ({"low.py": "from .pkg import a\n", "high.py": "", "pkg/__init__.py": "", "pkg/a.py": ""},
     "imports pkg.a from above"),
    ({"low.py": "", "high.py": "", "pkg/__init__.py": "", "pkg/a.py": "def f():\n    from ..low import g\n"},
     "inside f()"),
    ({"low.py": "", "high.py": "", "other/__init__.py": "", "other/a.py": ""}, "other.py is not in STACK"),
    ({"low.py": "", "high.py": "", "pkg/__init__.py": "", "pkg/a.py": "from ... import widgets\n"},
     "imports a host module"),
], ids=["upward", "private-import", "type-checking", "function-level", "private-field", "private-module-attr",
        "host-relative", "host-absolute", "unlisted", "package-upward", "package-private-import",
        "package-private-field", "into-a-package-from-below", "package-function-level", "package-unlisted",
        "package-host-relative"])
def test_the_checker_catches(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    for fname, text in files.items():
        (tmp_path / fname).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / fname).write_text(text)
    problems = layer_violations(tmp_path, ["low", "pkg", "high", "top"])
    assert any(expected in p for p in problems), problems


def test_the_checker_accepts_a_clean_stack(tmp_path: Path) -> None:
    (tmp_path / "low.py").write_text("def helper():\n    return 1\n")
    (tmp_path / "high.py").write_text("from . import low\nfrom .low import helper\n\n"
                                      "class A:\n    def f(self):\n        return self._x, low.helper()\n")
    assert layer_violations(tmp_path, ["low", "high"]) == []


def test_the_checker_accepts_a_package_layer(tmp_path: Path) -> None:
    """A subpackage's modules import each other in any order and the layers below; a module
    of it listed on its own (``pkg.top``) ranks there and may import what is below that."""
    files = {"low.py": "def g():\n    return 1\n", "high.py": "def h():\n    return 2\n",
             "pkg/__init__.py": "", "pkg/a.py": "from ..low import g\nfrom .b import B\n",
             "pkg/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import g\nB = 1\n",
             "pkg/top.py": "from ..high import h\nfrom . import a\n"}
    for fname, text in files.items():
        (tmp_path / fname).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / fname).write_text(text)
    assert layer_violations(tmp_path, ["low", "pkg", "high", "pkg.top"]) == []


def test_host_mentions_are_found(tmp_path: Path) -> None:
    core = tmp_path / "core"
    core.mkdir()
    (tmp_path / "widgets").mkdir()
    (tmp_path / "widgets" / "__init__.py").write_text("")
    (core / "manager.py").write_text('import importlib\nimportlib.import_module("flx_ipy.widgets")\n')
    assert host_mentions(core, tmp_path) == ['manager.py:2: names the host module flx_ipy.widgets']
