"""What the manager knows about its plugins, and the questions asked of all of them at once.

``PluginRecord`` is one plugin's entry (``pm.plugins[name]``). ``Registry`` is the name → record
map plus the rules that need every record: which plugin owns a path, the dependency order,
dependants, the shutdown order, whether a save is news and which saves are pending. Each rule is
written here once; before, the watcher, the transaction and the lifecycle each had a copy of
"which plugin owns this path", and two of "did this save change anything".
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from .context import PluginContext
from .errors import DependencyError
from .files import file_digests, norm, source_hashes, under
from .health_rules import run_key, without_check
from .recovery import ends_kept_failure, recoverable_files
from .types import HealthStatus, LifecycleState, PluginMetadata, ReloadResult


@dataclass(eq=False)
class PluginRecord:
    """A plugin's registry entry. ``error`` is the kept one-line error of a failed plugin (or
    of its last failed reload), ``error_detail`` the plugin's own traceback."""

    name: str
    target: str
    metadata: PluginMetadata
    source: str
    status: LifecycleState = LifecycleState.LOADED
    cls: type | None = None
    module: ModuleType | None = None
    instance: Any = None
    context: PluginContext | None = None
    root: str | None = None
    package_dir: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_detail: str | None = None
    exception: BaseException | None = None
    #: the last verdict and the run it describes (see ``health``)
    _health_cache: tuple[Any, HealthStatus | None] | None = field(default=None, repr=False)
    last_reload: ReloadResult | None = None
    reload_count: int = 0
    initialized: bool = False
    want_running: bool = False
    loaded_at: float = field(default_factory=time.time)
    started_at: float | None = None
    #: path -> content hash of a version that failed, so the same broken save is not retried
    failed_hashes: dict[str, str] = field(default_factory=dict)
    #: every file that belongs to the plugin (module files), for routing watch events
    files: set[str] = field(default_factory=set)
    #: the signature verdict on the code that runs (``trust.SignatureInfo``); None: policy off
    signature: Any = None
    #: True for a plugin running in its own worker process (``pm.load(..., isolated=True)``)
    isolated: bool = False
    #: the isolated plugin's runtime (``pid``, ``enforced``, ``stats()``, ``last_crash``), else None
    worker: Any = None

    @property
    def health(self) -> HealthStatus | None:
        """The last health verdict of the current run; after a stop, a failure or a new start
        the previous run's verdict is replaced by what needs no check (``health_rules``)."""
        key = run_key(self)
        cached = self._health_cache
        if cached is None or cached[0] != key:
            cached = (key, without_check(self))
            self._health_cache = cached
        return cached[1]

    @health.setter
    def health(self, value: HealthStatus | None) -> None:
        self._health_cache = (run_key(self), value)

    @property
    def version(self) -> str:
        return self.metadata.version

    @property
    def running(self) -> bool:
        return self.status == LifecycleState.RUNNING

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe summary (for UIs and logs)."""
        return {
            "name": self.name, "version": self.version, "status": str(self.status),
            "description": self.metadata.description, "requires": list(self.metadata.requires),
            "source": self.source, "target": self.target, "error": self.error,
            "health": self.health.to_dict() if self.health else None,
            "last_reload": self.last_reload.to_dict() if self.last_reload else None,
            "reload_count": self.reload_count, "loaded_at": self.loaded_at,
            "started_at": self.started_at, "isolated": self.isolated,
            "worker": self.worker.to_dict() if self.worker is not None else None,
            "signature": self.signature.to_dict() if self.signature is not None else None,
        }

    def __repr__(self) -> str:
        err = f" error={self.error!r}" if self.error else ""
        return f"<PluginRecord {self.name} {self.version} {self.status}{err}>"

    def owns(self, path: str) -> bool:
        """``path`` (``norm``) is one of this plugin's files: a module it runs, any ``.py`` in its
        package folder (a new module it will import), or the target of a plugin whose code never
        loaded (so fixing that file retries it)."""
        return (path in self.files or under(path, self.package_dir)
                or (self.module is None and norm(self.target) == path))

    def watched_files(self) -> set[str]:
        return set(self.files) or ({norm(self.target)} if self.module is None else set())

    def is_news(self, path: str, content_digest: str | None, *, runs_stale: bool = False) -> bool:
        """The one "did this save change anything" rule: content differing from what runs and
        from the version that already failed here. ``runs_stale``: what runs for ``path`` was
        just replaced by another plugin's reload in the same batch (a shared module), so equal to
        it is no longer "unchanged" for this plugin."""
        if content_digest is None:
            return False
        if content_digest == self.failed_hashes.get(path):
            return False
        return runs_stale or content_digest != source_hashes.get(path)


class Registry(dict[str, PluginRecord]):
    """Every loaded plugin by name, and the questions about all of them (module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        #: names unloaded since (``status()`` answers "unloaded" for them)
        self.unloaded: set[str] = set()

    def owners(self, paths: Iterable[str]) -> list[str]:
        """Plugins owning any of ``paths`` (``norm``), by name."""
        ps = list(paths)
        return [n for n, r in self.items() if any(r.owns(p) for p in ps)]

    def owned(self, path: str) -> bool:
        return any(r.owns(path) for r in self.values())

    def news(self, paths: Iterable[str]) -> list[str]:
        """Of ``paths`` (``norm``), those whose content on disk is news to a plugin owning them;
        a save that leaves a file as it already runs does nothing at all — unless it ends a kept
        reload failure (``recovery.py``: the file is back to the running version)."""
        out = []
        for path, d in file_digests(paths).items():
            if any(r.owns(path) and (r.is_news(path, d) or ends_kept_failure(r)) for r in list(self.values())):
                out.append(path)
        return out

    def pending_files(self) -> list[str]:
        """Files of loaded plugins saved but not applied yet (``pm.pending_changes()``), and the
        files whose save back to the running version would clear a kept failure (``recovery``)."""
        out: set[str] = set()
        for rec in list(self.values()):
            for path, d in file_digests(sorted(rec.watched_files())).items():
                if rec.is_news(path, d):
                    out.add(path)
        return sorted({*out, *recoverable_files(self.values())})

    # ----------------------------------------------------------------- dependencies
    def dependency_order(self, name: str) -> list[str]:
        """``name``'s dependencies (transitively), each before what needs it; ``name`` last.
        Raises ``DependencyError`` for a missing or wrong-version dependency, or a cycle."""
        order: list[str] = []
        visiting: list[str] = []

        def visit(n: str) -> None:
            if n in order:
                return
            if n in visiting:
                cycle = " -> ".join([*visiting[visiting.index(n):], n])
                raise DependencyError(f"dependency cycle: {cycle}", name,
                                      hint="remove one of these `requires` entries")
            visiting.append(n)
            rec = self[n]
            for req in rec.metadata.requirements:
                dep = self.get(req.name)
                if dep is None or dep.status == LifecycleState.UNLOADED:
                    raise DependencyError(
                        f"{n} requires {req}, which is not loaded", n,
                        hint=f"load it first (`%plugin load {req.name}`)")
                if not req.accepts(dep.version):
                    raise DependencyError(
                        f"{n} requires {req}, but {req.name} {dep.version} is loaded", n,
                        hint=f"load a version of {req.name} matching '{req.specifier}', or relax {n}'s requires")
                visit(req.name)
            visiting.pop()
            order.append(n)

        visit(name)
        return order

    def dependants(self, name: str) -> list[str]:
        """Loaded plugins that require ``name``, transitively, each after what it requires."""
        out: list[str] = []

        def visit(n: str) -> None:
            for other, rec in self.items():
                if other not in out and any(r.name == n for r in rec.metadata.requirements):
                    out.append(other)
                    visit(other)

        visit(name)
        return out

    def shutdown_order(self) -> list[str]:
        """Every plugin, dependants before their dependencies (a broken chain still shuts down)."""
        order: list[str] = []
        for n in sorted(self):
            try:
                for d in self.dependency_order(n):
                    if d not in order:
                        order.append(d)
            except DependencyError:
                if n not in order:
                    order.append(n)
        return order[::-1]

    def affected_order(self, changed: Iterable[str]) -> list[str]:
        """Plugins owning any ``changed`` path, dependencies before dependants (a reload batch)."""
        hit = self.owners(changed)
        order: list[str] = []
        for n in sorted(hit):
            try:
                chain = self.dependency_order(n)
            except Exception:
                chain = [n]
            for c in chain:
                if c in hit and c not in order:
                    order.append(c)
        return order
