"""The plugin author's vocabulary: what a plugin is, says about itself, and hands over on reload.

These are the names of the public contract (``docs/architecture.md``, "Public names"). They
are plain data and a base class with no behaviour of its own, so a plugin module imports
cheaply and a test can build any of them by hand.
"""

from __future__ import annotations

import enum
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .context import PluginContext
from .errors import PluginValidationError, ReloadError


class _StrEnum(str, enum.Enum):
    """``str`` mix-in so a state compares equal to its string and prints as it."""

    def __str__(self) -> str:
        return str(self.value)

    def __repr__(self) -> str:  # shows as the string it compares equal to, also inside tuples
        return repr(str(self.value))

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class LifecycleState(_StrEnum):
    """Where a plugin is in its life; ``RELOADING`` is transient, ``FAILED`` keeps the error."""

    DISCOVERED = "discovered"
    LOADED = "loaded"
    INITIALIZED = "initialized"
    RUNNING = "running"
    STOPPED = "stopped"
    UNLOADED = "unloaded"
    FAILED = "failed"
    RELOADING = "reloading"


class Health(_StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class HealthStatus:
    """A health verdict; ``status`` compares equal to ``"healthy"`` etc."""

    status: Health = Health.UNKNOWN
    message: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    checked_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "status", Health(str(self.status)))
        except ValueError:
            allowed = ", ".join(h.value for h in Health)
            raise ValueError(f"HealthStatus.status must be one of {allowed}, got {self.status!r}") from None

    @classmethod
    def healthy(cls, message: str = "", **details: Any) -> HealthStatus:
        return cls(Health.HEALTHY, message, details)

    @classmethod
    def degraded(cls, message: str = "", **details: Any) -> HealthStatus:
        return cls(Health.DEGRADED, message, details)

    @classmethod
    def unhealthy(cls, message: str = "", **details: Any) -> HealthStatus:
        return cls(Health.UNHEALTHY, message, details)

    @classmethod
    def unknown(cls, message: str = "", **details: Any) -> HealthStatus:
        return cls(Health.UNKNOWN, message, details)

    @property
    def ok(self) -> bool:
        return self.status == Health.HEALTHY

    def to_dict(self) -> dict[str, Any]:
        return {"status": str(self.status), "message": self.message,
                "details": dict(self.details), "checked_at": self.checked_at}

    def __str__(self) -> str:
        return f"{self.status}: {self.message}" if self.message else str(self.status)

    def __repr__(self) -> str:
        msg = f", {self.message!r}" if self.message else ""
        return f"HealthStatus({str(self.status)!r}{msg})"


_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:[.-][A-Za-z0-9_]+)*$")
_REQ_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Requirement:
    """One ``requires`` entry: a plugin name and a version specifier (``clock>=1.0``)."""

    name: str
    specifier: str = ""

    @classmethod
    def parse(cls, text: str) -> Requirement:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        m = _REQ_RE.match(text) if isinstance(text, str) else None
        if not m:
            raise ValueError(f"{text!r} is not a requirement; write it as 'name' or 'name>=1.0'")
        name, spec = m.group(1), m.group(2).replace(" ", "")
        try:
            SpecifierSet(spec)
        except InvalidSpecifier:
            raise ValueError(
                f"{text!r} has an invalid version specifier {spec!r}; use PEP 440 forms like '>=1.0,<2'"
            ) from None
        return cls(name, spec)

    def accepts(self, version: str) -> bool:
        from packaging.specifiers import SpecifierSet

        return not self.specifier or SpecifierSet(self.specifier).contains(version, prereleases=True)

    def __str__(self) -> str:
        return f"{self.name}{self.specifier}"


def metadata_problems(
    name: Any, version: Any, description: Any, requires: Any, capabilities: Any
) -> list[tuple[str, str]]:
    """Every problem with a metadata's fields, as ``(field, what is wrong and the fix)``.

    Shared by ``PluginMetadata`` (which raises) and discovery (which reports without
    importing), so both say the same thing about the same mistake.
    """
    problems: list[tuple[str, str]] = []
    if not isinstance(name, str) or not _NAME_RE.match(name):
        problems.append(("name", f"{name!r} is not a plugin name: use letters, digits and '_' "
                                 "(optionally '.'/'-' separated), starting with a letter"))
    if not isinstance(version, str):
        problems.append(("version", f"{version!r} must be a string like '1.0.0'"))
    else:
        from packaging.version import InvalidVersion, Version

        try:
            Version(version)
        except InvalidVersion:
            problems.append(("version", f"{version!r} is not a PEP 440 version: write e.g. '1.0.0'"))
    if not isinstance(description, str):
        problems.append(("description", f"must be a string, got {type(description).__name__}"))
    if isinstance(requires, str) or not isinstance(requires, Iterable):
        problems.append(("requires", f"must be a list of strings like ['clock>=1.0'], got {requires!r}"))
    else:
        for req in requires:
            try:
                r = Requirement.parse(req)
            except ValueError as e:
                problems.append(("requires", str(e)))
            else:
                if isinstance(name, str) and r.name == name:
                    problems.append(("requires", f"{name!r} cannot require itself"))
    if isinstance(capabilities, str) or not isinstance(capabilities, Iterable):
        problems.append(("capabilities", f"must be a list of strings, got {capabilities!r}"))
    else:
        for cap in capabilities:
            if not isinstance(cap, str) or not cap.strip():
                problems.append(("capabilities", f"{cap!r} is not a capability name (a non-empty string)"))
    return problems


