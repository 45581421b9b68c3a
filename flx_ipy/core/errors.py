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
     │    ├── ReloadError                            a reload failed (``ReloadResult.raise_for_error``)
     │    ├── PluginCrashedError                     an isolated plugin's worker died mid-call
     │    └── PluginCallError (+ the builtin type)   an isolated plugin's method raised

A reload never raises for a broken plugin: it returns a ``ReloadResult`` (the old version keeps
running); a caller that wants an exception asks for one with ``result.raise_for_error()``.
Discovery never raises for one broken plugin either: it lists the error beside the others.

``one_line`` and ``plugin_traceback`` are how every layer shows an error: one line for the
magics and panels, and only the plugin's own frames when the author asks for more.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Sequence
from typing import Any

from .files import norm


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
    """A reload failed (raised by ``ReloadResult.raise_for_error``); ``result`` is the outcome:
    ``result.rolled_back`` tells whether the previous version keeps running."""

    def __init__(self, message: str, plugin: str | None = None, *, result: Any = None, hint: str = "") -> None:
        self.result = result
        super().__init__(message, plugin, hint=hint)


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


def one_line(exc: BaseException) -> str:
    """``exc`` as the one line a user reads: our own errors as written, anything else as
    ``Type: first line`` (a plugin's multi-line message would break a table row)."""
    if isinstance(exc, FlxError):
        return str(exc)
    if isinstance(exc, SyntaxError) and exc.msg:  # its str() repeats the location we add
        return f"{type(exc).__name__}: {exc.msg}"
    msg = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[0]}" if msg else type(exc).__name__


def plugin_traceback(exc: BaseException, files: Iterable[str]) -> tuple[str, str | None]:
    """The plugin's own frames of ``exc`` (never flx_ipy's), and the innermost ``file:line``:
    a plugin author debugs their code, not the manager's."""
    if isinstance(exc, PluginCallError) and exc.remote_traceback:  # raised in an isolated plugin's worker
        return exc.remote_traceback, exc.where
    wanted = {norm(f) for f in files}
    if isinstance(exc, SyntaxError) and exc.filename:
        where: str | None = f"{exc.filename}:{exc.lineno}"
        return "".join(traceback.format_exception_only(type(exc), exc)), where
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if norm(f.filename) in wanted]
    cause = exc.__cause__ or exc.__context__
    if not frames and cause is not None and cause.__traceback__ is not None:
        frames = [f for f in traceback.extract_tb(cause.__traceback__) if norm(f.filename) in wanted]
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else None
    text = "Traceback (plugin frames only):\n" + "".join(traceback.format_list(frames)) if frames else ""
    return text + "".join(traceback.format_exception_only(type(exc), exc)), where
