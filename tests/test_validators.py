"""Validation lists every problem at once, each with its field, where it is, and the fix."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from flx_ipy import Plugin, PluginMetadata, PluginValidationError
from flx_ipy.core.validators import (
    Problem,
    ValidationResult,
    Validator,
    validate_metadata,
    validate_path,
    validate_plugin_class,
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def fields(result: ValidationResult) -> list[str]:
    return [p.field for p in result.problems]


class Good(Plugin):
    metadata = PluginMetadata(name="good", version="1.0.0")

    def initialize(self, ctx: Any) -> None: ...
    def start(self) -> None: ...
    def save_state(self) -> Any: ...
    def restore_state(self, state: Any) -> None: ...


class AsyncGood(Plugin):
    metadata = PluginMetadata(name="async_good", version="1.0.0")

    async def initialize(self, ctx: Any) -> None: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def health_check(self) -> Any: ...


class Flexible(Plugin):
    metadata = PluginMetadata(name="flexible")

    def initialize(self, ctx: Any, extra: Any = None, *, flag: bool = False) -> None: ...
    def start(self, *args: Any) -> None: ...
    @staticmethod
    def stop() -> None: ...
    @classmethod
    def health_check(cls) -> Any: ...


@pytest.mark.parametrize("cls", [Good, AsyncGood, Flexible], ids=["sync", "async", "defaults-varargs-static"])
def test_well_formed_plugins_pass(cls: type) -> None:
    result = validate_plugin_class(cls)
    assert result.ok, str(result)
    assert bool(result)
    assert str(result).endswith(": ok")
    result.raise_if_problems()  # does nothing


def test_every_problem_is_listed_with_field_and_fix() -> None:
    class Bad(Plugin):
        metadata = PluginMetadata(name="bad")

        def initialize(self) -> None: ...  # missing ctx
        def start(self, when: Any) -> None: ...  # one too many
        stop = 3
        async def health_check(self, *, deep: bool) -> Any: ...  # required keyword-only
        def save_state(self) -> Any: ...  # without restore_state

    result = validate_plugin_class(Bad)
    assert sorted(fields(result)) == ["hook health_check", "hook initialize", "hook restore_state",
                                      "hook start", "hook stop"]
    by_field = {p.field: p for p in result.problems}
    assert "takes 0 positional argument(s) besides self, but the manager calls it with 1" in \
        by_field["hook initialize"].message
    assert by_field["hook initialize"].fix == "def initialize(self, ctx: PluginContext) -> None"
    assert by_field["hook health_check"].fix.startswith("async def health_check(self)")
    assert "deep" in by_field["hook health_check"].message
    assert "restore_state" in by_field["hook restore_state"].fix
    assert by_field["hook start"].file == __file__
    assert by_field["hook start"].line
    text = str(result)
    assert text.splitlines()[0].endswith("Bad: 5 problems")
    assert all(f"{p.field}: " in text and p.fix in text for p in result.problems)


def test_not_a_plugin_no_metadata() -> None:
    class Plain:
        def start(self, extra: Any) -> None: ...

    result = validate_plugin_class(Plain)
    assert fields(result) == ["base class", "metadata", "hook start"]
    assert "class Plain(Plugin)" in result.problems[0].fix
    assert "PluginMetadata(name=" in result.problems[1].fix


def test_restore_without_save_and_generators() -> None:
    class Gen(Plugin):
        metadata = {"name": "bad name", "version": "x"}  # type: ignore[assignment]

        def start(self) -> Any:
            yield 1

        async def stop(self) -> Any:
            yield 1

        def restore_state(self, state: Any) -> None: ...

    result = validate_plugin_class(Gen)
    by_field = {p.field: p for p in result.problems}
    assert "generator" in by_field["hook start"].message
    assert "async generator" in by_field["hook stop"].message
    assert "never receive" in by_field["hook save_state"].message
    assert {"metadata", "metadata.name", "metadata.version"} <= set(by_field)


def test_not_a_class_is_one_clear_problem() -> None:
    result = validate_plugin_class(Good())
    assert fields(result) == ["target"]
    assert "not a class" in result.problems[0].message


def test_raise_if_problems_names_target_and_every_problem() -> None:
    class Two(Plugin):
        def start(self, x: Any) -> None: ...

    result = validate_plugin_class(Two)
    with pytest.raises(PluginValidationError) as info:
        result.raise_if_problems("two")
    err = info.value
    assert err.plugin == "two"
    assert err.problems == result.problems
    assert len(err.problems) == 2
    assert "Two" in str(err)
    assert "metadata" in str(err)
    assert "hook start" in str(err)
    assert isinstance(err, ValueError)


def test_validator_pipeline_is_extensible_and_isolates_a_crashing_check() -> None:
    v = Validator.default()

    @v.add_check
    def needs_description(cls: type) -> list[Problem]:
        md = cls.metadata  # type: ignore[attr-defined]
        return [] if md.description else [Problem("metadata.description", "empty", 'description="..."')]

    def crashes(cls: type) -> list[Problem]:
        raise RuntimeError("boom")

    v.add_check(crashes)
    result = v.validate(Good)
    assert fields(result) == ["metadata.description", "check crashes"]
    assert "boom" in result.problems[1].message
    assert Validator([]).validate(object).ok
    assert len(Validator.default().checks) == 4  # add_check did not leak into the default


def test_validate_metadata_lists_all_problems() -> None:
    result = validate_metadata({"name": "9lives", "version": "one", "requires": ["ok>=1", "bad>>"],
                                "capabilities": [""], "colour": "red"})
    assert sorted(fields(result)) == ["capabilities", "colour", "name", "requires", "version"]
    assert all(p.fix for p in result.problems if p.field != "colour")
    assert "version=" in {p.field: p for p in result.problems}["version"].fix
    assert validate_metadata({}).problems[0].message.startswith("missing")
    assert validate_metadata(PluginMetadata(name="fine", version="2.0")).ok
    assert not validate_metadata(42).ok  # type: ignore[arg-type]


def test_problem_str() -> None:
    p = Problem("hook start", "takes 1", "def start(self) -> None", "/x/p.py", 12)
    assert str(p) == "/x/p.py:12: hook start: takes 1 (fix: def start(self) -> None)"
    assert str(Problem("name", "bad")) == "name: bad"


PLUGIN = '''\
    import pathlib
    pathlib.Path({marker!r}).write_text("imported")
    from flx_ipy import Plugin, PluginMetadata

    class Counter(Plugin):
        metadata = PluginMetadata(name="counter", version="1.0.0")

        def start(self):
            pass
    '''


def test_validate_path_does_not_import(tmp_path: Path) -> None:
    marker = tmp_path / "imported.txt"
    f = write(tmp_path / "flxv_counter.py", PLUGIN.format(marker=str(marker)))
    result = validate_path(f)
    assert result.ok, str(result)
    assert not marker.exists()
    assert "flxv_counter" not in sys.modules


def test_validate_path_reports_every_problem_with_lines(tmp_path: Path) -> None:
    f = write(tmp_path / "bad.py", '''\
        from flx_ipy import Plugin, PluginMetadata

        class Bad(Plugin):
            metadata = PluginMetadata(name="bad name", version="latest", requires="clock")

            def initialize(self):
                pass

            async def start(self, a, b=1):
                pass

            def save_state(self):
                return {}
        ''')
    result = validate_path(f)
    by_field = {p.field: p for p in result.problems}
    assert set(by_field) == {"metadata.name", "metadata.version", "metadata.requires", "hook initialize",
                             "hook start", "hook restore_state"}
    assert by_field["metadata.version"].line == 4
    assert by_field["metadata.version"].file == str(f)
    assert by_field["hook initialize"].line == 6
    assert by_field["hook start"].fix == "async def start(self) -> None"
    assert "async def start(self, a, b=1)" in by_field["hook start"].message


def test_validate_path_syntax_error_and_no_plugin(tmp_path: Path) -> None:
    broken = write(tmp_path / "broken.py", "def f(:\n    pass\n")
    (p,) = validate_path(broken).problems
    assert (p.field, p.line, p.file) == ("syntax", 1, str(broken))
    empty = write(tmp_path / "empty.py", "x = 1\n")
    (p,) = validate_path(empty).problems
    assert p.field == "plugin"
    assert "no Plugin subclass" in p.message
    assert "class MyPlugin(Plugin)" in p.fix
    abstract = write(tmp_path / "abstract.py", "from flx_ipy import Plugin\nclass Base(Plugin):\n    pass\n")
    (p,) = validate_path(abstract).problems
    assert p.field == "metadata"
    assert p.line == 2
    (p,) = validate_path(tmp_path / "missing.py").problems
    assert p.field == "path"


def test_validate_path_package_and_folder(tmp_path: Path) -> None:
    marker = tmp_path / "imported.txt"
    pkg = tmp_path / "plugins" / "clockpkg"
    write(pkg / "__init__.py", "from .impl import Clock\n")
    write(pkg / "impl.py", PLUGIN.format(marker=str(marker)).replace("Counter", "Clock"))
    write(pkg / "util" / "helpers.py", "def oops(:\n")
    result = validate_path(pkg)
    assert fields(result) == ["syntax"]
    assert result.problems[0].file == str(pkg / "util" / "helpers.py")
    (pkg / "util" / "helpers.py").write_text("x = 1\n")
    assert validate_path(pkg).ok
    write(tmp_path / "plugins" / "notes.py", "x = 1\n")
    assert validate_path(tmp_path / "plugins").ok  # a folder of plugins: one is enough
    assert not validate_path(tmp_path / "plugins" / "clockpkg" / "util").ok
    assert not marker.exists()


def test_unreadable_metadata_is_a_note_not_a_problem(tmp_path: Path) -> None:
    f = write(tmp_path / "dyn.py", '''\
        from flx_ipy import Plugin, PluginMetadata
        from ._version import VERSION

        class Dyn(Plugin):
            metadata = PluginMetadata(name="dyn", version=VERSION)
        ''')
    result = validate_path(f)
    assert result.ok
    assert any("VERSION" in n for n in result.notes)


def test_validate_package_with_plugins_in_submodules(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from flx_ipy.core.validators import validate_path

    pkg = tmp_path / "shipped"
    pkg.mkdir()
    (pkg / "__init__.py").write_text('"""A package whose entry points name its submodules."""\n')
    (pkg / "weather.py").write_text(
        "from flx_ipy import Plugin, PluginMetadata\n"
        "class Weather(Plugin):\n    metadata = PluginMetadata(name='weather', version='1.2.0')\n")
    (pkg / "units.py").write_text(
        "from flx_ipy import Plugin, PluginMetadata\n"
        "class Units(Plugin):\n    metadata = PluginMetadata(name='units', version='nope')\n")
    result = validate_path(pkg)
    assert [p.field for p in result.problems] == ["metadata.version"], str(result)
    assert "units.py" in (result.problems[0].file or "")
    (pkg / "units.py").write_text("x = 1\n")
    (pkg / "weather.py").write_text("y = 2\n")
    assert "no Plugin subclass found" in str(validate_path(pkg))
