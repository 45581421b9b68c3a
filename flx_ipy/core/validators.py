"""Validation as a pipeline of checks, each returning every problem it finds.

A plugin author fixes a file faster when told everything that is wrong at once, with where and
how to fix it, than one error per attempt (pluggy's ``PluginValidationError`` is the model).
So checks never stop at the first problem, and the pipeline is a list that later stages
(signature verification, a capability policy) extend with ``Validator.add_check`` without
touching the manager.

Two families of checks share the vocabulary (``Problem``, ``ValidationResult``):

- on a class already imported (``validate_plugin_class``): what the manager is about to run;
- on source text never executed (``validate_path``, and discovery's ``read_source``): what
  ``%plugin validate PATH`` and listing can say without running a plugin's import side effects.

The pipeline has two stages. *Source checks* (``add_source_check``) run before a plugin's code
executes, on the bytes that are about to run (``PluginSources``): a signature check must be
there, since a class check runs after the module's top-level code already ran. *Class checks*
(``add_check``) run on the imported class.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import PluginValidationError
from .project import GROUP, is_project, project_entry_points
from .signing import collect_files
from .source import (
    FIELDS,
    ClassInfo,
    HookInfo,
    SourceInfo,
    build_metadata,
    read_source,
)
from .types import HOOKS, Plugin, PluginMetadata, metadata_problems

__all__ = [
    "ClassInfo",
    "HookInfo",
    "PluginSources",
    "Problem",
    "SourceInfo",
    "ValidationResult",
    "Validator",
    "build_metadata",
    "read_source",
    "validate_metadata",
    "validate_path",
    "validate_plugin_class",
]

#: What each hook should look like; the fix offered for a wrong signature.
_HOOK_SIGNATURES = {
    "initialize": "initialize(self, ctx: PluginContext) -> None",
    "start": "start(self) -> None",
    "stop": "stop(self) -> None",
    "health_check": "health_check(self) -> HealthStatus",
    "save_state": "save_state(self) -> PluginState",
    "restore_state": "restore_state(self, state: PluginState) -> None",
}
_FIELD_EXAMPLES = {
    "name": 'name="counter"', "version": 'version="1.0.0"', "description": 'description="counts"',
    "requires": 'requires=["clock>=1.0"]', "capabilities": 'capabilities=["timer"]',
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong: which field (``metadata.version``, ``hook start``...), why, and the fix."""

    field: str
    message: str
    fix: str = ""
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: " if self.file else ""
        return f"{where}{self.field}: {self.message}" + (f" (fix: {self.fix})" if self.fix else "")


@dataclass
class ValidationResult:
    """Every problem found in ``target`` (a class's dotted name or a path); ``ok`` if none."""

    target: str
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # worth knowing, not wrong

    @property
    def ok(self) -> bool:
        return not self.problems

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        if self.ok:
            return f"{self.target}: ok" + "".join(f"\n  note: {n}" for n in self.notes)
        n = len(self.problems)
        head = f"{self.target}: {n} problem{'s' if n != 1 else ''}"
        return "\n".join([head, *(f"  - {p}" for p in self.problems), *(f"  note: {n}" for n in self.notes)])

    def raise_if_problems(self, plugin: str | None = None) -> None:
        """Raise ``PluginValidationError`` naming the target and every problem, if there are any."""
        if self.problems:
            raise PluginValidationError(
                str(self), plugin, problems=self.problems,
                hint="Nothing was loaded; fix these and try again (`%plugin validate PATH` rechecks).",
            )


def _metadata_problem(fld: str, msg: str, prefix: str = "", file: str | None = None,
                      line: int | None = None) -> Problem:
    example = _FIELD_EXAMPLES.get(fld)
    return Problem(prefix + fld, msg, f"PluginMetadata({example}, ...)" if example else "", file, line)


