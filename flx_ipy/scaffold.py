"""``flx-ipy new NAME``: the fastest way to a plugin that installs, validates and is tested.

Writes ``NAME/`` with ``pyproject.toml`` (a ``flx_ipy.plugins`` entry point, hatchling build),
``src/PKG/plugin.py`` (every hook stubbed and explained in one line), ``tests/`` written with
``flx_ipy.testing``, a README and ``notebooks/try_it.ipynb`` that loads and watches the plugin.
Nothing is overwritten: an existing non-empty folder is refused.
"""

from __future__ import annotations

import json
import keyword
import re
from pathlib import Path

from ._version import __version__

__all__ = ["new_project"]

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")

_PLUGIN = '''"""{title}: a flx_ipy plugin. Edit and save while it runs: the running plugin becomes the new code."""

from __future__ import annotations

from flx_ipy import HealthStatus, Plugin, PluginContext, PluginMetadata, PluginState


class {cls}(Plugin):
    # read without importing this file (discovery, `flx-ipy validate`): keep it a literal call
    metadata = PluginMetadata(name="{name}", version="0.1.0", description="{title}", requires=[])

    def initialize(self, ctx: PluginContext) -> None:
        """Once, before the first start: read ctx.config, keep ctx.logger, find ctx.deps."""
        self.ctx = ctx
        self.count = getattr(self, "count", 0)  # attributes survive a hot reload as they are

    def start(self) -> None:
        """Begin working (open resources, start tasks); also runs after each hot reload."""
        self.ctx.logger.info("{name} started")

    def stop(self) -> None:
        """Undo start(): close what it opened; runs before each hot reload and on unload."""

    def health_check(self) -> HealthStatus:
        """Say how you are; a check that raises or hangs counts as unhealthy."""
        return HealthStatus.healthy(f"{{self.count}} calls")

    def save_state(self) -> PluginState:
        """Hand your state to the next version of this code (before a reload)."""
        return PluginState(plugin_id=self.metadata.name, version=self.metadata.version,
                           runtime_data={{"count": self.count}})

    def restore_state(self, state: PluginState) -> None:
        """Take the state the previous version handed over (after a reload)."""
        self.count = state.runtime_data.get("count", 0)

    def hello(self) -> str:
        """An ordinary method: call it on `pm.get("{name}")`; edit it and save to see the new code."""
        self.count += 1
        return f"hello #{{self.count}} from {name}"
'''

_TESTS = '''"""Tests for the {name} plugin, run the way flx_ipy tests its own plugins (`pytest`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flx_ipy import PluginManager
from flx_ipy.core.validators import validate_path
from flx_ipy.testing import write_plugin

PROJECT = Path(__file__).resolve().parent.parent
PLUGIN = PROJECT / "src" / "{pkg}" / "plugin.py"


@pytest.fixture
def pm():
    manager = PluginManager(entry_points=False)
    yield manager
    manager.close()


def test_the_project_validates() -> None:
    result = validate_path(PROJECT)
    assert result.ok, str(result)


def test_lifecycle_and_health(pm: PluginManager) -> None:
    rec = pm.load(str(PLUGIN), start=True)
    assert rec.status == "running"
    assert pm.get("{name}").hello() == "hello #1 from {name}"
    assert pm.health("{name}").status == "healthy"
    pm.stop("{name}")
    assert pm.status("{name}") == "stopped"


def test_a_hot_edit_keeps_the_state(pm: PluginManager, tmp_path: Path) -> None:
    copy = tmp_path / "plugin.py"
    shutil.copy(PLUGIN, copy)
    pm.load(str(copy), start=True)
    live = pm.get("{name}")
    live.hello()
    write_plugin(copy, copy.read_text().replace('f"hello #', 'f"hi #'))
    result = pm.reload("{name}")
    assert result.ok, result.error
    assert live.hello() == "hi #2 from {name}"  # same object, new code, count kept
'''

_PYPROJECT = '''[build-system]
requires = ["hatchling>=1.21"]
build-backend = "hatchling.build"

[project]
name = "{dist}"
version = "0.1.0"
description = "{title}: a flx_ipy plugin"
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["flx_ipy>={flx_version}"]

[project.optional-dependencies]
test = ["pytest>=8"]

# how flx_ipy finds the plugin once the package is installed: `%plugin load {name}`
[project.entry-points."flx_ipy.plugins"]
{name} = "{pkg}.plugin:{cls}"

[tool.hatch.build.targets.wheel]
packages = ["src/{pkg}"]

[tool.pytest.ini_options]
testpaths = ["tests"]
'''

_README = '''# {dist}

A [flx_ipy](https://pypi.org/project/flx_ipy/) plugin, `{name}`.

```bash
pip install -e ".[test]"     # installs the plugin (entry point `{name}`) in editable mode
flx-ipy validate .           # every problem, with the fix; runs no plugin code
pytest                       # its tests
```

In a notebook (or open `notebooks/try_it.ipynb`):

```python
%load_ext flx_ipy
%plugin load {name} --start
%plugin watch
p = %plugin get {name}
p.hello()          # now edit src/{pkg}/plugin.py, save, call it again
```

Ship it signed: `flx-ipy keygen ~/.ssh/flx_ipy_ed25519`, then
`flx-ipy sign src/{pkg} --key ~/.ssh/flx_ipy_ed25519`; users trust your key in their
`allowed_signers` file and load with `c.PluginMagics.signature_policy = "require"`.
'''


def _notebook(name: str, pkg: str) -> str:
    def code(src: str) -> dict[str, object]:
        return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": src}

    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": f"# Try `{name}`\n\nLoad it, watch it, then edit "
         f"`src/{pkg}/plugin.py` and save: the running plugin becomes the new code."},
        code("%load_ext flx_ipy"),
        code(f"%plugin load ../src/{pkg}/plugin.py --start\n%plugin watch"),
        code(f"p = %plugin get {name}\np.hello()"),
        code("%plugin list"),
    ]
    nb = {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                      "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(nb, indent=1) + "\n"


def new_project(name: str, parent: str | Path = ".") -> Path:
    """Write the project ``parent/name``; returns its folder. Raises ``ValueError`` (bad name)
    or ``FileExistsError`` (the folder exists and is not empty) before writing anything."""
    if not _NAME.match(name):
        raise ValueError(f"{name!r} is not a plugin name: use letters, digits, '_' and '-', starting with a letter")
    pkg = name.replace("-", "_").lower()
    if keyword.iskeyword(pkg):
        raise ValueError(f"{name!r} is a Python keyword; choose another name")
    root = Path(parent).expanduser().resolve() / name
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} already exists and is not empty (nothing was written)")
    cls = "".join(part.capitalize() for part in pkg.split("_") if part) or "MyPlugin"
    fields = {"name": pkg, "pkg": pkg, "cls": cls, "dist": name, "title": name.replace("_", " ").replace("-", " "),
              "flx_version": __version__}
    files = {
        "pyproject.toml": _PYPROJECT.format(**fields),
        "README.md": _README.format(**fields),
        f"src/{pkg}/__init__.py": (f'"""The {pkg} plugin package."""\n\nfrom .plugin import {cls}\n\n'
                                   f'__all__ = ["{cls}"]\n'),
        f"src/{pkg}/plugin.py": _PLUGIN.format(**fields),
        "tests/test_plugin.py": _TESTS.format(**fields),
        "notebooks/try_it.ipynb": _notebook(pkg, pkg),
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root
