"""What a plugin's source says, read with ``ast`` and never executed.

Shared by discovery (listing plugins must not run their imports) and ``validate_path``
(``%plugin validate`` checks a file before anything runs it): one reader, so both say the same
thing about the same file.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import PluginValidationError
from .types import HOOKS, PluginMetadata

FIELDS = ("name", "version", "description", "requires", "capabilities")


class NotStaticError(Exception):
    """A value in the source that only running the code could tell."""


@dataclass
class HookInfo:
    """A hook's shape as written, so a wrong signature is reported before anything runs."""

    name: str
    line: int
    is_async: bool
    is_generator: bool
    required: int  # positional parameters without defaults, self excluded
    maximum: int | None  # None: *args
    kwonly_required: tuple[str, ...]
    signature: str


@dataclass
class ClassInfo:
    name: str
    line: int
    is_plugin: bool
    has_metadata: bool = False
    metadata_line: int | None = None
    fields: dict[str, Any] | None = None  # statically read PluginMetadata(...) arguments
    not_static: str | None = None  # why ``fields`` could not be read
    hooks: dict[str, HookInfo] = field(default_factory=dict)
    path: Path | None = None


@dataclass
class SourceInfo:
    """What a module's source says, read with ``ast`` and never executed."""

    path: Path
    classes: dict[str, ClassInfo] = field(default_factory=dict)
    reexports: dict[str, str] = field(default_factory=dict)  # name -> ".sub" it comes from
    syntax_error: str | None = None
    error_line: int | None = None

    @property
    def plugin_classes(self) -> list[ClassInfo]:
        return [c for c in self.classes.values() if c.is_plugin]


def read_source(path: Path, text: str | None = None) -> SourceInfo:
    """Parse one module file; a syntax error is returned (with its line), never raised."""
    info = SourceInfo(path)
    try:
        if text is None:
            text = path.read_text(encoding="utf-8")
        tree = ast.parse(text, filename=str(path))
    except SyntaxError as e:
        info.syntax_error, info.error_line = f"{e.msg}", e.lineno
        return info
    except (OSError, UnicodeDecodeError, ValueError) as e:
        info.syntax_error = f"cannot read: {e}"
        return info
    consts: dict[str, Any] = {}
    plugin_names = {"Plugin"}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            for a in node.names:
                if a.name == "Plugin":
                    plugin_names.add(a.asname or a.name)
                if node.level == 1 and node.module:
                    info.reexports[a.asname or a.name] = "." + node.module
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            try:
                value = _static(node.value, consts)
            except NotStaticError:
                continue
            for t in targets:
                if isinstance(t, ast.Name):
                    consts[t.id] = value
        elif isinstance(node, ast.ClassDef):
            info.classes[node.name] = _read_class(node, consts, plugin_names, info.classes)
            info.classes[node.name].path = path
            info.reexports.pop(node.name, None)
    return info


def _read_class(node: ast.ClassDef, consts: Mapping[str, Any], plugin_names: set[str],
                known: Mapping[str, ClassInfo]) -> ClassInfo:
    base_names = [b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "") for b in node.bases]
    local_bases = [known[b] for b in base_names if b in known]
    is_plugin = any(b in plugin_names or b.endswith("Plugin") for b in base_names) or any(
        b.is_plugin for b in local_bases)
    ci = ClassInfo(node.name, node.lineno, is_plugin)
    for stmt in node.body:
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if any(isinstance(t, ast.Name) and t.id == "metadata" for t in targets):
                ci.has_metadata, ci.metadata_line = True, stmt.lineno
                try:
                    ci.fields, ci.not_static = metadata_call_fields(stmt.value, consts), None
                except NotStaticError as e:
                    ci.fields, ci.not_static = None, str(e)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name in HOOKS:
            ci.hooks[stmt.name] = _read_hook(stmt)
    for base in local_bases:  # inherit what a local base class defines
        if not ci.has_metadata and base.has_metadata:
            ci.has_metadata, ci.metadata_line = True, base.metadata_line
            ci.fields, ci.not_static = base.fields, base.not_static
        ci.hooks = {**base.hooks, **ci.hooks}
    return ci


def _read_hook(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> HookInfo:
    a = fn.args
    positional = [*a.posonlyargs, *a.args]
    is_static = any(getattr(d, "id", "") == "staticmethod" for d in fn.decorator_list)
    params = positional if is_static else positional[1:]
    n_defaults = min(len(a.defaults), len(params))
    kwonly = tuple(k.arg for k, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is None)
    body_nodes = [n for stmt in fn.body for n in ast.walk(stmt)
                  if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef))]
    return HookInfo(
        fn.name, fn.lineno, isinstance(fn, ast.AsyncFunctionDef),
        any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in body_nodes),
        len(params) - n_defaults, None if a.vararg else len(params), kwonly,
        f"{'async ' if isinstance(fn, ast.AsyncFunctionDef) else ''}def {fn.name}({ast.unparse(a)})",
    )


def _static(node: ast.expr, consts: Mapping[str, Any]) -> Any:
    """A literal, a module-level constant, or a list/tuple of those; anything else is not static."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in consts:
        return consts[node.id]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_static(e, consts) for e in node.elts]
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise NotStaticError(ast.unparse(node)) from None


def metadata_call_fields(node: ast.expr, consts: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(node, ast.Call) or getattr(node.func, "id", getattr(node.func, "attr", "")) \
            != "PluginMetadata":
        raise NotStaticError(f"metadata = {ast.unparse(node)} is not a PluginMetadata(...) call")
    if len(node.args) > len(FIELDS) or any(isinstance(a, ast.Starred) for a in node.args):
        raise NotStaticError("PluginMetadata(*args) cannot be read without running the code")
    values = {f: _static(a, consts) for f, a in zip(FIELDS, node.args, strict=False)}
    for kw in node.keywords:
        if kw.arg is None:
            raise NotStaticError("PluginMetadata(**kwargs) cannot be read without running the code")
        values[kw.arg] = _static(kw.value, consts)
    return values


def build_metadata(fields: Mapping[str, Any]) -> tuple[PluginMetadata | None, list[tuple[str, str]]]:
    """Statically read fields -> metadata, or every ``(field, problem)`` found."""
    unknown = [(k, f"unknown PluginMetadata field; known: {', '.join(FIELDS)}")
               for k in fields if k not in FIELDS]
    if "name" not in fields:
        unknown.append(("name", "missing: every plugin needs a name, e.g. name=\"counter\""))
    if unknown:
        return None, unknown
    try:
        return PluginMetadata(**fields), []
    except PluginValidationError as e:
        return None, list(e.problems)
    except TypeError as e:  # e.g. a list where a string belongs is caught above; this is the rest
        return None, [("metadata", str(e))]
