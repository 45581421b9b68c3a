"""``/metrics``: a prometheus_client collector that reads ``pm.metrics()`` at scrape time.

Nothing is exported on the hot path (hook calls only bump counters in ``core.metrics``); the
Prometheus families are built when Prometheus asks, as the client's "custom collector" pattern
intends. Names follow Prometheus conventions (base units, ``_total`` for counters).
"""

from __future__ import annotations

from typing import Any


class PluginCollector:
    def __init__(self, pm: Any) -> None:
        self.pm = pm

    def describe(self) -> list[Any]:
        return []  # unknown until scraped: the registry then does not call collect() at register

    def collect(self) -> Any:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        pm = self.pm
        records = pm.plugins
        metrics = pm.metrics()
        up = GaugeMetricFamily("flx_ipy_plugin_up", "1 while the plugin is running", labels=["plugin"])
        info = GaugeMetricFamily("flx_ipy_plugin_info", "the plugin's version and revision (always 1)",
                                 labels=["plugin", "version", "revision", "status"])
        health = GaugeMetricFamily("flx_ipy_plugin_healthy", "1 healthy, 0.5 degraded, 0 unhealthy, "
                                   "absent when unknown", labels=["plugin"])
        reloads = CounterMetricFamily("flx_ipy_plugin_reloads", "reloads and rollbacks by outcome",
                                      labels=["plugin", "outcome"])
        reload_seconds = CounterMetricFamily("flx_ipy_plugin_reload_duration_seconds",
                                             "total time spent in reloads", labels=["plugin"])
        hooks = HistogramMetricFamily("flx_ipy_plugin_hook_duration_seconds", "plugin hook call durations",
                                      labels=["plugin", "hook"])
        errors = CounterMetricFamily("flx_ipy_plugin_hook_errors", "hook calls that raised or timed out",
                                     labels=["plugin", "hook"])
        for name, rec in sorted(records.items()):
            up.add_metric([name], 1.0 if str(rec.status) == "running" else 0.0)
            cur = pm.revisions.current(name)
            info.add_metric([name, rec.version, str(cur.revision if cur else ""), str(rec.status)], 1.0)
            h = str(rec.health.status) if rec.health is not None else "unknown"
            if h != "unknown":
                health.add_metric([name], {"healthy": 1.0, "degraded": 0.5}.get(h, 0.0))
        for name, m in sorted(metrics.items()):
            r = m["reloads"]
            for outcome in ("ok", "rolled_back", "failed"):
                reloads.add_metric([name, outcome], float(r.get(outcome, 0)))
            reload_seconds.add_metric([name], float(r["total_duration"]))
            for hook, st in sorted(m["hooks"].items()):
                buckets = [(b if isinstance(b, str) else repr(b), float(n)) for b, n in st["buckets"]]
                hooks.add_metric([name, hook], buckets, st["total"])
                errors.add_metric([name, hook], float(st["errors"]))
        yield from (up, info, health, reloads, reload_seconds, hooks, errors)


def registry_for(pm: Any) -> Any:
    from prometheus_client import CollectorRegistry, ProcessCollector

    reg = CollectorRegistry(auto_describe=False)
    reg.register(PluginCollector(pm))
    ProcessCollector(registry=reg)
    return reg


def render(pm: Any, cache: dict[str, Any]) -> tuple[bytes, str]:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    reg = cache.get("registry")
    if reg is None:
        reg = cache["registry"] = registry_for(pm)
    return generate_latest(reg), CONTENT_TYPE_LATEST
