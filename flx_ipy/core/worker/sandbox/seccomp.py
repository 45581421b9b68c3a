"""A hand-built seccomp-bpf filter: ``socket()`` and/or ``execve`` fail with ``EPERM``.

``ERRNO(EPERM)`` rather than a kill, so the plugin sees ``PermissionError`` and keeps running.
``socketpair()`` (a different syscall) still works, and the worker's own channel was opened
before the filter. ``io_uring_setup`` is refused too (io_uring can open sockets without the
``socket`` syscall), and so is every x32 or 32-bit syscall (other numbers, other meanings).
x86_64 only; elsewhere this layer is reported unavailable.
"""

from __future__ import annotations

import ctypes
import errno

from . import _sys

SECCOMP_MODE_FILTER = 2
AUDIT_ARCH_X86_64 = 0xC000003E
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000
LD_ABS_W, JEQ_K, JGE_K, RET_K = 0x20, 0x15, 0x35, 0x06
NR_SOCKET, NR_EXECVE, NR_EXECVEAT, NR_IO_URING_SETUP = 41, 59, 322, 425
X32_BIT = 0x40000000


class _Filter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class _Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_Filter))]


def build(deny_socket: bool, deny_exec: bool) -> list[tuple[int, int, int, int]]:
    denied = [NR_IO_URING_SETUP]
    if deny_socket:
        denied.append(NR_SOCKET)
    if deny_exec:
        denied += [NR_EXECVE, NR_EXECVEAT]
    # layout: 0 ld arch; 1 jeq x86_64; 2 ld nr; 3 jge x32; 4.. jeq each; allow; deny
    n = 4 + len(denied)
    allow, deny = n, n + 1
    prog = [(LD_ABS_W, 0, 0, 4), (JEQ_K, 0, deny - 2, AUDIT_ARCH_X86_64), (LD_ABS_W, 0, 0, 0),
            (JGE_K, deny - 4, 0, X32_BIT)]
    for i, nr in enumerate(denied):
        prog.append((JEQ_K, deny - (5 + i), 0, nr))
    prog += [(RET_K, 0, 0, RET_ALLOW), (RET_K, 0, 0, RET_ERRNO | errno.EPERM)]
    assert len(prog) == deny + 1
    assert prog[allow][3] == RET_ALLOW
    return prog


def install(deny_socket: bool, deny_exec: bool) -> list[str]:
    """Install the filter for good; returns what it denies. Needs ``no_new_privs`` (set here)."""
    if not _sys.is_x86_64():
        raise OSError("the seccomp filter is built for x86_64 only")
    prog = build(deny_socket, deny_exec)
    arr = (_Filter * len(prog))(*[_Filter(*f) for f in prog])
    fprog = _Prog(len(prog), arr)
    _sys.prctl(_sys.PR_SET_NO_NEW_PRIVS, 1)
    fn = _sys.libc().prctl
    fn.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    _sys.check(fn(_sys.PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0), "seccomp")
    return (["socket"] if deny_socket else []) + (["exec"] if deny_exec else []) + ["io_uring"]