def validate_metadata(md: PluginMetadata | Mapping[str, Any]) -> ValidationResult:
    """Check a metadata object or a plain mapping (e.g. read from a manifest) field by field."""
    if isinstance(md, PluginMetadata):
        values: Mapping[str, Any] = md.to_dict()
    elif isinstance(md, Mapping):
        values = md
    else:
        return ValidationResult(repr(md), [Problem("metadata", f"expected PluginMetadata or a mapping, got "
                                                   f"{type(md).__name__}", 'PluginMetadata(name="counter")')])
    name = values.get("name")
    result = ValidationResult(f"metadata of {name!r}" if isinstance(name, str) else "metadata")
    result.problems += [_metadata_problem(k, f"unknown field; known fields are {', '.join(FIELDS)}")
                        for k in values if k not in FIELDS]
    if "name" not in values:
        result.problems.append(_metadata_problem("name", "missing: every plugin needs a name"))
    result.problems += [_metadata_problem(f, msg) for f, msg in metadata_problems(
        values.get("name", ""), values.get("version", "0.0.0"), values.get("description", ""),
        values.get("requires", ()), values.get("capabilities", ()))
        if not (f == "name" and "name" not in values)]
    return result


# --------------------------------------------------------------------------- checks

Check = Callable[[type], Iterable[Problem]]


@dataclass
class PluginSources:
    """A plugin's files as they are about to run, read once (what source checks see).

    ``unit`` is the package folder or the ``.py`` file (None when the code has no source on
    disk); ``given`` holds bytes already read by the caller (a reload's new sources), keyed by
    normcased absolute path. ``files`` reads the rest lazily, so a pipeline with no source
    check reads nothing. Checks may leave what they learnt in ``findings`` (the signature
    check leaves ``findings["signature"]``).
    """

    target: str
    unit: Path | None
    plugin: str | None = None
    phase: str = "load"
    given: Mapping[str, bytes] = field(default_factory=dict)
    findings: dict[str, Any] = field(default_factory=dict)
    _files: dict[str, bytes] | None = None

    @property
    def files(self) -> dict[str, bytes]:
        """normcased absolute path -> bytes, for every file of the unit (``__pycache__`` aside)."""
        if self._files is None:
            out: dict[str, bytes] = {}
            for p in collect_files(self.unit) if self.unit is not None else []:
                key = os.path.normcase(str(p))
                data = self.given.get(key)
                if data is None:
                    try:
                        data = p.read_bytes()
                    except OSError:
                        continue
                out[key] = data
            self._files = out
        return self._files


SourceCheck = Callable[[PluginSources], Iterable[Problem]]


def _where(obj: Any) -> tuple[str | None, int | None]:
    """Where ``obj`` is defined, from code objects only: reading the file (``inspect``) would
    cost a parse of the module on every reload and race with an editor saving it."""
    code = getattr(obj, "__code__", None)
    if code is not None:
        return code.co_filename, code.co_firstlineno
    if isinstance(obj, type):
        lines = [c.co_firstlineno for v in vars(obj).values()
                 if (c := getattr(getattr(v, "__func__", v), "__code__", None)) is not None]
        mod = sys.modules.get(obj.__module__)
        return getattr(mod, "__file__", None), (min(lines) if lines else None)
    return None, None


def _hook_problem(hook: str, signature: str, *, is_async: bool, is_generator: bool, required: int,
                  maximum: int | None, kwonly_required: Iterable[str], file: str | None,
                  line: int | None) -> Problem | None:
    """The one place that decides whether a hook's shape is callable the way the manager calls it."""
    n = HOOKS[hook]
    fix = f"{'async ' if is_async else ''}def {_HOOK_SIGNATURES[hook]}"
    if is_generator:
        what = "an async generator" if is_async else "a generator"
        return Problem(f"hook {hook}", f"`{signature}` is {what} (it yields), so its body would never "
                       "run when called; hooks return a value (or are awaited)", fix, file, line)
    kwonly = list(kwonly_required)
    if required <= n and (maximum is None or n <= maximum) and not kwonly:
        return None
    if kwonly:
        why = f"requires keyword-only argument(s) {', '.join(kwonly)} that the manager never passes"
    else:
        most = "any number" if maximum is None else str(maximum)
        takes = str(required) if maximum == required else f"{required} to {most}"
        why = f"takes {takes} positional argument(s) besides self, but the manager calls it with {n}"
    return Problem(f"hook {hook}", f"`{signature}` {why}", fix, file, line)


