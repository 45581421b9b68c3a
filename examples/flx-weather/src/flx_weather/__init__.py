"""flx-weather: example flx_ipy plugins distributed as a package (see pyproject.toml)."""

__version__ = "1.2.0"
