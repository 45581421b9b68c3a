"""A worker's error reply as an exception of the kernel's own making.

The reply is data (type name, message, the plugin's traceback as text); the exception raised
here is built in the kernel, never an object the worker chose. For a built-in exception type it
is also an instance of that type, so ``except PermissionError:`` works across the boundary.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

from ..errors import PluginCallError

_remote_types: dict[str, type[PluginCallError]] = {}


def remote_error(plugin: str, reply: Mapping[str, Any], what: str) -> Exception:
    """The worker's error as an exception of ours; never an object the worker built."""
    type_name = str(reply.get("type") or "Exception")
    message = str(reply.get("message") or "")
    if reply.get("not_plain"):
        return TypeError(message)
    text = f"{what} raised {type_name}: {message}" if what else f"{type_name}: {message}"
    cls = _remote_types.get(type_name)
    if cls is None:
        base = getattr(builtins, type_name, None)
        cls = PluginCallError
        if isinstance(base, type) and issubclass(base, Exception) and base.__module__ == "builtins":
            try:
                cls = type(f"Remote{type_name}", (PluginCallError, base), {"__str__": PluginCallError.__str__})
                cls(text, plugin)  # some built-ins need other constructor arguments
            except Exception:
                cls = PluginCallError
        _remote_types[type_name] = cls
    return cls(text, plugin, type_name=type_name, remote_message=message,
               remote_traceback=str(reply.get("traceback") or ""), where=reply.get("where"))
