"""``grpc.health.v1`` for service meshes that probe gRPC health (extra ``flx_ipy[grpc]``).

One service name per plugin (the plugin's name) plus ``""`` for the whole process, as the
standard health protocol defines it. A plugin is ``SERVING`` exactly when ``/readyz`` counts it
as ready (running or reloading, and not unhealthy); the process is ``SERVING`` when ``/readyz``
says 200. Statuses are pushed on every manager event (health rounds emit ``health_changed``), so
``Watch`` streams see a change when it happens and ``Check`` costs a dict lookup.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .snapshot import readiness

__all__ = ["PluginHealthService"]


class PluginHealthService:
    def __init__(self, pm: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        import grpc
        from grpc_health.v1 import health, health_pb2, health_pb2_grpc

        self.pm = pm
        self._pb2 = health_pb2
        self.servicer = health.HealthServicer(experimental_non_blocking=True)
        self.server = grpc.server(ThreadPoolExecutor(max_workers=4, thread_name_prefix="flx_ipy-grpc"))
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, self.server)
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.port = self.server.add_insecure_port(target)
        if not self.port:
            raise OSError(f"cannot listen on {target} for gRPC")
        self.host = host
        self._known: set[str] = set()
        self._lock = threading.Lock()
        self._unsubscribe: Any = None

    def start(self) -> PluginHealthService:
        self.refresh()
        self._unsubscribe = self.pm.subscribe(lambda _ev: self.refresh())
        self.server.start()
        return self

    def refresh(self) -> None:
        serving = self._pb2.HealthCheckResponse.SERVING
        not_serving = self._pb2.HealthCheckResponse.NOT_SERVING
        with self._lock:
            ready, checks = readiness(self.pm)
            ok = {name: good for name, good, _ in checks}
            names = set(self.pm.plugins)
            for name in names:
                self.servicer.set(name, serving if ok.get(name) else not_serving)
            for gone in self._known - names:
                self.servicer.set(gone, self._pb2.HealthCheckResponse.SERVICE_UNKNOWN)
            self._known = names
            self.servicer.set("", serving if ready else not_serving)

    def stop(self, grace: float = 1.0) -> None:
        """Everything NOT_SERVING first (the mesh stops routing), then close the server."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.servicer.enter_graceful_shutdown()
        self.server.stop(grace).wait(grace + 1)
