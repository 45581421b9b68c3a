"""alarm — a plugin that requires another one (used by notebooks/02).

``requires=["clock>=1.0"]``: the manager starts ``clock`` before ``alarm``, stops it after, and
hands the live clock to ``alarm`` as ``ctx.deps["clock"]``.
"""

from flx_ipy import HealthStatus, Plugin, PluginMetadata


class Alarm(Plugin):
    metadata = PluginMetadata(
        name="alarm",
        version="0.3.0",
        description="Rings when a deadline passes",
        requires=["clock>=1.0"],
    )

    def start(self):
        self.clock = self.ctx.deps["clock"]
        self.deadlines = getattr(self, "deadlines", {})

    def set(self, label, seconds_from_now):
        self.deadlines[label] = self.clock.now() + seconds_from_now
        return label

    def due(self):
        now = self.clock.now()
        return sorted(label for label, t in self.deadlines.items() if t <= now)

    def health_check(self):
        overdue = self.due()
        if overdue:
            return HealthStatus.degraded(f"{len(overdue)} alarm(s) overdue: {', '.join(overdue)}")
        return HealthStatus.healthy(f"{len(self.deadlines)} alarm(s) set")
