"""Turn a load target into imported code, compiled from the bytes we read.

Two decisions live here:

* **No stale bytecode.** A ``.pyc`` is validated by whole-second mtime and size, so two
  same-size saves within a second run the old code under plain ``importlib``. Our loader never
  reads or writes bytecode for plugin files: it compiles the source it just read and remembers
  that source's hash in ``files`` (the reload uses it to ignore saves that change nothing).
* **No collisions.** A single-file plugin is imported under a name unique to its path
  (``flx_ipy_plugins.plugin_3fa2c1d0``), so two ``plugin.py`` in different folders coexist.
  A package folder keeps its real name (its modules import each other by it); a second folder
  with the same package name is refused with both paths named.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import os
import sys
import threading
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import PluginLoadError, PluginNotFoundError
from .files import forget, norm, record_run
from .types import Plugin

ALIAS_ROOT = "flx_ipy_plugins"

_lock = threading.RLock()
#: realpath (normcased) -> the bytes a signature check verified: imports run these, not disk
pinned: dict[str, bytes] = {}
#: unit (folder or file, normcased realpath) -> its pinned keys; ``strict`` units import nothing else
_pins_by_unit: dict[str, set[str]] = {}
_strict_units: set[str] = set()


def _real(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


def pin(unit: str | os.PathLike[str], files: dict[str, bytes], *, strict: bool) -> None:
    """Make imports of ``unit``'s ``.py`` files execute exactly ``files`` (the verified bytes).

    ``strict`` (policy ``require``): a module file under the unit that was not verified is
    refused at import, so a file added after the check cannot run either."""
    u = _real(os.fspath(unit))
    unpin(u)
    keys = set()
    for path, data in files.items():
        if path.endswith(".py"):
            k = _real(path)
            pinned[k] = data
            keys.add(k)
    _pins_by_unit[u] = keys
    if strict:
        _strict_units.add(u)


def pins_of(unit: str | os.PathLike[str]) -> tuple[dict[str, bytes], bool]:
    """What ``unit`` has pinned now (to put back with ``pin`` when a reload rolls back)."""
    u = _real(os.fspath(unit))
    return {k: pinned[k] for k in _pins_by_unit.get(u, ()) if k in pinned}, u in _strict_units


def unpin(unit: str | os.PathLike[str] | None = None) -> None:
    """Forget the pins of ``unit`` (all pins when None): imports read the disk again."""
    if unit is None:
        pinned.clear()
        _pins_by_unit.clear()
        _strict_units.clear()
        return
    u = _real(os.fspath(unit))
    for k in _pins_by_unit.pop(u, ()):
        pinned.pop(k, None)
    _strict_units.discard(u)


def _pinned_bytes(path: str) -> bytes | None:
    k = _real(path)
    data = pinned.get(k)
    if data is None and _strict_units:
        for u in _strict_units:
            if k == u or k.startswith(u + os.sep):
                raise PluginLoadError(f"{path} was not part of the plugin when its signature was checked; "
                                      "it is not executed under signature policy 'require'",
                                      hint="re-sign the plugin (`flx-ipy sign PATH`) and load it again")
    return data
#: module file path (``norm``) -> bytes to import instead of the file's (once): an isolated
#: plugin's new worker, after a crash, runs the last good version even if a broken save is on disk
overrides: dict[str, bytes] = {}


class FreshSourceLoader(importlib.machinery.SourceFileLoader):
    """A source loader that never trusts bytecode: ``path_stats`` failing makes
    ``SourceLoader.get_code`` skip the cache and compile the bytes it read."""

    def path_stats(self, path: str) -> Any:
        raise OSError("flx_ipy compiles plugin sources fresh")

    def get_data(self, path: str) -> bytes:
        key = norm(path)
        data = overrides.pop(key, None) if overrides else None
        if data is None and (pinned or _strict_units):
            data = _pinned_bytes(path)
        if data is None:
            data = super().get_data(path)
        if path.endswith(".py"):
            record_run(key, data)
        return data


class _PluginFinder(importlib.abc.MetaPathFinder):
    """Finds plugin modules by our registry: aliases for files, real names for package folders."""

    def __init__(self) -> None:
        self.files: dict[str, str] = {}  # module name -> file path
        self.packages: dict[str, str] = {}  # top-level package name -> folder

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname == ALIAS_ROOT:
            spec = importlib.machinery.ModuleSpec(fullname, None, is_package=True)
            spec.submodule_search_locations = []
            return spec
        file = self.files.get(fullname)
        if file is not None:
            return importlib.util.spec_from_file_location(fullname, file, loader=FreshSourceLoader(fullname, file))
        top, _, rest = fullname.partition(".")
        root = self.packages.get(top)
        if root is None:
            return None
        base = Path(root).joinpath(*rest.split(".")) if rest else Path(root)
        init = base / "__init__.py"
        if init.is_file():
            return importlib.util.spec_from_file_location(
                fullname, init, loader=FreshSourceLoader(fullname, str(init)),
                submodule_search_locations=[str(base)])
        mod = base.with_suffix(".py")
        if mod.is_file():
            return importlib.util.spec_from_file_location(fullname, mod, loader=FreshSourceLoader(fullname, str(mod)))
        return None


finder = _PluginFinder()


def install_finder() -> None:
    if finder not in sys.meta_path:
        sys.meta_path.insert(0, finder)


@dataclass
class LoadedCode:
    """What a target resolved to: the module the plugin class lives in, and the class."""

    target: str
    module: types.ModuleType
    cls: type[Plugin]
    source: str  # file path, or module name when there is no file
    root: str | None = None  # folder whose files belong to this plugin (package dir or the file's)
    extra: dict[str, Any] = field(default_factory=dict)


def alias_for(path: Path) -> str:
    stem = "".join(c if c.isalnum() or c == "_" else "_" for c in path.stem)
    return f"{ALIAS_ROOT}.{stem}_{hashlib.blake2b(str(path).encode(), digest_size=4).hexdigest()}"


def split_target(target: str) -> tuple[str, str | None]:
    """``"a/b.py:Cls"`` -> ``("a/b.py", "Cls")``; a Windows drive colon is not a separator."""
    head, sep, tail = target.rpartition(":")
    if sep and tail.isidentifier() and head and not (len(head) == 1 and head.isalpha()):
        return head, tail
    return target, None


def import_path(path: Path) -> tuple[types.ModuleType, str]:
    """Import a ``.py`` file (under a unique alias) or a package folder (under its own name)."""
    path = path.resolve()
    install_finder()
    with _lock:
        if path.is_dir():
            if not (path / "__init__.py").is_file():
                raise PluginLoadError(f"{path} is a folder but not a package (no __init__.py)",
                                      hint="point at the package folder, or at a .py file")
            name = path.name
            known = finder.packages.get(name)
            existing = sys.modules.get(name)
            existing_file = getattr(existing, "__file__", None) if existing else None
            foreign = bool(existing_file) and not Path(str(existing_file)).resolve().is_relative_to(path)
            if (known and known != str(path)) or foreign:
                other = known or existing_file
                raise PluginLoadError(
                    f"cannot load package {name!r} from {path}: a package of that name is already "
                    f"imported from {other}", hint="rename one of the two packages")
            finder.packages[name] = str(path)
        else:
            if path.suffix != ".py":
                raise PluginLoadError(f"{path} is not a .py file or a package folder")
            name = alias_for(path)
            finder.files[name] = str(path)
        try:
            return importlib.import_module(name), name
        except BaseException:
            forget_modules([m for m in list(sys.modules) if m == name or m.startswith(name + ".")])
            raise


def adopt_source_package(name: str) -> None:
    """Import a module-name target (an entry point's ``module:Class``) through our finder when
    its top-level package is plain source on disk, so it too compiles the source it reads
    (no ``__pycache__`` is ever executed for a plugin, and pinned bytes apply). Anything else —
    already imported, namespace or zip packages, extension modules — imports as usual."""
    top = name.partition(".")[0]
    if top in sys.modules or top in finder.packages or top in finder.files:
        return
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return
    if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
        return
    locs = list(spec.submodule_search_locations or [])
    with _lock:
        if len(locs) == 1 and spec.origin and spec.origin.endswith("__init__.py"):
            finder.packages[top] = str(Path(locs[0]))
        elif not locs and spec.origin and spec.origin.endswith(".py"):
            finder.files[top] = spec.origin
    install_finder()


def forget_modules(names: Sequence[str]) -> None:
    """Drop modules from ``sys.modules`` and from our registry (unload / failed load)."""
    with _lock:
        for n in names:
            mod = sys.modules.pop(n, None)
            finder.files.pop(n, None)
            if "." not in n and finder.packages.get(n):
                finder.packages.pop(n, None)
            f = getattr(mod, "__file__", None)
            if f:
                forget(norm(f))
            parent, _, child = n.rpartition(".")
            if parent and parent in sys.modules and getattr(sys.modules[parent], child, None) is mod:
                delattr(sys.modules[parent], child)


def plugin_classes(module: types.ModuleType) -> list[type[Plugin]]:
    """Plugin subclasses defined in ``module`` itself, with metadata, in definition order."""
    found = []
    for obj in vars(module).values():
        if (inspect.isclass(obj) and issubclass(obj, Plugin) and obj is not Plugin
                and (obj.__module__ == module.__name__ or obj.__module__.startswith(module.__name__ + "."))
                and "metadata" in _mro_dict_keys(obj)):
            found.append(obj)
    return found


def _mro_dict_keys(cls: type) -> set[str]:
    keys: set[str] = set()
    for k in cls.__mro__:
        if k is Plugin:
            break
        keys.update(vars(k))
    return keys


def pick_class(module: types.ModuleType, class_name: str | None, target: str) -> type[Plugin]:
    if class_name:
        cls = getattr(module, class_name, None)
        if not (inspect.isclass(cls) and issubclass(cls, Plugin)):
            raise PluginNotFoundError(f"{target}: no Plugin subclass named {class_name!r} in "
                                      f"{getattr(module, '__file__', module.__name__)}")
        return cls
    classes = plugin_classes(module)
    if not classes:
        raise PluginNotFoundError(
            f"{target}: no Plugin subclass with `metadata` in {getattr(module, '__file__', module.__name__)}",
            hint="define `class MyPlugin(Plugin): metadata = PluginMetadata(name=...)`")
    if len(classes) > 1:
        names = ", ".join(c.__name__ for c in classes)
        raise PluginLoadError(f"{target} defines several plugins ({names})",
                              hint=f"choose one: '{target}:{classes[0].__name__}'")
    return classes[0]


def load(target: str, resolved: str | None = None) -> LoadedCode:
    """Import ``resolved`` (a target as discovery spelled it) or ``target`` itself.

    Accepted forms: ``module:Class``, a module name, a path to a ``.py`` file or a package
    folder (each optionally ``:Class``).
    """
    spec = resolved or target
    where, class_name = split_target(spec)
    path = Path(os.path.expanduser(where))
    root: str | None
    looks_like_path = where.endswith(".py") or os.sep in where or "/" in where or path.exists()
    try:
        if looks_like_path:
            if not path.exists():
                raise PluginNotFoundError(f"{target}: no such file or folder {path}",
                                          hint="check the path, or `%plugin discover DIR` to list plugins")
            module, _ = import_path(path)
            file = Path(module.__file__ or path).resolve()
            root = str(file.parent)
        else:
            if not all(part.isidentifier() for part in where.split(".")):
                raise PluginNotFoundError(f"{target!r} is not a known plugin, module or path",
                                          hint="`%plugin discover` lists what can be loaded")
            adopt_source_package(where)
            try:
                module = importlib.import_module(where)
            except ModuleNotFoundError as e:
                if e.name and where.startswith(e.name):
                    raise PluginNotFoundError(f"{target!r} is not a known plugin, module or path",
                                              hint="`%plugin discover` lists what can be loaded") from None
                raise
            file_s = getattr(module, "__file__", None)
            root = str(Path(file_s).resolve().parent) if file_s else None
        cls = pick_class(module, class_name, target)
    except (PluginNotFoundError, PluginLoadError):
        raise
    except BaseException as e:
        if not isinstance(e, Exception):
            raise
        raise PluginLoadError(f"{target}: importing the plugin failed: {type(e).__name__}: {e}",
                              hint="fix the error and load again") from e
    src = getattr(module, "__file__", None) or module.__name__
    return LoadedCode(target=target, module=module, cls=cls, source=str(src), root=root)
