"""units — converts temperatures. Other plugins require it by name and version."""

from flx_ipy import Plugin, PluginMetadata


class Units(Plugin):
    metadata = PluginMetadata(
        name="units",
        version="2.1.0",
        description="Temperature unit conversion",
        capabilities=["convert"],
    )

    def to_fahrenheit(self, celsius):
        return round(celsius * 9 / 5 + 32, 1)
