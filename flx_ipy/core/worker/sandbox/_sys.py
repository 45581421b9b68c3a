"""ctypes access to the few Linux calls the sandbox needs (Python 3.11 has no ``os.unshare``)."""

from __future__ import annotations

import ctypes
import os
import platform
from typing import Any

_libc: ctypes.CDLL | None = None

PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
PR_SET_SECCOMP = 22


def libc() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL("libc.so.6", use_errno=True)
    return _libc


def check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def prctl(option: int, a: int = 0, b: int = 0, c: int = 0, d: int = 0) -> int:
    fn = libc().prctl
    fn.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return check(fn(option, a, b, c, d), f"prctl({option})")


def syscall(nr: int, *args: Any) -> int:
    fn = libc().syscall
    fn.restype = ctypes.c_long
    return int(fn(ctypes.c_long(nr), *args))


def is_x86_64() -> bool:
    return platform.system() == "Linux" and platform.machine() in ("x86_64", "AMD64")


def proc_status() -> dict[str, str]:
    """``/proc/self/status`` as a dict: what the kernel says is in force, read back."""
    out: dict[str, str] = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                k, _, v = line.partition(":")
                out[k] = v.strip()
    except OSError:
        pass
    return out
