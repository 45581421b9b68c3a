"""Landlock: writes only under the plugin's data folder and declared ``fs.write:`` paths, and
(without ``net``) no TCP bind/connect; abstract-socket and signal scoping where the ABI has it.

Reads stay allowed (the interpreter and the plugin's own files must import). Rules are checked
by the kernel at ``open``/``mkdir``/``unlink``/… time, so they hold for ``ctypes`` calls into
libc too — there is no Python in the path to bypass.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable

from . import _sys

SYS_CREATE, SYS_ADD_RULE, SYS_RESTRICT = 444, 445, 446  # same on x86_64 and aarch64
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1

WRITE_FILE, REMOVE_DIR, REMOVE_FILE = 1 << 1, 1 << 4, 1 << 5
MAKE_CHAR, MAKE_DIR, MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = (1 << i for i in range(6, 13))
REFER, TRUNCATE = 1 << 13, 1 << 14
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX, SCOPE_SIGNAL = 1 << 0, 1 << 1
_FILE_RIGHTS_MASK = WRITE_FILE | TRUNCATE | (1 << 0) | (1 << 2)  # rights valid on a non-directory


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def abi() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is absent or disabled."""
    ret = _sys.syscall(SYS_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(CREATE_RULESET_VERSION))
    return max(ret, 0)


def restrict(write_paths: Iterable[str], deny_tcp: bool) -> dict[str, object]:
    """Restrict this process (and its future children) for good. Returns what was handled."""
    version = abi()
    if version < 1:
        raise OSError("Landlock is not available in this kernel")
    fs = WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_CHAR | MAKE_DIR | MAKE_REG | MAKE_SOCK \
        | MAKE_FIFO | MAKE_BLOCK | MAKE_SYM
    if version >= 2:
        fs |= REFER
    if version >= 3:
        fs |= TRUNCATE
    net = (NET_BIND_TCP | NET_CONNECT_TCP) if deny_tcp and version >= 4 else 0
    scoped = (SCOPE_ABSTRACT_UNIX | SCOPE_SIGNAL) if version >= 6 else 0
    attr = _RulesetAttr(fs, net, scoped)
    size = 24 if version >= 6 else 16 if version >= 4 else 8
    fd = _sys.syscall(SYS_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if fd < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    allowed: list[str] = []
    try:
        for path in write_paths:
            try:
                pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # a declared path that does not exist grants nothing
            try:
                rights = fs if os.path.isdir(path) else fs & _FILE_RIGHTS_MASK
                rule = _PathBeneath(rights, pfd)
                if _sys.syscall(SYS_ADD_RULE, ctypes.c_int(fd), ctypes.c_int(RULE_PATH_BENEATH),
                                ctypes.byref(rule), ctypes.c_uint32(0)) < 0:
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule({path}) failed")
                allowed.append(path)
            finally:
                os.close(pfd)
        _sys.prctl(_sys.PR_SET_NO_NEW_PRIVS, 1)
        if _sys.syscall(SYS_RESTRICT, ctypes.c_int(fd), ctypes.c_uint32(0)) < 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(fd)
    return {"abi": version, "writable": allowed, "tcp_denied": bool(net), "scoped": bool(scoped)}


def probe_denied(folder: str) -> bool:
    """Try to create a file where writes must now fail: True when the kernel refuses it."""
    path = os.path.join(folder, f".flx_ipy-landlock-probe-{os.getpid()}")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except PermissionError:
        return True
    except OSError:
        return False  # a different failure proves nothing
    os.close(fd)
    os.unlink(path)
    return False
