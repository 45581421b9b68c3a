"""Write a small, valid, pure-Python wheel directly (no build backend): for tests, benchmarks
and tutorials that need a plugin wheel in an index without building a project.

The wheel is what ``pip wheel`` would produce for the same files: ``METADATA``, ``WHEEL``,
``entry_points.txt`` and a ``RECORD`` with each file's hash, so pip installs (and uninstalls) it
normally. Zip timestamps are fixed, so the same input gives the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["make_wheel", "plugin_module"]

_EPOCH = (2020, 1, 1, 0, 0, 0)


def plugin_module(name: str, version: str, *, cls: str = "Plugin_", description: str = "",
                  body: str = "    def start(self):\n        self.started = True\n") -> str:
    """Source of a one-class plugin module whose metadata says ``name`` and ``version``."""
    cls = cls if cls != "Plugin_" else "".join(p.capitalize() for p in name.split("_")) + "Plugin"
    return (f"from flx_ipy import Plugin, PluginMetadata\n\n\nclass {cls}(Plugin):\n"
            f"    metadata = PluginMetadata(name={name!r}, version={version!r}, description={description!r})\n\n"
            f"{body}")


def make_wheel(folder: str | Path, dist: str, version: str, files: Mapping[str, str | bytes], *,
               entry_points: Mapping[str, Mapping[str, str]] | None = None, summary: str = "",
               requires_python: str | None = None, requires_dist: Sequence[str] = (),
               extra_dist_info: Mapping[str, str | bytes] | None = None) -> Path:
    """Write ``DIST-VERSION-py3-none-any.whl`` into ``folder`` and return its path."""
    norm = dist.replace("-", "_").replace(".", "_")
    info = f"{norm}-{version}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {dist}", f"Version: {version}"]
    if summary:
        meta.append(f"Summary: {summary}")
    if requires_python:
        meta.append(f"Requires-Python: {requires_python}")
    meta += [f"Requires-Dist: {r}" for r in requires_dist]
    members: dict[str, bytes] = {k: v.encode() if isinstance(v, str) else v for k, v in files.items()}
    members[f"{info}/METADATA"] = ("\n".join(meta) + "\n\n").encode()
    members[f"{info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: flx_ipy.registry.wheelmaker\n"
                                b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    if entry_points:
        text = "".join(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n"
                       for group, eps in entry_points.items())
        members[f"{info}/entry_points.txt"] = text.encode()
    for k, v in (extra_dist_info or {}).items():
        members[f"{info}/{k}"] = v.encode() if isinstance(v, str) else v
    record = []
    for name, data in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    members[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = Path(folder) / f"{norm}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zi = zipfile.ZipInfo(name, _EPOCH)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            zf.writestr(zi, data)
    return path
