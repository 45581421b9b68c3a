"""Where plugins come from, listed without importing a single one of them.

Listing must be safe and cheap: a broken plugin, or one whose import is slow or has side
effects, must not stop the others from being listed, and ``%plugin list`` runs often. So
discovery reads source text and never executes it:

- Entry points (group ``flx_ipy.plugins``, value ``module:Class``) are read straight from the
  ``*.dist-info``/``*.egg-info`` folders on ``sys.path`` — only ``entry_points.txt`` files, and
  only the group's section — instead of through ``importlib.metadata``, which builds objects for
  every distribution and every entry point of every group. The plugin's module file is located
  on disk (no import of it or of its parent packages) and its ``metadata = PluginMetadata(...)``
  is read from the text.
- Plugin folders: each ``*.py`` module and package directly inside is parsed with ``ast``.

A scan is cached under a key of one ``os.stat`` per ``sys.path`` entry, plugin folder and plugin
source file, so a package installed into the running process (a new ``*.dist-info`` changes its
directory) or an edited plugin is noticed on the next call, and an unchanged world costs only
those stats. Timestamps can be coarser than the interval between two changes, so a scan that
saw a file modified just before it started is not trusted ("racy git") and the next call scans
again.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import re
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

# Metadata validation needs these on every scan; importing them here keeps ~2 ms of imports
# out of the first scan (they are imported lazily by types.py for everyone else).
import packaging.specifiers
import packaging.version  # noqa: F401

from . import loader
from .entrypoints import ENTRY_POINT_RE as _EP_RE
from .entrypoints import EntryPoint as _EntryPoint
from .entrypoints import entry_points as _entry_points
from .entrypoints import module_file as _module_file
from .errors import PluginValidationError
from .source import FIELDS as _FIELDS
from .source import NotStaticError, build_metadata, metadata_call_fields, read_source
from .types import PluginMetadata

__all__ = ["DEFAULT_GROUP", "Candidate", "Discovery"]

DEFAULT_GROUP = "flx_ipy.plugins"


@dataclass(frozen=True)
class Candidate:
    """One plugin found by discovery: its metadata, or the error that names its source.

    ``target`` is what ``PluginManager.load`` accepts (``module:Class`` for entry points,
    ``/abs/file.py:Class`` or ``/abs/pkgdir:Class`` for folders). ``note`` says when the metadata
    shown is a stand-in because the real one could not be read without importing.
    """

    name: str | None
    metadata: PluginMetadata | None
    target: str
    source: str
    kind: Literal["entry_point", "path"]
    path: Path | None = None
    class_name: str | None = None
    error: str | None = None
    note: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.metadata is not None


# Fast path for entry points: find ``class X`` and its ``metadata = PluginMetadata(`` by text and
# parse only that call. A full ``ast.parse`` of each plugin module would dominate the first call.
_META_RE = re.compile(r"^[ \t]+metadata[ \t]*(?::[^=\n]*)?=[ \t]*((?:\w+\.)*PluginMetadata)[ \t]*\(", re.M)


_TOP_LEVEL_RE = re.compile(r"\n[A-Za-z_@]")


def _fast_fields(text: str, cls: str) -> dict[str, Any] | None:
    """The class's metadata fields from text alone, or None to fall back to a full parse."""
    body = _class_start(text, cls)
    if body < 0:
        return None
    m = _META_RE.search(text, body)
    if not m or _TOP_LEVEL_RE.search(text, body, m.start()):
        return None  # not in this class's body (or not obviously so)
    simple = _simple_call(text, m.end())
    if simple is not None:
        return simple
    for end in _call_ends(text, m.end() - 1):
        try:
            call = ast.parse(text[m.start(1):end], mode="eval").body
        except SyntaxError:
            continue  # a parenthesis inside a string or comment: try the next one
        try:
            return metadata_call_fields(call, {})
        except NotStaticError:
            return None
    return None


_STR = r"\"[^\"\\\n]*\"|'[^'\\\n]*'"  # a plain string literal without escapes
_SEQ = rf"[\[(]\s*(?:(?:{_STR})\s*,\s*)*(?:(?:{_STR})\s*)?[\])]"  # a list/tuple of those
_ARG_RE = re.compile(rf"\s*(?:(\w+)\s*=\s*)?({_STR}|{_SEQ})\s*([,)])")
_STR_RE = re.compile(_STR)
_CLOSE_RE = re.compile(r"\s*\)")


