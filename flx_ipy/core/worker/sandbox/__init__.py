"""The worker's protections, applied in the worker before the plugin's module runs its first
line, each one in its own module and each one read back before it is reported.

Order matters: namespaces first (writing the uid map needs a writable ``/proc``), then the
capability drop, rlimits, Landlock and last seccomp (it would refuse the calls the others need).
``enforced`` lists only layers whose effect was read back from the kernel; a layer that could
not be put in place is named in ``unavailable`` with the reason, never claimed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Policy:
    """What a plugin may do, from its declared capabilities (``net``, ``subprocess``,
    ``fs.write:PATH``) and the limits the loader asked for."""

    data_dir: str
    net: bool = False
    subprocess: bool = False
    write_paths: list[str] = field(default_factory=list)
    limits: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_capabilities(cls, capabilities: list[str], data_dir: str,
                          limits: Mapping[str, Any] | None = None) -> Policy:
        writes = [os.path.abspath(os.path.expanduser(c.partition(":")[2]))
                  for c in capabilities if c.startswith("fs.write:") and c.partition(":")[2]]
        return cls(data_dir=data_dir, net="net" in capabilities, subprocess="subprocess" in capabilities,
                   write_paths=writes, limits=dict(limits or {}))

    def to_dict(self) -> dict[str, Any]:
        return {"data_dir": self.data_dir, "net": self.net, "subprocess": self.subprocess,
                "write_paths": list(self.write_paths), "limits": dict(self.limits)}


@dataclass
class Applied:
    enforced: list[str] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"enforced": list(self.enforced), "unavailable": dict(self.unavailable),
                "details": dict(self.details)}


def _why(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def apply(policy: Policy) -> Applied:
    """Put every available layer in place for ``policy``; report what really holds."""
    out = Applied()
    if not sys.platform.startswith("linux"):
        out.unavailable["all"] = f"OS-level isolation is implemented for Linux only (this is {sys.platform})"
        return out
    from . import _sys, landlock, rlimits, seccomp, userns

    os.makedirs(policy.data_dir, exist_ok=True)
    try:
        out.enforced += userns.unshare(net=not policy.net)
        if not policy.net and "netns" not in out.enforced:
            out.unavailable["netns"] = "the network namespace did not read back as new"
        if userns.drop_capabilities():
            out.enforced.append("no-capabilities")
        else:
            out.unavailable["no-capabilities"] = "capabilities did not read back as zero"
    except Exception as e:
        out.unavailable["userns"] = _why(e)
    try:
        out.details["rlimits"] = rlimits.apply(policy.limits)
        out.enforced.append("rlimits")
    except Exception as e:
        out.unavailable["rlimits"] = _why(e)
    try:
        info = landlock.restrict([policy.data_dir, *policy.write_paths, "/dev/null"],
                                 deny_tcp=not policy.net)
        parent = os.path.dirname(os.path.abspath(policy.data_dir)) or "/"
        if landlock.probe_denied(parent):
            out.enforced.append("landlock")
            if info["tcp_denied"]:
                out.enforced.append("landlock-tcp")
            out.details["landlock"] = info
        else:
            out.unavailable["landlock"] = f"a write probe in {parent} was not refused"
    except Exception as e:
        out.unavailable["landlock"] = _why(e)
    deny_socket, deny_exec = not policy.net, not policy.subprocess
    try:
        out.details["seccomp"] = seccomp.install(deny_socket, deny_exec)
        st = _sys.proc_status()
        if st.get("Seccomp") == "2" and st.get("NoNewPrivs") == "1":
            out.enforced.append("seccomp")
        else:
            out.unavailable["seccomp"] = f"/proc/self/status says Seccomp={st.get('Seccomp')}"
    except Exception as e:
        out.unavailable["seccomp"] = _why(e)
    return out
