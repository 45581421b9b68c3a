"""Install into the running process and make the plugin usable at once — no kernel restart.

What stands between ``pip install`` and ``%plugin load NAME`` in the same kernel, and what
this does about each:

* the import system caches directory listings (``FileFinder``): ``importlib.invalidate_caches()``;
* ``--target DIR`` installs are not on ``sys.path`` yet: DIR is put first on it;
* discovery caches its scan: ``pm.discover(rescan=True)`` reads the new ``entry_points.txt``
  (discovery never imports the plugin, so nothing of the new version runs until it is loaded).

When the distribution was already imported in another version, its old modules are live
objects. A *loaded plugin* of that distribution is moved onto the new files by the hot-reload
engine (``pm.reload``: the same transaction as a save — state kept, rolled back if the new
version fails). Modules of the distribution that no loaded plugin owns (a helper library the
plugin imported, code the user imported directly) cannot be swapped safely from here: other
objects hold references into them. That case is reported in ``restart_needed`` with the module
names — the install itself is complete, the old code simply keeps running until a restart.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .index import Index, RegistryError
from .install import InstallResult, install, plan_install

if TYPE_CHECKING:
    from ..core.manager import PluginManager
    from ..core.registry import PluginRecord
    from ..core.types import ReloadResult

__all__ = ["LiveInstall", "install_live"]


@dataclass
class LiveInstall:
    result: InstallResult
    discoverable: list[str] = field(default_factory=list)  # plugin names pm can load now
    reloaded: list[ReloadResult] = field(default_factory=list)  # loaded plugins moved onto it
    restart_needed: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.result.ok and all(r.ok for r in self.reloaded)

    def summary(self) -> str:
        text = self.result.summary()
        if self.result.dry_run:
            return " — ".join([text, *self.notes, *([self.restart_needed] if self.restart_needed else [])])
        for r in self.reloaded:
            text += f"; {r.summary()}"
        if self.discoverable and self.result.changed:
            not_loaded = [n for n in self.discoverable if n not in {r.plugin for r in self.reloaded}]
            if not_loaded:
                text += f" — `%plugin load {not_loaded[0]}` works now, no restart"
        if self.restart_needed:
            text += f" — {self.restart_needed}"
        for note in self.notes:
            text += f" — {note}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {**self.result.to_dict(), "discoverable": self.discoverable,
                "reloaded": [r.to_dict() for r in self.reloaded],
                "restart_needed": self.restart_needed, "notes": list(self.notes)}


def _imported(tops: list[str]) -> list[str]:
    return sorted(m for m in list(sys.modules)
                  if any(m == t or m.startswith(t + ".") for t in tops) and sys.modules.get(m) is not None)


def install_live(pm: PluginManager, index: Index, spec: str, *, target: str | None = None, dry_run: bool = False,
                 reinstall: bool = False, on_line: Callable[[str], None] | None = None) -> LiveInstall:
    """Install ``spec`` into this interpreter's environment and make it loadable by ``pm`` now."""
    target = os.path.abspath(os.path.expanduser(target)) if target else None
    try:
        plan = plan_install(index, spec, target=target, reinstall=reinstall)
        before = _imported(plan.modules)
        # loaded plugins running code of this distribution, and the modules each one owns
        owners = {name: _owned(rec, before) for name, rec in sorted(pm.plugins.items())
                  if rec.module is not None and rec.module.__name__ in before}
        result = install(index, spec, target=target, dry_run=dry_run, reinstall=reinstall, on_line=on_line)
    except RegistryError as e:
        _publish(pm, "install_failed", spec, index=index.location, error=str(e))
        raise
    live = LiveInstall(result)
    left = [m for m in before if not any(m in own for own in owners.values())]
    if dry_run:
        if plan.action not in ("none", "install"):
            live.notes += [f"would move the running plugin {n} onto it (hot reload, state kept)" for n in owners]
            if left:
                live.restart_needed = "after it, " + _restart_text(left, plan.installed)
        return live
    if target and target not in sys.path:
        sys.path.insert(0, target)
    importlib.invalidate_caches()
    pm.discover(rescan=True)
    provided = set(plan.plugins)
    live.discoverable = sorted(c.name for c in pm.candidates if c.ok and c.name in provided)
    if result.changed:
        for name in plan.plugins or [plan.name]:
            _publish(pm, "installed", name, distribution=plan.name, version=plan.version, previous=plan.installed,
                     index=index.location, wheel=plan.wheel, sha256=plan.sha256, target=target)
    if not result.changed or not before:
        return live
    for name in owners:
        res = pm.reload(name)
        live.reloaded.append(res)
        if res.ok and not res.changed:
            live.notes.append(f"{name} runs {pm.plugins[name].source}, which this install did not change (the "
                              f"new files went elsewhere on sys.path): `%plugin unload {name}` then "
                              f"`%plugin load {name}`")
    if left:
        live.restart_needed = _restart_text(left, plan.installed)
    return live


def _owned(rec: PluginRecord, modules: list[str]) -> set[str]:
    """Modules the hot-reload engine swaps for this plugin: its own, and in a package every module
    of the package folder (as ``lifecycle.plugin_modules`` counts them)."""
    own = {rec.module.__name__} if rec.module is not None else set()
    if rec.cls is not None:
        own.add(rec.cls.__module__)
    pkg = rec.package_dir
    if pkg:
        root = os.path.join(os.path.abspath(pkg), "")
        for m in modules:
            f = getattr(sys.modules.get(m), "__file__", None)
            if isinstance(f, str) and os.path.abspath(f).startswith(root):
                own.add(m)
    return own


def _publish(pm: PluginManager, kind: str, plugin: str, **details: Any) -> None:
    """An event on the manager's bus (panels' event log, audit): ``installed`` once per plugin
    the wheel provides, ``install_failed`` with the one-line error. ``pm.emit`` keeps the order
    with events an operation has queued (outside the manager's lock it publishes at once)."""
    pm.emit(kind, plugin, **details)


def _restart_text(modules: list[str], old: str | None) -> str:
    shown = ", ".join(modules[:4]) + (f" and {len(modules) - 4} more" if len(modules) > 4 else "")
    return (f"restart the kernel to use the new code in {shown}: imported from version {old or 'the old one'} "
            "and not a loaded plugin, so flx_ipy cannot swap it safely (other objects may hold references into it)")
