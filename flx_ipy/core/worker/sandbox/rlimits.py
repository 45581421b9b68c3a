"""Resource limits set in the worker before the plugin's first line runs.

``RLIMIT_DATA`` rather than ``RLIMIT_AS`` (native libraries misbehave under an address-space
limit: OpenBLAS exits, threads count against it — ``shared/notes/isolation.md``). Soft and hard
limits are equal, so the plugin cannot raise them back (root without ``CAP_SYS_RESOURCE`` here,
and no capabilities at all once the user namespace is in place). ``RLIMIT_CORE`` is always 0:
``core_pattern`` is ``core``, so a crash would otherwise drop a core file into the cwd.
"""

from __future__ import annotations

import resource
from collections.abc import Mapping
from typing import Any

MB = 1 << 20


def apply(limits: Mapping[str, Any]) -> dict[str, Any]:
    """Set the limits; return what reads back (the proof they are in force)."""
    wanted: list[tuple[int, int, int, str]] = [(resource.RLIMIT_CORE, 0, 0, "core")]
    if limits.get("memory_mb"):
        n = int(limits["memory_mb"]) * MB
        wanted.append((resource.RLIMIT_DATA, n, n, "data"))
    if limits.get("cpu_seconds"):
        n = int(limits["cpu_seconds"])
        wanted.append((resource.RLIMIT_CPU, n, n + 1, "cpu"))  # SIGXCPU at n, SIGKILL at n+1
    if limits.get("open_files"):
        n = int(limits["open_files"])
        wanted.append((resource.RLIMIT_NOFILE, n, n, "nofile"))
    if limits.get("file_mb"):
        n = int(limits["file_mb"]) * MB
        wanted.append((resource.RLIMIT_FSIZE, n, n, "fsize"))
    seen: dict[str, Any] = {}
    for which, soft, hard, label in wanted:
        resource.setrlimit(which, (soft, hard))
        got = resource.getrlimit(which)
        if got != (soft, hard):
            raise OSError(f"RLIMIT_{label.upper()} reads back {got}, not {(soft, hard)}")
        seen[label] = soft
    return seen