def _simple_call(text: str, pos: int) -> dict[str, Any] | None:
    """Arguments of the common all-literal ``PluginMetadata(name="x", requires=["y"])`` by regex.

    A few microseconds instead of an ``ast.parse``; anything unusual (comments, escapes,
    constants) returns None and the parser decides.
    """
    values: dict[str, Any] = {}
    n_positional = 0
    while True:
        m = _ARG_RE.match(text, pos)
        if m is None:  # done after a trailing comma, or something only the parser can read
            return values if _CLOSE_RE.match(text, pos) else None
        key, raw, sep = m.groups()
        if raw[0] in "[(":
            if (raw[0], raw[-1]) not in (("[", "]"), ("(", ")")):
                return None
            value: Any = [s[1:-1] for s in _STR_RE.findall(raw)]
        else:
            value = raw[1:-1]
        if key is None:
            if values or n_positional >= len(_FIELDS):
                return None
            key, n_positional = _FIELDS[n_positional], n_positional + 1
        values[key] = value
        pos = m.end()
        if sep == ")":
            return values


def _class_start(text: str, cls: str) -> int:
    """Index just past ``class <cls>`` at the start of a line (str.find: no regex per class)."""
    needle = "class " + cls
    i = text.find(needle)
    while i >= 0:
        j = i + len(needle)
        if (i == 0 or text[i - 1] == "\n") and j < len(text) and text[j] in "(: \t":
            return j
        i = text.find(needle, j)
    return -1


def _call_ends(text: str, i: int, tries: int = 8) -> Iterator[int]:
    """Positions just past each ``)`` at which the parentheses opened at ``text[i]`` balance.

    Counting ignores strings and comments; the caller's parse rejects a wrong guess, and after
    ``tries`` guesses the full parse takes over.
    """
    j = i
    while tries > 0:
        j = text.find(")", j) + 1
        if j == 0:
            return
        seg = text[i:j]
        if seg.count("(") <= seg.count(")"):
            tries -= 1
            yield j


