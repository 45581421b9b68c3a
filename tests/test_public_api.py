"""The public API is frozen here (as httpx's ``tests/test_exported_members.py`` does).

Adding or removing a public name is a decision: it changes this test in the same commit, so a
rename inside the core can never drop a name plugin authors and the tutorial notebooks import.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import flx_ipy
import flx_ipy.core

FLX_IPY = [
    "DependencyError",
    "Event",
    "FlxError",
    "Health",
    "HealthStatus",
    "HookError",
    "InvalidStateError",
    "LifecycleState",
    "Plugin",
    "PluginCallError",  # issue 12: an isolated plugin's method raised (carried back as data)
    "PluginContext",
    "PluginCrashedError",  # issue 12 (DESIGN.md): an isolated plugin's worker died mid-call
    "PluginError",
    "PluginLoadError",
    "PluginManager",
    "PluginMetadata",
    "PluginNotFoundError",
    "PluginState",
    "PluginValidationError",
    "ReloadError",
    "ReloadResult",
    "__version__",
    "get_manager",
    "load_ipython_extension",
    "unload_ipython_extension",
]

FLX_IPY_CORE = [
    "Event",
    "Health",
    "HealthStatus",
    "LifecycleState",
    "Plugin",
    "PluginContext",
    "PluginManager",
    "PluginMetadata",
    "PluginRecord",
    "PluginState",
    "ReloadResult",
    "Requirement",
    "get_manager",
]


def test_flx_ipy_exports_exactly_the_frozen_names() -> None:
    assert sorted(flx_ipy.__all__) == FLX_IPY


def test_flx_ipy_core_exports_exactly_the_frozen_names() -> None:
    assert sorted(flx_ipy.core.__all__) == FLX_IPY_CORE


def test_every_exported_name_is_importable_and_defined_in_the_package() -> None:
    for module, names in ((flx_ipy, FLX_IPY), (flx_ipy.core, FLX_IPY_CORE)):
        for name in names:
            value = getattr(module, name)  # AttributeError names the missing one
            owner = getattr(value, "__module__", "flx_ipy")
            assert owner.startswith("flx_ipy"), (name, owner)


def test_the_face_and_the_core_export_the_same_objects() -> None:
    for name in set(FLX_IPY) & set(FLX_IPY_CORE):
        assert getattr(flx_ipy, name) is getattr(flx_ipy.core, name), name


def test_star_import_gives_the_frozen_names_and_nothing_heavy() -> None:
    code = ("import sys\nns = {}\nexec('from flx_ipy import *', ns)\n"
            "names = sorted(k for k in ns if k != '__builtins__')\n"
            "heavy = [m for m in ('IPython', 'ipywidgets', 'comm') if m in sys.modules]\n"
            "print(names == sorted(__import__('flx_ipy').__all__), heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "[]"], out.stdout + out.stderr


def test_reload_error_is_what_a_failed_result_raises() -> None:
    ok = flx_ipy.ReloadResult(plugin="p", ok=True)
    assert ok.raise_for_error() is ok
    failed = flx_ipy.ReloadResult(plugin="p", ok=False, rolled_back=True, phase="compile",
                                  error="SyntaxError: invalid syntax", where="p.py:3")
    with pytest.raises(flx_ipy.ReloadError, match=r"reload failed in compile at p\.py:3") as info:
        failed.raise_for_error()
    assert info.value.result is failed and info.value.plugin == "p"
    assert "previous version still running" in str(info.value) and isinstance(info.value, flx_ipy.PluginError)
