"""JSON views of a manager, shared by every remote face: the HTTP app, the Jupyter server
extension (computed inside the kernel, see ``kernel_snapshot``) and the CLI.

No web framework is imported here: the kernel computes these without Starlette or tornado.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["kernel_snapshot", "plugin_view", "readiness", "readyz_text"]


def _signature(rec: Any) -> Any:
    sig = getattr(rec, "signature", None)
    if sig is None:
        return None
    if hasattr(sig, "to_dict"):
        return sig.to_dict()
    return {"status": str(getattr(sig, "status", sig)), "signer": getattr(sig, "signer", None)}


def plugin_view(pm: Any, rec: Any) -> dict[str, Any]:
    current = pm.revisions.current(rec.name)
    health = rec.health
    return {
        "name": rec.name, "version": rec.version, "status": str(rec.status),
        "health": {"status": str(health.status), "message": health.message} if health is not None else None,
        "isolated": bool(getattr(rec, "isolated", False)), "signature": _signature(rec),
        "error": rec.error, "revision": current.revision if current else None,
        "reload_count": rec.reload_count, "source": rec.source,
        "requires": [str(r) for r in rec.metadata.requires],
        "last_reload": rec.last_reload.to_dict() if rec.last_reload else None,
    }


def readiness(pm: Any) -> tuple[bool, list[tuple[str, bool, str]]]:
    """``(ready, [(plugin, ok, reason)])``: every plugin that runs or was started (and not
    stopped on purpose) must be running (or in a reload) and not unhealthy."""
    checks = []
    for name, rec in sorted(pm.plugins.items()):
        status = str(rec.status)
        if not rec.want_running and status not in ("running", "reloading", "failed"):
            continue  # loaded but never started, or stopped on purpose
        if status not in ("running", "reloading"):
            checks.append((name, False, f"{status}" + (f": {rec.error}" if rec.error else "")))
        elif rec.health is not None and str(rec.health.status) == "unhealthy":
            checks.append((name, False, f"unhealthy: {rec.health.message}"))
        else:
            checks.append((name, True, "ok"))
    return all(ok for _, ok, _ in checks), checks


def readyz_text(pm: Any, verbose: bool = False) -> tuple[int, str]:
    """Kubernetes' readyz body: ``ok``; or ``[+]``/``[-]`` lines per plugin and a verdict."""
    ready, checks = readiness(pm)
    lines = []
    for name, ok, reason in checks:
        if ok and verbose:
            lines.append(f"[+]plugin:{name} ok")
        elif not ok:
            lines.append(f"[-]plugin:{name} failed: {reason}")
    if ready and not verbose:
        return 200, "ok\n"
    lines.append("readyz check passed" if ready else "readyz check failed")
    return (200 if ready else 503), "\n".join(lines) + "\n"


def kernel_snapshot(what: str = "plugins", verbose: bool = False) -> str:
    """Run inside a kernel (by the server extension, in a subshell): this kernel's manager as
    JSON. Never creates a manager: a kernel where flx_ipy never ran has no plugins."""
    from .core import manager as _manager

    pm = _manager._default
    if what == "readyz":
        if pm is None:
            return json.dumps({"status": 200, "text": "ok\n"})
        status, text = readyz_text(pm, verbose)
        return json.dumps({"status": status, "text": text})
    if pm is None:
        return json.dumps({"manager": False, "plugins": []})
    return json.dumps({"manager": True, "plugins": [plugin_view(pm, r) for _, r in sorted(pm.plugins.items())]},
                      default=str)
