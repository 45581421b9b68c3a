"""A cgroup v1 memory ceiling for one worker, where this machine lets us make one.

An rlimit stops Python's allocations cleanly, but native code can map memory around it; the
memory controller cannot be dodged (over the ceiling the kernel OOM-kills the worker, and the
kernel of the notebook lives on). Created by the kernel under its own memory cgroup; cgroup v2
here has no memory controller, so v1 is all there is.
"""

from __future__ import annotations

import itertools
import os

_ROOT = "/sys/fs/cgroup/memory"
_seq = itertools.count(1)


def own_memory_cgroup() -> str | None:
    try:
        with open("/proc/self/cgroup") as fh:
            for line in fh:
                _, ctrls, rel = line.rstrip("\n").split(":", 2)
                if "memory" in ctrls.split(","):
                    path = os.path.join(_ROOT, rel.lstrip("/"))
                    return path if os.access(path, os.W_OK) else None
    except (OSError, ValueError):
        pass
    return None


class MemoryCgroup:
    def __init__(self, path: str, limit_bytes: int) -> None:
        self.path = path
        self.limit = limit_bytes

    @classmethod
    def create(cls, label: str, limit_bytes: int) -> MemoryCgroup:
        base = own_memory_cgroup()
        if base is None:
            raise OSError("no writable cgroup v1 memory controller for this process")
        path = os.path.join(base, f"flx_ipy-{label}-{os.getpid()}-{next(_seq)}")
        os.mkdir(path)
        cg = cls(path, limit_bytes)
        try:
            cg.write("memory.limit_in_bytes", str(limit_bytes))
            got = int(cg.read("memory.limit_in_bytes"))
            if got > limit_bytes:
                raise OSError(f"memory.limit_in_bytes reads back {got}")
        except BaseException:
            cg.remove()
            raise
        return cg

    def write(self, name: str, value: str) -> None:
        with open(os.path.join(self.path, name), "w") as fh:
            fh.write(value)

    def read(self, name: str) -> str:
        with open(os.path.join(self.path, name)) as fh:
            return fh.read().strip()

    def add(self, pid: int) -> bool:
        """Move ``pid`` in; True when ``/proc/PID/cgroup`` reads back this group."""
        self.write("cgroup.procs", str(pid))
        rel = os.path.relpath(self.path, _ROOT)
        with open(f"/proc/{pid}/cgroup") as fh:
            return any(line.split(":", 2)[2].strip().lstrip("/") == rel
                       for line in fh if "memory" in line.split(":", 2)[1].split(","))

    def oom_killed(self) -> bool:
        try:
            for line in self.read("memory.oom_control").splitlines():
                k, _, v = line.partition(" ")
                if k == "oom_kill" and int(v) > 0:
                    return True
            return int(self.read("memory.failcnt")) > 0 and int(self.read("memory.max_usage_in_bytes")) >= self.limit
        except (OSError, ValueError):
            return False

    def remove(self) -> None:
        try:
            os.rmdir(self.path)
        except OSError:
            pass