def check_is_plugin(cls: type) -> Iterable[Problem]:
    if not issubclass(cls, Plugin):
        file, line = _where(cls)
        yield Problem("base class", f"{cls.__qualname__} does not subclass flx_ipy.Plugin",
                      f"class {cls.__name__}(Plugin): ... (from flx_ipy import Plugin)", file, line)


def check_metadata(cls: type) -> Iterable[Problem]:
    md = getattr(cls, "metadata", None)
    file, line = _where(cls)
    if md is None:
        yield Problem("metadata", f"{cls.__qualname__} has no metadata",
                      'metadata = PluginMetadata(name="counter", version="1.0.0") in the class body',
                      file, line)
    elif isinstance(md, Mapping):
        yield Problem("metadata", "is a plain mapping, not PluginMetadata",
                      "metadata = PluginMetadata(**{...})", file, line)
        yield from (Problem(f"metadata.{p.field}", p.message, p.fix, file, line)
                    for p in validate_metadata(md).problems)
    elif not isinstance(md, PluginMetadata):
        yield Problem("metadata", f"is a {type(md).__name__}, not PluginMetadata",
                      'metadata = PluginMetadata(name="counter", version="1.0.0")', file, line)
    else:  # created validated, but re-check: it may have been built around __post_init__
        yield from (_metadata_problem(f, msg, "metadata.", file, line) for f, msg in metadata_problems(
            md.name, md.version, md.description, md.requires, md.capabilities))


def check_hooks(cls: type) -> Iterable[Problem]:
    for hook in HOOKS:
        raw = inspect.getattr_static(cls, hook, None)
        if raw is None:
            continue
        value = getattr(cls, hook, None)
        file, line = _where(value)
        if not callable(value):
            yield Problem(f"hook {hook}", f"is a {type(value).__name__}, not a method",
                          f"def {_HOOK_SIGNATURES[hook]}", file, line)
            continue
        try:
            sig = inspect.signature(value)
        except (TypeError, ValueError):
            continue  # a builtin or C callable: nothing to check statically
        params = list(sig.parameters.values())
        if inspect.isfunction(raw) and params:  # unbound: drop self
            params = params[1:]
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        fn = inspect.unwrap(value)
        problem = _hook_problem(
            hook, f"{hook}{sig}",
            is_async=inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn),
            is_generator=inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn),
            required=sum(p.default is p.empty for p in positional),
            maximum=None if any(p.kind is p.VAR_POSITIONAL for p in params) else len(positional),
            kwonly_required=[p.name for p in params if p.kind is p.KEYWORD_ONLY and p.default is p.empty],
            file=file, line=line)
        if problem:
            yield problem


def _state_pair_problems(has_save: bool, has_restore: bool, name: str, file: str | None,
                         line: int | None) -> Iterable[Problem]:
    if has_save and not has_restore:
        yield Problem("hook restore_state", f"{name} defines save_state but not restore_state, so the "
                      "saved state would be thrown away on reload",
                      f"def {_HOOK_SIGNATURES['restore_state']}", file, line)
    if has_restore and not has_save:
        yield Problem("hook save_state", f"{name} defines restore_state but not save_state, so it "
                      "would never receive a state", f"def {_HOOK_SIGNATURES['save_state']}", file, line)


def check_state_pair(cls: type) -> Iterable[Problem]:
    file, line = _where(cls)
    yield from _state_pair_problems(getattr(cls, "save_state", None) is not None,
                                    getattr(cls, "restore_state", None) is not None,
                                    cls.__qualname__, file, line)


