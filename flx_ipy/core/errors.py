"""One exception tree for everything flx_ipy raises.

Every message says what failed, which plugin (and file, when there is one), what is still
running, and what to type next — the magics print ``str(err)`` as their one line::

    FlxError
     ├── PluginError                 (.plugin: the plugin's name or None)
     │    ├── PluginNotFoundError    (+ KeyError)    unknown name
     │    ├── InvalidStateError      (+ RuntimeError) operation not allowed now; nothing changed
     │    ├── DependencyError        (+ RuntimeError) missing / wrong version / cycle
     │    ├── PluginValidationError  (+ ValueError)  .problems: every problem found
     │    ├── PluginLoadError        (+ ImportError) the plugin's code could not be imported
     │    ├── HookError                              a plugin hook raised or timed out
     │    ├── ReloadError                            a reload failed and was rolled back
     │    ├── PluginCrashedError                     an isolated plugin's worker died mid-call
     │    └── PluginCallError (+ the builtin type)   an isolated plugin's method raised
     └── DiscoveryError                              a source could not be scanned
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class FlxError(Exception):
    """Base of every error flx_ipy raises on purpose."""


class PluginError(FlxError):
    """An error about one plugin; ``plugin`` names it (or is None before a name is known)."""

    def __init__(self, message: str, plugin: str | None = None, *, hint: str = "") -> None:
        self.plugin = plugin
        self.hint = hint
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message


class PluginNotFoundError(PluginError, KeyError):
    """KeyError's own ``__str__`` would quote the message; keep the readable one."""

    __str__ = PluginError.__str__


class InvalidStateError(PluginError, RuntimeError):
    """The operation is not allowed in the plugin's current lifecycle state."""


class DependencyError(PluginError, RuntimeError):
    """A ``requires`` entry cannot be satisfied (missing, wrong version, or a cycle)."""


class PluginValidationError(PluginError, ValueError):
    """Validation found problems; all of them are in ``problems`` (not just the first)."""

    def __init__(
        self, message: str, plugin: str | None = None, *, problems: Sequence[Any] = (), hint: str = ""
    ) -> None:
        self.problems = list(problems)
        super().__init__(message, plugin, hint=hint)


class PluginLoadError(PluginError, ImportError):
    """Importing or executing the plugin's module failed; ``__cause__`` is the plugin's error."""

    __str__ = PluginError.__str__


class HookError(PluginError):
    """A plugin hook (``start``, ``stop``, ...) raised or timed out; ``__cause__`` has why."""

    def __init__(self, message: str, plugin: str | None = None, *, hook: str = "", hint: str = "") -> None:
        self.hook = hook
        super().__init__(message, plugin, hint=hint)


class ReloadError(PluginError):
    """A reload failed; the previous version was restored and keeps running."""


class DiscoveryError(FlxError):
    """A discovery source (entry point, folder) could not be read."""

    def __init__(self, message: str, source: str = "") -> None:
        self.source = source
        super().__init__(message)


class PluginCrashedError(PluginError):
    """An isolated plugin's worker process died (or was killed after a hung call) while a call
    was in flight, or the plugin is out of restarts. ``reason`` says how it died."""

    def __init__(self, message: str, plugin: str | None = None, *, reason: str = "", hint: str = "") -> None:
        super().__init__(message, plugin, hint=hint)
        self.reason = reason


class PluginCallError(PluginError):
    """An exception raised inside an isolated plugin's worker, carried back as data: its type
    name, message and the plugin's own traceback (never the exception object itself). For a
    built-in exception type the error is also an instance of it (``except PermissionError``)."""

    def __init__(self, message: str, plugin: str | None = None, *, type_name: str = "",
                 remote_message: str = "", remote_traceback: str = "", where: str | None = None) -> None:
        super().__init__(message, plugin)
        self.type_name = type_name
        self.remote_message = remote_message
        self.remote_traceback = remote_traceback
        self.where = where
