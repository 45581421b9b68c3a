"""Entry points and module files of installed distributions, found without importing anything.

``importlib.metadata`` builds objects for every distribution and every entry point of every
group; listing our one group needs only the ``entry_points.txt`` files that mention it, and the
plugin module's file located on disk (no import of it or of its parent packages).
"""

from __future__ import annotations

import ast
import os
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

__all__ = ["ENTRY_POINT_RE", "EntryPoint", "entry_points", "module_file"]

#: ``module:attr [extras]``, as the entry point spec writes a value
ENTRY_POINT_RE = re.compile(r"^(?P<module>[\w.]+)\s*(?::\s*(?P<attr>[\w.]+)\s*)?(?:\[.*\]\s*)?$")


class EntryPoint(NamedTuple):
    name: str
    value: str
    dist: str
    version: str
    root: str  # the sys.path entry holding the distribution


def _normalize(name: str) -> str:
    """PEP 503 name normalization ('_' form); str methods first, as it runs once per distribution."""
    key = name.lower().replace("-", "_").replace(".", "_")
    return re.sub("_+", "_", key) if "__" in key else key


def entry_points(paths: Iterable[str], group: str) -> Iterator[EntryPoint]:
    """The group's entry points of every distribution on ``paths``, first distribution wins.

    Mirrors importlib.metadata's search (``*.dist-info``/``*.egg-info`` children of each path
    entry, de-duplicated by normalized name in path order) but opens only ``entry_points.txt``
    files, checks for the section header as bytes, and parses only that section.
    """
    seen: set[str] = set()
    header = f"[{group}]".encode()
    exists = os.path.exists
    for root in paths:
        try:
            names = os.listdir(root or ".")
        except OSError:
            continue
        for entry in [n for n in names if n.endswith((".dist-info", ".egg-info"))]:
            stem = entry[:-10] if entry[-10] == "." else entry[:-9]
            dist, _, rest = stem.partition("-")
            key = _normalize(dist)
            if key in seen:
                continue
            seen.add(key)
            ep_file = f"{root or '.'}{os.sep}{entry}{os.sep}entry_points.txt"
            if not exists(ep_file):
                continue
            try:
                with open(ep_file, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            start = data.find(header)
            if start < 0:
                continue
            version = rest.partition("-")[0] or _pkg_info_version(os.path.join(root, entry))
            for line in data[start + len(header):].decode("utf-8", "replace").splitlines():
                line = line.strip()
                if line.startswith("["):
                    break
                if not line or line[0] in "#;" or "=" not in line:
                    continue
                name, _, value = line.partition("=")
                yield EntryPoint(name.strip(), value.strip(), dist, version, root)


def _pkg_info_version(info_dir: str) -> str:
    """Version of an ``name.egg-info`` (develop installs) whose folder name carries none."""
    for fname in ("PKG-INFO", "METADATA"):
        try:
            with open(os.path.join(info_dir, fname), encoding="utf-8", errors="replace") as f:
                for line in f:
                    if line.startswith("Version:"):
                        return line[8:].strip()
                    if not line.strip():
                        break
        except OSError:
            continue
    return "unknown"


def module_file(module: str, first_root: str, paths: Iterable[str]) -> str | None:
    """The source file of ``module`` found on disk, importing neither it nor its parents."""
    loaded = sys.modules.get(module)
    loaded_file = getattr(loaded, "__file__", None)
    if isinstance(loaded_file, str) and loaded_file.endswith(".py"):
        return loaded_file
    rel = module.replace(".", os.sep)
    isfile = os.path.isfile
    for root in (first_root, *paths):
        base = os.path.join(root or ".", rel)
        for cand in (base + ".py", os.path.join(base, "__init__.py")):
            if isfile(cand):
                return cand if os.path.isabs(cand) else os.path.abspath(cand)
    return _editable_module_file(module, first_root)


def _editable_module_file(module: str, root: str) -> str | None:
    """Follow a PEP 660 editable install's ``__editable___*_finder.py`` MAPPING, if any."""
    top, _, sub = module.partition(".")
    try:
        finders = [n for n in os.listdir(root or ".") if n.startswith("__editable__") and n.endswith(".py")]
    except OSError:
        return None
    for finder in finders:
        try:
            text = Path(root, finder).read_text(encoding="utf-8")
            m = re.search(r"^MAPPING\s*(?::[^=\n]*)?=\s*(\{.*?\})\s*$", text, re.M | re.S)
            mapping = ast.literal_eval(m.group(1)) if m else {}
        except (OSError, ValueError, SyntaxError):
            continue
        location = mapping.get(top) if isinstance(mapping, dict) else None
        if not isinstance(location, str):
            continue
        if location.endswith(".py"):
            return location if not sub and os.path.isfile(location) else None
        base = os.path.join(location, *sub.split(".")) if sub else location
        for cand in (base + ".py", os.path.join(base, "__init__.py")):
            if os.path.isfile(cand):
                return cand
    return None
