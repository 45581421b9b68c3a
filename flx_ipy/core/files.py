"""Plugin files as the core sees them: one path form, one way to read, one digest.

Every other core module asks here, so that "is this the same file" and "is this the same
content" have one answer each:

* **One path form** (``norm``): absolute and case-normalised. Watch events, ``module.__file__``
  and user input spell the same file differently; comparing them unnormalised misses saves.
* **What runs** (``sources`` / ``source_hashes``): the bytes last executed for each module file
  and their digest. The loader records them when it imports, the code swap when it re-executes
  and when it rolls back. "Did this save change anything" is a comparison against these.
* **Compiled from the bytes read**: no ``.pyc`` is ever trusted (its whole-second mtime check
  runs stale code after two quick same-size saves). A reload compiles per top-level statement
  (``toplevel.split``, cached: the settle check and the reload that follows share the pieces);
  ``compile_source`` compiles a whole module, remembering the last few.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from types import CodeType, ModuleType

#: module file path (``norm``) -> digest of the source last executed for it
source_hashes: dict[str, str] = {}
#: module file path (``norm``) -> the source bytes last executed for it (reloads diff against these)
sources: dict[str, bytes] = {}
_compiled: dict[tuple[str, str], CodeType] = {}


def norm(path: str | Path) -> str:
    """The one spelling of a path the core compares: absolute, case-normalised."""
    return os.path.normcase(os.path.abspath(str(path)))


def digest(data: bytes) -> str:
    """A content fingerprint (not a security hash: signatures use their own)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def read(path: str | Path) -> bytes | None:
    """The file's bytes, or None when it cannot be read (deleted mid-save, a permission flip):
    callers treat an unreadable file as "not ready", never as an error of the manager."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes; ``OSError`` propagates for callers that report it (a reload's compile)."""
    with open(path, "rb") as fh:
        return fh.read()


def file_digests(paths: Iterable[str]) -> dict[str, str | None]:
    """``path -> digest`` of what is on disk now (None: unreadable)."""
    out: dict[str, str | None] = {}
    for p in paths:
        data = read(p)
        out[p] = digest(data) if data is not None else None
    return out


def compile_source(data: bytes, path: str) -> CodeType:
    """Compile plugin source, remembering the last few results (see the module docstring)."""
    key = (path, digest(data))
    code = _compiled.get(key)
    if code is None:
        code = compile(data, path, "exec", dont_inherit=True)
        _compiled[key] = code
        if len(_compiled) > 16:
            _compiled.pop(next(iter(_compiled)))
    return code


def record_run(path: str, data: bytes) -> None:
    """Remember ``data`` as what runs for ``path`` (after an import, a swap or a rollback)."""
    sources[path] = data
    source_hashes[path] = digest(data)


def forget(path: str) -> None:
    """A module file is no longer run by any plugin (unload, failed load)."""
    source_hashes.pop(path, None)
    sources.pop(path, None)


def module_file(mod: ModuleType) -> str | None:
    """A module's source file (``norm``), or None for modules without a ``.py`` file."""
    f = getattr(mod, "__file__", None)
    if not isinstance(f, str) or not f.endswith(".py"):
        return None
    return norm(f)


def remember_source(mod: ModuleType) -> None:
    """Record the source a freshly imported module ran, so its first reload can tell stale names."""
    path = module_file(mod)
    if path and path not in sources:
        data = read(path)
        if data is None:
            return
        sources[path] = data
        source_hashes.setdefault(path, digest(data))


def modules_under(root: str) -> dict[str, ModuleType]:
    """Modules in ``sys.modules`` whose file lies under ``root`` (a plugin's package folder)."""
    prefix = norm(root) + os.sep
    out = {}
    for name, mod in list(sys.modules.items()):
        f = module_file(mod) if isinstance(mod, ModuleType) else None
        if f and f.startswith(prefix):
            out[name] = mod
    return out


def under(path: str, folder: str | None) -> bool:
    """``path`` is a ``.py`` file inside ``folder`` (both ``norm``)."""
    return bool(folder) and path.startswith(f"{folder}{os.sep}") and path.endswith(".py")