def _entry_point_candidate(ep: _EntryPoint, paths: list[str], read: set[str]) -> Candidate:
    source = f"entry point {ep.name!r} of distribution {ep.dist} {ep.version}"
    m = _EP_RE.match(ep.value)
    if not m or not m.group("attr"):
        return Candidate(ep.name, None, ep.value, source, "entry_point", error=(
            f"{source}: {ep.value!r} is not 'module:ClassName'; fix the entry point in the "
            "distribution's pyproject.toml and reinstall it"))
    module, cls = m.group("module"), m.group("attr")
    target = f"{module}:{cls}"
    file = _module_file(module, ep.root, paths)
    path = Path(file) if file else None
    why = f"its module {module} was not found on sys.path"
    if file is not None:
        read.add(file)
        try:
            with open(file, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            text, why = "", f"{file} could not be read ({e})"
        fields = _fast_fields(text, cls) if text else None
        if fields is None and text:
            info = read_source(Path(file), text)
            ci = info.classes.get(cls)
            if info.syntax_error:
                return Candidate(ep.name, None, target, source, "entry_point", path, cls,
                                 f"{source}: syntax error at {file}:{info.error_line}: {info.syntax_error}; "
                                 f"fix the file and discover again")
            if ci is None:
                why = f"class {cls} is not defined in {file}"
            elif ci.fields is None:
                why = f"{cls}.metadata is not statically readable ({ci.not_static or 'missing'})"
            fields = ci.fields if ci else None
        if fields is not None:
            return _with_metadata(ep.name, target, source, "entry_point", path, cls, fields)
    # Not readable without importing: show the entry point's name and the distribution's version.
    try:
        md = PluginMetadata(name=ep.name, version=ep.version)
    except PluginValidationError as e:
        return Candidate(ep.name, None, target, source, "entry_point", path, cls,
                         f"{source}: {why}, and the entry point name is not a plugin name: {e}")
    return Candidate(ep.name, md, target, source, "entry_point", path, cls,
                     note=f"{why}; listed with the entry point's name and the distribution's version, "
                          "the real metadata is read when it is loaded")


def _with_metadata(name: str | None, target: str, source: str, kind: Literal["entry_point", "path"],
                   path: Path | None, cls: str, fields: Mapping[str, Any]) -> Candidate:
    md, problems = build_metadata(fields)
    if md is not None:
        return Candidate(md.name, md, target, source, kind, path, cls)
    listed = "; ".join(f"{f}: {msg}" for f, msg in problems)
    named = fields.get("name")
    return Candidate(named if isinstance(named, str) else name, None, target, source, kind, path, cls,
                     f"{source}: invalid metadata of {cls}: {listed}")


# --------------------------------------------------------------------------- folders


def _path_candidates(entry: Path, read: set[str]) -> list[Candidate]:
    """Candidates of one module file or package folder found directly in a plugin folder."""
    is_pkg = entry.is_dir()
    file = entry / "__init__.py" if is_pkg else entry
    read.add(str(file))
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return [Candidate(None, None, str(entry), str(entry), "path", file,
                          error=f"{file}: cannot read: {e}")]
    if "Plugin" not in text and not (is_pkg and "import" in text):
        return []  # cannot define a plugin: skip the parse
    info = read_source(file, text)
    if info.syntax_error:
        return [Candidate(None, None, str(entry), str(file), "path", file, None,
                          f"{file}:{info.error_line}: syntax error: {info.syntax_error}; "
                          "fix the file and discover again")]
    classes = list(info.plugin_classes)
    if is_pkg:  # a package may define its plugin in a submodule and re-export it
        for name, sub in info.reexports.items():
            sub_base = entry.joinpath(*sub[1:].split("."))
            sub_file = next((p for p in (sub_base.with_suffix(".py"), sub_base / "__init__.py")
                             if p.is_file()), None)
            if sub_file is None:
                continue
            read.add(str(sub_file))
            sub_info = read_source(sub_file)
            ci = sub_info.classes.get(name)
            if sub_info.syntax_error:
                return [Candidate(None, None, str(entry), str(sub_file), "path", sub_file, None,
                                  f"{sub_file}:{sub_info.error_line}: syntax error: "
                                  f"{sub_info.syntax_error}; fix the file and discover again")]
            if ci is not None and ci.is_plugin:
                classes.append(dataclasses.replace(ci, name=name))
    out = []
    for ci in classes:
        if not ci.has_metadata:
            continue  # an abstract base: plugins are classes with metadata
        where = f"{ci.path}:{ci.metadata_line}"
        target = f"{entry}:{ci.name}"
        if ci.fields is None:
            out.append(_metadata_by_import(entry, ci.name, target, ci.path, f"{where} ({ci.not_static})"))
        else:
            out.append(_with_metadata(None, target, target, "path", ci.path, ci.name, ci.fields))
    return out


def _metadata_by_import(entry: Path, cls: str, target: str, path: Path | None, where: str) -> Candidate:
    """The last resort, for metadata only running the code can tell (``version=get_version()``):
    import the module exactly as ``load`` would — so a later load reuses that import — and read
    the class's metadata. Statically readable plugins are never imported to be listed."""

    try:
        module, _ = loader.import_path(entry)
        md = getattr(module, cls).metadata
        if not isinstance(md, PluginMetadata):
            raise TypeError(f"{cls}.metadata is a {type(md).__name__}, not PluginMetadata")
    except Exception as e:
        return Candidate(None, None, target, target, "path", path, cls,
                         f"{where}: {cls}.metadata is not statically readable, and importing the module "
                         f"to read it failed: {type(e).__name__}: {e}; fix that, or `%plugin load {target}`")
    return Candidate(md.name, md, target, target, "path", path, cls,
                     note=f"{where}: metadata is not statically readable, so the module was imported to list it")


# --------------------------------------------------------------------------- the scanner

_Stat = tuple[int, int, int, int] | None


def _stat(path: str) -> _Stat:
    try:
        st = os.stat(path or ".")
    except OSError:
        return None
    # nlink counts subdirectories: a new *.dist-info shows even within one timestamp tick.
    return (st.st_mtime_ns, st.st_size, st.st_nlink, st.st_ino)


class Discovery:
    """Lists plugin candidates from entry points and plugin folders, cached until they change.

    ``scan()`` never raises because of one plugin: a broken one becomes a candidate whose
    ``error`` names its source, and the others are listed. Folders come before entry points,
    so a folder given explicitly wins a name clash (the later one is reported as the error).
    """

    def __init__(self, plugin_dirs: Iterable[str | os.PathLike[str]] = (), group: str = DEFAULT_GROUP,
                 entry_points: bool = True) -> None:
        self.group = group
        self.entry_points = entry_points
        self._dirs: list[Path] = []
        self._lock = threading.RLock()
        self._key: tuple[Any, ...] | None = None
        self._trusted = False
        self._files: list[str] = []
        self._result: list[Candidate] = []
        self.scan_count = 0  # full scans done (a cached answer does not count); for tests/benchmarks
        self.add_dirs(*plugin_dirs)

    @property
    def plugin_dirs(self) -> tuple[Path, ...]:
        return tuple(self._dirs)

    def add_dirs(self, *dirs: str | os.PathLike[str]) -> None:
        """Add plugin folders (idempotent: a folder already known is not added twice)."""
        with self._lock:
            for d in dirs:
                p = Path(d).expanduser().resolve()
                if p not in self._dirs:
                    self._dirs.append(p)
                    self._key = None

    def scan(self, rescan: bool = False) -> list[Candidate]:
        """Every candidate, in a stable order; cached unless something on disk changed."""
        with self._lock:
            key = self._cache_key(self._files)
            if rescan or not self._trusted or key != self._key:
                self._scan_now()
            return list(self._result)

    def find(self, name: str) -> Candidate | None:
        """The candidate called ``name`` (an ok one first), or None."""
        found = [c for c in self.scan() if c.name == name]
        return next((c for c in found if c.ok), found[0] if found else None)

    def _cache_key(self, files: Iterable[str]) -> tuple[Any, ...]:
        paths = tuple(sys.path) if self.entry_points else ()
        cwd = os.getcwd() if "" in paths else ""
        return (paths, cwd, [_stat(p) for p in paths], [_stat(str(d)) for d in self._dirs],
                [_stat(f) for f in files])

    def _scan_now(self) -> None:
        started = time.time_ns()
        read: set[str] = set()
        found: list[Candidate] = []
        for d in self._dirs:
            found.extend(self._scan_dir(d, read))
        if self.entry_points:
            paths = list(sys.path)
            try:
                eps = list(_entry_points(paths, self.group))
            except Exception as e:  # never let one odd site dir stop discovery
                eps = []
                found.append(Candidate(None, None, "", f"entry points of group {self.group!r}",
                                       "entry_point", error=f"could not read entry points: {e!r}"))
            for ep in eps:
                try:
                    found.append(_entry_point_candidate(ep, paths, read))
                except Exception as e:
                    found.append(Candidate(ep.name, None, ep.value, f"entry point {ep.name!r} of "
                                           f"distribution {ep.dist}", "entry_point",
                                           error=f"could not read entry point {ep.name!r}: {e!r}"))
        self._result = _mark_duplicates(found)
        self._files = sorted(read)
        self._key = self._cache_key(self._files)
        self._trusted = not _racy(self._key, started)
        self.scan_count += 1

    def _scan_dir(self, d: Path, read: set[str]) -> list[Candidate]:
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as e:
            return [Candidate(None, None, str(d), str(d), "path", d,
                              error=f"plugin folder {d} cannot be read: {e.strerror or e}")]
        out: list[Candidate] = []
        for entry in entries:
            p = Path(entry.path)
            try:
                if entry.name.startswith((".", "__")):
                    continue
                if entry.name.endswith(".py") and entry.is_file():
                    out.extend(_path_candidates(p, read))
                elif entry.is_dir() and (p / "__init__.py").is_file():
                    out.extend(_path_candidates(p, read))
            except Exception as exc:
                out.append(Candidate(None, None, str(p), str(p), "path", p,
                                     error=f"{p}: could not be read: {exc!r}"))
        return out


def _racy(key: tuple[Any, ...], started_ns: int) -> bool:
    """True if something was modified so close to the scan that a later change may look the same."""
    mtimes = [s[0] for group in key[2:] for s in group if s is not None]
    coarse = bool(mtimes) and all(m % 1_000_000_000 == 0 for m in mtimes)
    window = 2_000_000_000 if coarse else 50_000_000
    return any(m >= started_ns - window for m in mtimes)


def _mark_duplicates(found: list[Candidate]) -> list[Candidate]:
    """Keep every candidate, but a later one with a taken name becomes an error naming both."""
    first: dict[str, Candidate] = {}
    out: list[Candidate] = []
    for c in found:
        if c.name is None:
            out.append(c)
            continue
        prev = first.get(c.name)
        if prev is None:
            first[c.name] = c
        elif c.path is not None and (prev.path, prev.class_name) == (c.path, c.class_name):
            continue  # one class reached twice (an installed folder also given as a plugin folder)
        elif c.error is None:
            c = dataclasses.replace(c, error=(
                f"duplicate plugin name {c.name!r}: {c.source} and {prev.source} both define it; "
                f"the first one ({prev.target}) is used. Rename one, or remove one from the plugin "
                "folders / uninstall one"))
        out.append(c)
    return out
