"""Who asked for an operation: ``"api"``, ``"magic"``, ``"widget"``, ``"labextension"``,
``"watcher"``, ``"cli"`` or ``"http"`` — for the audit log's ``origin`` field.

The manager's operations do not take an ``origin`` argument: every face (magics, panels, the
watcher, the command line, an HTTP host) would have to thread it through, and a face added
later would forget. Instead the face sets a :mod:`contextvars` variable around the call::

    from flx_ipy.core.origin import origin_scope

    with origin_scope("http"):          # e.g. in an HTTP handler, around pm.reload(name)
        pm.reload(name)

A context variable is per thread and per asyncio task, so two faces acting at once on
different threads (a watcher thread and a kernel cell) never see each other's origin, and an
``await pm.astart(...)`` inside the scope keeps it. The manager publishes its events in the
thread (or task) that ran the operation, so an event subscriber — the audit log — reads the
origin with :func:`current_origin` at publish time. Outside any scope the origin is ``"api"``
(plain Python calling the manager).
"""

from __future__ import annotations

import contextvars
import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["ORIGINS", "current_origin", "origin_scope", "os_user"]

#: the origins DESIGN.md names (others are accepted: a host may name itself)
ORIGINS = ("api", "magic", "widget", "labextension", "watcher", "cli", "http")

_origin: contextvars.ContextVar[str] = contextvars.ContextVar("flx_ipy_origin", default="api")


def current_origin() -> str:
    """The origin of the operation running in this thread or task (``"api"`` by default)."""
    return _origin.get()


@contextmanager
def origin_scope(origin: str) -> Iterator[str]:
    """Run the body as ``origin``; nested scopes win, and the outer origin is back afterwards."""
    if not isinstance(origin, str) or not origin:
        raise ValueError(f"origin must be a non-empty string such as {', '.join(ORIGINS)}; got {origin!r}")
    token = _origin.set(origin)
    try:
        yield origin
    finally:
        _origin.reset(token)


def os_user() -> str:
    """Who runs this process (the audit log's ``actor``; the default signer's name)."""
    try:
        return getpass.getuser()
    except Exception:  # no user name here (a container without a passwd entry)
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"