class _Strings(tuple):  # type: ignore[type-arg]
    """An immutable list of strings that also compares equal to the list it was written as
    (``md.requires == ["clock>=1.0"]``), so metadata stays hashable and still reads naturally."""

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list):
            return list(self) == other
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = tuple.__hash__

    def __repr__(self) -> str:
        return repr(list(self))


@dataclass(frozen=True)
class PluginMetadata:
    """What a plugin says about itself; validated on creation with every problem listed."""

    name: str
    version: str = "0.0.0"
    description: str = ""
    requires: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems = metadata_problems(self.name, self.version, self.description,
                                     self.requires, self.capabilities)
        if problems:
            lines = "; ".join(f"{f}: {msg}" for f, msg in problems)
            raise PluginValidationError(
                f"invalid PluginMetadata for {self.name!r}: {lines}",
                self.name if isinstance(self.name, str) else None,
                problems=problems,
            )
        object.__setattr__(self, "requires", _Strings(self.requires))
        object.__setattr__(self, "capabilities", _Strings(self.capabilities))

    @property
    def requirements(self) -> tuple[Requirement, ...]:
        return tuple(Requirement.parse(r) for r in self.requires)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "description": self.description,
                "requires": list(self.requires), "capabilities": list(self.capabilities)}


@dataclass
class PluginState:
    """State handed from one version of a plugin to the next; JSON and MessagePack safe.

    ``version`` is the version that *saved* it, so ``restore_state`` of a newer version can
    migrate an older shape.
    """

    plugin_id: str
    version: str
    configuration: dict[str, Any] = field(default_factory=dict)
    runtime_data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PluginState:
        missing = [k for k in ("plugin_id", "version") if k not in data]
        if missing:
            raise ValueError(f"PluginState is missing {', '.join(missing)}")
        return cls(str(data["plugin_id"]), str(data["version"]),
                   dict(data.get("configuration") or {}), dict(data.get("runtime_data") or {}))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str | bytes) -> PluginState:
        return cls.from_dict(json.loads(text))

    def to_msgpack(self) -> bytes:
        import msgpack

        return msgpack.packb(self.to_dict(), use_bin_type=True)  # type: ignore[no-any-return]

    @classmethod
    def from_msgpack(cls, data: bytes) -> PluginState:
        import msgpack

        return cls.from_dict(msgpack.unpackb(data, raw=False))


class Plugin:
    """Base class of plugins. Every hook is optional and may be ``def`` or ``async def``.

    The manager calls ``initialize(ctx)`` once, then ``start``/``stop`` as the plugin is started
    and stopped, ``health_check`` when asked. ``save_state``/``restore_state`` are looked up,
    not inherited: a plugin that does not define them keeps its instance attributes across a
    reload (the same instance runs the new code).
    """

    metadata: PluginMetadata
    ctx: PluginContext

    def initialize(self, ctx: PluginContext) -> Any:
        self.ctx = ctx

    def start(self) -> Any:
        return None

    def stop(self) -> Any:
        return None

    def health_check(self) -> Any:
        return HealthStatus.healthy("running")


#: Hooks the manager may call, with how many positional arguments each takes (besides self).
HOOKS: dict[str, int] = {
    "initialize": 1, "start": 0, "stop": 0, "health_check": 0,
    "save_state": 0, "restore_state": 1,
}


@dataclass(frozen=True)
class Event:
    """One thing that happened to a plugin; ``kind`` is a string like ``"reloaded"``."""

    kind: str
    plugin: str | None
    time: float
    details: Mapping[str, Any] = field(default_factory=dict)
    seq: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "plugin": self.plugin, "time": self.time,
                "details": _jsonable(self.details), "seq": self.seq}


def _jsonable(value: Any) -> Any:
    """Best-effort JSON-safe copy, so events can cross a comm or a log file."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    return str(value)


@dataclass
class ReloadResult:
    """The outcome of one reload. ``ok`` False with ``rolled_back`` True: the previous version
    (code and state) is still running; ``error`` says why, ``where`` is ``file:line``."""

    plugin: str
    ok: bool
    rolled_back: bool = False
    error: str | None = None
    duration: float = 0.0
    finished_at: float = 0.0
    changed: bool = True
    modules: list[str] = field(default_factory=list)
    phase: str = ""
    where: str | None = None
    traceback: str | None = None
    notes: list[str] = field(default_factory=list)
    recreated: bool = False

    def __bool__(self) -> bool:
        return self.ok

    def raise_for_error(self) -> ReloadResult:
        """Raise ``ReloadError`` (carrying this result) if the reload failed; else return self.
        For scripts and CI that want a failed reload to stop them, as ``httpx``'s
        ``raise_for_status`` does for a response."""
        if not self.ok:
            raise ReloadError(self.summary(), self.plugin, result=self,
                              hint="fix the file and save, or reload again")
        return self

    def summary(self) -> str:
        ms = f"{self.duration * 1000:.1f} ms"
        if self.ok:
            extra = f" ({'; '.join(self.notes)})" if self.notes else ""
            if not self.modules:
                return f"{self.plugin}: unchanged{extra}"
            same = "" if self.changed else " (source unchanged)"
            return f"{self.plugin}: reloaded in {ms}{same}{extra}"
        at = f" at {self.where}" if self.where else ""
        tail = "previous version still running" if self.rolled_back else "plugin not running"
        return f"{self.plugin}: reload failed in {self.phase}{at}: {self.error} — {tail}"

    def to_dict(self) -> dict[str, Any]:
        return {"plugin": self.plugin, "ok": self.ok, "rolled_back": self.rolled_back,
                "error": self.error, "duration": self.duration, "finished_at": self.finished_at,
                "changed": self.changed, "phase": self.phase, "where": self.where,
                "notes": list(self.notes), "recreated": self.recreated}
