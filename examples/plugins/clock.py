"""clock — a plugin with async hooks and a health check (used by notebooks/02).

``start`` is ``async def``: it pretends to connect to a time server. The manager awaits it, both
from ``await pm.astart("clock")`` and from a top-level ``%plugin start clock``.
"""

import asyncio
import time

from flx_ipy import HealthStatus, Plugin, PluginMetadata


class Clock(Plugin):
    metadata = PluginMetadata(
        name="clock",
        version="1.2.0",
        description="Hands out timestamps; starts asynchronously",
        capabilities=["time"],
    )

    def initialize(self, ctx):
        super().initialize(ctx)  # keeps ctx on self.ctx: config, logger, deps, data_dir
        self.drift_ms = ctx.config.get("drift_ms", 0)
        self.connected = False

    async def start(self):
        await asyncio.sleep(0.05)  # "connect to the time server" without blocking the kernel's loop
        self.connected = True
        self.ctx.logger.info("clock connected")

    async def stop(self):
        await asyncio.sleep(0)
        self.connected = False

    def now(self):
        return time.time() + self.drift_ms / 1000

    def health_check(self):
        if not self.connected:
            return HealthStatus.unhealthy("not connected to the time server")
        if abs(self.drift_ms) > 500:
            return HealthStatus.degraded(f"clock drifts by {self.drift_ms} ms")
        return HealthStatus.healthy(f"connected, drift {self.drift_ms} ms")
