"""A user namespace (and, without the ``net`` capability, a network namespace).

The user namespace strips a root worker of its host capabilities: what it can still do as
"root" applies only to objects its own namespace owns. All capabilities are then dropped inside
it too (bounding set, ambient, effective/permitted/inheritable), read back from
``/proc/self/status``. A new network namespace has only a loopback that is down: ``connect``
fails with ``ENETUNREACH`` for every address, the kernel's own 127.0.0.1 included.
"""

from __future__ import annotations

import ctypes
import os

from . import _sys

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
_CAP_V3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _write(path: str, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)


def unshare(net: bool) -> list[str]:
    """Enter new namespaces; returns the layer names now in force (``userns``, ``netns``)."""
    uid, gid = os.geteuid(), os.getegid()
    flags = CLONE_NEWUSER | (CLONE_NEWNET if net else 0)
    _sys.check(_sys.libc().unshare(flags), "unshare")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")
    layers = ["userns"]
    if net:
        my = os.readlink("/proc/self/ns/net")
        parent = os.readlink(f"/proc/{os.getppid()}/ns/net") if os.path.exists(f"/proc/{os.getppid()}/ns/net") else ""
        if my and my != parent:
            layers.append("netns")
    return layers


def drop_capabilities() -> bool:
    """Drop every capability; True when ``CapEff``/``CapPrm``/``CapBnd`` read back as zero."""
    last = 63
    try:
        with open("/proc/sys/kernel/cap_last_cap") as fh:
            last = int(fh.read())
    except OSError:
        pass
    for cap in range(last + 1):
        try:
            _sys.prctl(_sys.PR_CAPBSET_DROP, cap)
        except OSError:
            pass
    try:
        _sys.prctl(_sys.PR_CAP_AMBIENT, _sys.PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError:
        pass
    hdr = _CapHeader(_CAP_V3, 0)
    data = (_CapData * 2)()
    _sys.check(_sys.libc().capset(ctypes.byref(hdr), data), "capset")
    st = _sys.proc_status()
    return all(int(st.get(k, "1"), 16) == 0 for k in ("CapEff", "CapPrm", "CapBnd", "CapInh"))
