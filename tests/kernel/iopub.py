"""What every real-kernel test needs: start a kernel on this checkout, record its iopub stream,
and wait (with a timeout, never a sleep) for the first message that matches."""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
Predicate = Callable[[dict[str, Any]], bool]


@contextmanager
def running_kernel(cwd: Path, **extra_env: str) -> Iterator[tuple[Any, Any]]:
    """A python3 kernel importing flx_ipy from this checkout; shut down at the end.
    ``extra_env``: e.g. ``JPY_SESSION_NAME``, which Jupyter Server sets for a notebook's kernel."""
    from jupyter_client.manager import start_new_kernel

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.pop("JPY_SESSION_NAME", None)  # headless unless the test says it is a server's kernel
    env.update(extra_env)
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(cwd), env=env)
    try:
        yield km, kc
    finally:
        kc.stop_channels()
        if km.is_alive():
            km.shutdown_kernel(now=True)


class IOPub:
    """Every iopub message seen so far, in order (tests look back as well as forward)."""

    def __init__(self, kc: Any) -> None:
        self.kc = kc
        self.seen: list[dict[str, Any]] = []

    def find(self, predicate: Predicate, timeout: float = 15.0, start: int = 0) -> tuple[int, dict[str, Any]]:
        """The first message from index ``start`` on that matches, and its index."""
        deadline = time.monotonic() + timeout
        i = start
        while True:
            while i < len(self.seen):
                if predicate(self.seen[i]):
                    return i, self.seen[i]
                i += 1
            left = deadline - time.monotonic()
            if left <= 0:
                kinds = [(m["msg_type"], m["content"].get("data", {}).get("kind")) for m in self.seen[start:]]
                raise TimeoutError(f"no matching iopub message within {timeout} s; saw {kinds}")
            try:
                self.seen.append(self.kc.get_iopub_msg(timeout=min(left, 0.2)))
            except queue.Empty:
                pass