class Validator:
    """An ordered pipeline of checks over a plugin class; every check runs, every problem is kept.

    A check is any callable ``cls -> Iterable[Problem]``. One that raises is itself reported as a
    problem (naming the check), so a buggy extra check cannot hide the others' findings.
    """

    def __init__(self, checks: Iterable[Check] = (), source_checks: Iterable[SourceCheck] = ()) -> None:
        self.checks: list[Check] = list(checks)
        self.source_checks: list[SourceCheck] = list(source_checks)

    @classmethod
    def default(cls) -> Validator:
        return cls([check_is_plugin, check_metadata, check_hooks, check_state_pair])

    def add_check(self, fn: Check) -> Check:
        """Append a check; returns it, so it also works as a decorator."""
        self.checks.append(fn)
        return fn

    def add_source_check(self, fn: SourceCheck) -> SourceCheck:
        """Append a check that runs before the plugin's code does, on ``PluginSources``."""
        self.source_checks.append(fn)
        return fn

    def remove_source_check(self, fn: SourceCheck) -> None:
        if fn in self.source_checks:
            self.source_checks.remove(fn)

    def validate_sources(self, src: PluginSources) -> ValidationResult:
        return _run_checks(self.source_checks, src, ValidationResult(str(src.unit or src.target)))

    def validate(self, cls: Any) -> ValidationResult:
        if not isinstance(cls, type):
            return ValidationResult(repr(cls), [Problem(
                "target", f"{cls!r} is a {type(cls).__name__}, not a class",
                "point at the plugin class itself, e.g. 'module:Counter'")])
        return _run_checks(self.checks, cls, ValidationResult(f"{cls.__module__}.{cls.__qualname__}"))


def _run_checks(checks: Iterable[Callable[[Any], Iterable[Problem]]], subject: Any,
                result: ValidationResult) -> ValidationResult:
    """Every check's problems, in order; a check that raises is a problem of its own, so one
    broken check never hides what the others found."""
    for check in checks:
        try:
            result.problems.extend(check(subject))
        except Exception as e:
            result.problems.append(Problem(
                f"check {getattr(check, '__name__', check)!s}", f"the check itself raised {e!r}",
                "this is a bug in the check, not necessarily in the plugin"))
    return result


def validate_plugin_class(cls: Any) -> ValidationResult:
    """Everything wrong with ``cls`` as a plugin, by the default pipeline."""
    return Validator.default().validate(cls)


# --------------------------------------------------------------------------- static validation

_NO_PLUGIN_FIX = ('define `class MyPlugin(Plugin):` with `metadata = PluginMetadata(name="my_plugin", '
                  'version="1.0.0")` (from flx_ipy import Plugin, PluginMetadata)')


def validate_path(path: str | Path) -> ValidationResult:
    """Check a ``.py`` file, a package folder, or a folder of plugins without importing anything."""
    p = Path(path).expanduser().resolve()
    result = ValidationResult(str(p))
    if not p.exists():
        result.problems.append(Problem("path", f"{p} does not exist", "check the path (typo? relative to "
                                                                          "the notebook's folder?)"))
        return result
    if is_project(p):
        return _validate_project(p)
    if p.is_file():
        _validate_module(p, result, [p])
    elif (p / "__init__.py").is_file():
        files = sorted(p.rglob("*.py"))
        if not _validate_module(p, result, files, quiet=True):
            # a package shipping plugins from its submodules (entry points name them one by one)
            in_modules = sum(_validate_module(f, result, [f], quiet=True) for f in files if f.name != "__init__.py")
            if not in_modules:
                result.problems.append(Problem("plugin", f"no Plugin subclass found in {p}", _NO_PLUGIN_FIX))
        result.problems = list(dict.fromkeys(result.problems))  # a file read twice reports once
    else:  # a folder of plugins: everything discovery would look at
        entries = sorted(e for e in p.iterdir() if not e.name.startswith((".", "__")) and (
            e.suffix == ".py" or (e / "__init__.py").is_file()))
        found = [_validate_module(e, result, sorted(e.rglob("*.py")) if e.is_dir() else [e], quiet=True)
                 for e in entries]
        if not any(found):
            result.problems.append(Problem("plugin", f"no Plugin subclass found in {p}", _NO_PLUGIN_FIX))
    return result


