"""weather — a station that records readings; requires the ``units`` plugin, version 2 or later."""

from flx_ipy import HealthStatus, Plugin, PluginMetadata, PluginState


class WeatherStation(Plugin):
    metadata = PluginMetadata(
        name="weather",
        version="1.2.0",
        description="Records temperature readings",
        requires=["units>=2.0"],
        capabilities=["readings"],
    )

    def start(self):
        self.units = self.ctx.deps["units"]
        self.readings = getattr(self, "readings", [])

    def record(self, celsius):
        self.readings.append(celsius)
        return len(self.readings)

    def report(self):
        if not self.readings:
            return "no readings yet"
        last = self.readings[-1]
        return f"{len(self.readings)} readings, last {last} °C = {self.units.to_fahrenheit(last)} °F"

    def health_check(self):
        if not self.readings:
            return HealthStatus.degraded("no readings yet")
        return HealthStatus.healthy(f"{len(self.readings)} readings")

    def save_state(self):
        return PluginState("weather", self.metadata.version, runtime_data={"readings": self.readings})

    def restore_state(self, state):
        self.readings = list(state.runtime_data["readings"])
