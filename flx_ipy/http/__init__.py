"""The manager over HTTP: an ASGI app (Starlette) that ``flx-ipy serve`` runs under uvicorn and
that a service can mount itself: ``app.mount("/plugins", flx_ipy.http.app(pm))``.

Needs the ``serve`` extra (``pip install flx_ipy[serve]``): Starlette, uvicorn and
prometheus_client. The endpoints (DESIGN.md, "Serving and monitoring"):

=====================================  ==========================================================
``GET  /livez``                        200 while the process serves
``GET  /readyz[?verbose]``             200 when every started plugin runs and is not unhealthy,
                                       else 503 naming the failing ones (Kubernetes' format)
``GET  /api/plugins``                  name, version, status, health, isolated, signature, ...
``GET  /api/plugins/{name}``           one plugin, with its revisions and hook timings
``POST /api/plugins/{name}/{action}``  start | stop | reload | rollback (``{"to": N}``);
                                       ``Authorization: Bearer TOKEN`` (401 without, 403 wrong)
``GET  /api/events[?replay=1]``        the manager's events as server-sent events
``GET  /metrics``                      Prometheus text format, read from ``pm.metrics()`` at scrape
=====================================  ==========================================================
"""

from __future__ import annotations

from ..snapshot import readiness
from .app import app

__all__ = ["app", "readiness"]