def _validate_module(entry: Path, result: ValidationResult, files: list[Path], quiet: bool = False) -> int:
    """Add the problems of one module or package to ``result``; returns how many plugins it defines."""
    infos = {}
    for f in files:
        info = read_source(f)
        infos[f] = info
        if info.syntax_error:
            result.problems.append(Problem("syntax", info.syntax_error, "fix the syntax error",
                                           str(f), info.error_line))
    main = infos.get(entry / "__init__.py" if entry.is_dir() else entry)
    if main is None or main.syntax_error:
        return 0
    classes = list(main.plugin_classes)
    for name, sub in main.reexports.items():  # a package re-exporting its plugin from a submodule
        base = entry.joinpath(*sub[1:].split("."))
        for cand in (base.with_suffix(".py"), base / "__init__.py"):
            ci = infos[cand].classes.get(name) if cand in infos else None
            if ci is not None and ci.is_plugin:
                classes.append(ci)
    plugins = [c for c in classes if c.has_metadata]
    if not plugins and not quiet:  # without a plugin to blame, say what is missing where
        result.problems += [Problem("metadata", f"{c.name} subclasses Plugin but has no metadata",
                                    _NO_PLUGIN_FIX, str(c.path), c.line) for c in classes] or [
            Problem("plugin", f"no Plugin subclass found in {entry}", _NO_PLUGIN_FIX)]
    for ci in plugins:
        file = str(ci.path)
        if ci.fields is None:
            result.notes.append(f"{ci.name}.metadata is not statically readable ({ci.not_static}); it is "
                                "checked when the plugin is loaded")
        else:
            _md, problems = build_metadata(ci.fields)
            result.problems += [_metadata_problem(f, msg, "metadata.", file, ci.metadata_line)
                                for f, msg in problems]
        for h in ci.hooks.values():
            problem = _hook_problem(h.name, h.signature, is_async=h.is_async, is_generator=h.is_generator,
                                    required=h.required, maximum=h.maximum,
                                    kwonly_required=h.kwonly_required, file=file, line=h.line)
            if problem:
                result.problems.append(problem)
        result.problems += _state_pair_problems("save_state" in ci.hooks, "restore_state" in ci.hooks,
                                                ci.name, file, ci.line)
    return len(plugins)


def _validate_project(root: Path) -> ValidationResult:
    """A project folder: each ``flx_ipy.plugins`` entry point followed to its module, which is
    validated statically and must define the class with ``metadata.name`` = the entry point's."""
    result = ValidationResult(str(root))
    pyproject = str(root / "pyproject.toml")
    try:
        eps = project_entry_points(root)
    except ValueError as e:
        result.problems.append(Problem("pyproject.toml", f"cannot read: {e}", "fix the TOML syntax", pyproject))
        return result
    if not eps:
        result.problems.append(Problem(
            "entry points", f'no [project.entry-points."{GROUP}"] table',
            f'add `[project.entry-points."{GROUP}"]` with `name = "module:ClassName"` per plugin', pyproject))
        return result
    for ep in eps:
        where = f'entry point {ep.name} = "{ep.value}"'
        if not ep.module or not ep.class_name.isidentifier():
            result.problems.append(Problem(where, "must be `module:ClassName`", f'{ep.name} = "{ep.module}:MyPlugin"',
                                           pyproject))
            continue
        if ep.file is None:
            result.problems.append(Problem(where, f"module {ep.module!r} not found under {root}/src or {root}",
                                           "check the module path (dots, not slashes)", pyproject))
            continue
        sub = validate_path(ep.file)
        result.problems += sub.problems
        result.notes += sub.notes
        ci = read_source(ep.file).classes.get(ep.class_name)
        if ci is None or not ci.is_plugin:
            result.problems.append(Problem(where, f"{ep.file.name} defines no Plugin subclass {ep.class_name!r}",
                                           f"class {ep.class_name}(Plugin): ...", str(ep.file)))
            continue
        declared = (ci.fields or {}).get("name")
        if isinstance(declared, str) and declared != ep.name:
            result.problems.append(Problem(where, f"the entry point's name differs from metadata.name {declared!r}",
                                           f'rename one of them: {declared} = "{ep.value}"', str(ep.file),
                                           ci.metadata_line))
    result.problems = list(dict.fromkeys(result.problems))
    return result
