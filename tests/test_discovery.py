"""Discovery lists plugins from entry points and folders without importing any of them.

Installed distributions are simulated the way pip leaves them: ``*.dist-info`` (or
``*.egg-info``) folders with an ``entry_points.txt`` in a directory put on ``sys.path``.
Every plugin module has a unique name so ``sys.modules`` tells whether it was imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from flx_ipy.core.discovery import Candidate, Discovery, _fast_fields
from flx_ipy.core.validators import read_source

OLD = 1_600_000_000  # a time long past: files "installed" before the scan, so its cache is trusted


def uniq(prefix: str = "flxt_mod") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def plugin_source(cls: str = "Counter", name: str = "counter", version: str = "1.0.0", body: str = "") -> str:
    return textwrap.dedent(f'''\
        from flx_ipy import Plugin, PluginMetadata

        class Helper:
            metadata = "not this one"

        class {cls}(Plugin):
            """A plugin; its import would leave a trace."""
            metadata = PluginMetadata(
                name="{name}",  # a comment (with a paren
                version="{version}",
                description="counts (things)",
            )

            def start(self):
                return None
        {textwrap.dedent(body)}
        ''')


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def make_dist(site: Path, dist: str, version: str = "1.2", eps: dict[str, str] | None = None,
              group: str = "flx_ipy.plugins", kind: str = "dist-info") -> Path:
    folder = site / (f"{dist}-{version}.{kind}" if kind == "dist-info" or version else f"{dist}.{kind}")
    folder.mkdir(parents=True)
    (folder / ("METADATA" if kind == "dist-info" else "PKG-INFO")).write_text(
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version or '3.4'}\n\n")
    if eps is not None:
        lines = "".join(f"{k} = {v}\n" for k, v in eps.items())
        (folder / "entry_points.txt").write_text(
            f"[console_scripts]\nfoo = x:y\n\n[{group}]\n{lines}\n[other.group]\nz = q:r\n")
    return folder


def settle(*roots: Path) -> None:
    """Backdate everything, as for files installed long ago (no sleep needed for a trusted cache)."""
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for n in [*dirnames, *filenames]:
                os.utime(os.path.join(dirpath, n), (OLD, OLD))
        os.utime(root, (OLD, OLD))


def ours(cands: list[Candidate], *roots: Path) -> list[Candidate]:
    """Only candidates made by the test (the venv's own site-packages stays on sys.path)."""
    return [c for c in cands if "flxt" in c.source or (c.path is not None and any(
        r in c.path.parents for r in roots)) or any(str(r) in c.source for r in roots)]


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.setattr(sys, "path", [str(site), *sys.path])
    return site


def test_entry_point_is_listed_without_importing(site: Path) -> None:
    mod = uniq()
    write(site / f"{mod}.py", plugin_source())
    make_dist(site, "flxt_counter", "1.2", {"counter": f"{mod}:Counter"})
    (c,) = ours(Discovery().scan(), site)
    assert c.ok
    assert c.name == "counter"
    assert c.kind == "entry_point"
    assert c.metadata is not None
    assert c.metadata.version == "1.0.0"
    assert c.metadata.description == "counts (things)"
    assert c.target == f"{mod}:Counter"
    assert c.class_name == "Counter"
    assert c.path == site / f"{mod}.py"
    assert c.source == "entry point 'counter' of distribution flxt_counter 1.2"
    assert mod not in sys.modules


def test_nested_module_is_found_without_importing_its_parents(site: Path) -> None:
    pkg = uniq("flxt_pkg")
    write(site / pkg / "__init__.py", "raise RuntimeError('the parent package was imported')\n")
    write(site / pkg / "sub" / "__init__.py", "raise RuntimeError('sub was imported')\n")
    write(site / pkg / "sub" / "plug.py", plugin_source("Timer", "timer", "2.0"))
    make_dist(site, "flxt_timer", "0.1", {"timer": f"{pkg}.sub.plug:Timer [extra]"})
    (c,) = ours(Discovery().scan(), site)
    assert c.ok
    assert c.name == "timer"
    assert c.metadata
    assert c.metadata.version == "2.0"
    assert c.target == f"{pkg}.sub.plug:Timer"
    assert not [m for m in sys.modules if m.startswith(pkg)]


def test_module_constants_are_resolved_by_a_full_parse(site: Path) -> None:
    mod = uniq()
    write(site / f"{mod}.py", '''\
        from flx_ipy import Plugin, PluginMetadata
        __version__ = "3.1"
        NAME = "constant"

        class Base(Plugin):
            metadata = PluginMetadata(NAME, __version__, requires=["clock>=1.0"])

        class Child(Base):
            pass
        ''')
    make_dist(site, "flxt_const", "9", {"constant": f"{mod}:Child"})
    (c,) = ours(Discovery().scan(), site)
    assert c.ok
    assert c.metadata is not None
    assert (c.name, c.metadata.version, c.metadata.requires) == ("constant", "3.1", ("clock>=1.0",))


def test_unreadable_metadata_falls_back_to_entry_point_name_and_version(site: Path) -> None:
    mod = uniq()
    write(site / f"{mod}.py", '''\
        from flx_ipy import Plugin, PluginMetadata
        from elsewhere import compute

        class Dyn(Plugin):
            metadata = PluginMetadata(name=compute(), version="1.0")
        ''')
    make_dist(site, "flxt_dyn", "4.5", {"dyn": f"{mod}:Dyn"})
    missing = uniq()
    make_dist(site, "flxt_gone", "1.0", {"gone": f"{missing}:Gone"})
    by_name = {c.name: c for c in ours(Discovery().scan(), site)}
    dyn, gone = by_name["dyn"], by_name["gone"]
    assert dyn.ok
    assert dyn.metadata is not None
    assert dyn.metadata.version == "4.5"
    assert dyn.note
    assert "compute()" in dyn.note
    assert "distribution's version" in dyn.note
    assert gone.ok
    assert gone.note
    assert f"module {missing} was not found" in gone.note
    assert mod not in sys.modules


def test_broken_plugins_are_reported_and_the_others_listed(site: Path) -> None:
    good, bad_md, bad_syntax = uniq(), uniq(), uniq()
    write(site / f"{good}.py", plugin_source())
    write(site / f"{bad_md}.py", plugin_source("Bad", "bad plugin", "not-a-version"))
    write(site / f"{bad_syntax}.py", "from flx_ipy import Plugin\n\nclass Broken(Plugin:\n    pass\n")
    make_dist(site, "flxt_all", "1.0", {"counter": f"{good}:Counter", "bad": f"{bad_md}:Bad",
                                        "broken": f"{bad_syntax}:Broken", "odd": "no_colon_here"})
    by_name = {c.name: c for c in ours(Discovery().scan(), site)}
    assert by_name["counter"].ok
    bad = by_name["bad plugin"]
    assert not bad.ok
    assert bad.error is not None
    assert "entry point 'bad' of distribution flxt_all 1.0" in bad.error
    assert "name:" in bad.error
    assert "version:" in bad.error
    broken = by_name["broken"]
    assert not broken.ok
    assert f"{site / bad_syntax}.py:3" in str(broken.error)
    assert "'module:ClassName'" in str(by_name["odd"].error)


def test_folders_modules_and_packages(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    write(plugins / "counter.py", plugin_source())
    write(plugins / "notes.py", "x = 1  # not a plugin: ignored\n")
    write(plugins / "_private.py", plugin_source("Hidden", "hidden"))  # listed: only dunder/dot skipped
    write(plugins / "clockpkg" / "__init__.py", "from .impl import Clock\n__all__ = ['Clock']\n")
    write(plugins / "clockpkg" / "impl.py", plugin_source("Clock", "clock", "2.5"))
    write(plugins / "abstract.py", "from flx_ipy import Plugin\n\nclass Base(Plugin):\n    pass\n")
    write(plugins / "broken.py", "from flx_ipy import Plugin\n\n\nclass X(Plugin)\n    pass\n")
    (plugins / "not_a_pkg").mkdir()
    cands = Discovery([plugins], entry_points=False).scan()
    by_name = {c.name: c for c in cands if c.name}
    assert set(by_name) == {"counter", "hidden", "clock"}
    assert by_name["counter"].target == f"{plugins / 'counter.py'}:Counter"
    assert by_name["clock"].target == f"{plugins / 'clockpkg'}:Clock"
    assert by_name["clock"].path == plugins / "clockpkg" / "impl.py"
    assert all(c.kind == "path" for c in cands)
    (err,) = [c for c in cands if c.name is None]
    assert f"{plugins / 'broken.py'}:4: syntax error" in str(err.error)


def test_folder_metadata_that_needs_running_is_read_by_importing(tmp_path: Path, monkeypatch) -> None:
    """Only metadata that running the code can tell costs an import (the one load would do)."""
    write(tmp_path / "p" / "dyn.py", '''\
        import os
        from flx_ipy import Plugin, PluginMetadata

        class Dyn(Plugin):
            metadata = PluginMetadata(name=os.environ["FLX_DYN_NAME"])
        ''')
    (c,) = Discovery([tmp_path / "p"], entry_points=False).scan()
    assert not c.ok  # the import raised KeyError: reported, with the way out
    assert "not statically readable" in str(c.error) and "KeyError" in str(c.error)
    assert f"%plugin load {tmp_path / 'p' / 'dyn.py'}:Dyn" in str(c.error)
    monkeypatch.setenv("FLX_DYN_NAME", "dynamic")
    (c,) = Discovery([tmp_path / "p"], entry_points=False).scan()
    assert c.ok and c.name == "dynamic" and "imported" in str(c.note)


def test_duplicate_names_are_both_reported(site: Path, tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    write(plugins / "a.py", plugin_source("A", "same"))
    write(plugins / "b.py", plugin_source("B", "same"))
    mod = uniq()
    write(site / f"{mod}.py", plugin_source("C", "same"))
    make_dist(site, "flxt_same", "1.0", {"same": f"{mod}:C"})
    first, *dups = [c for c in Discovery([plugins]).scan() if c.name == "same"]
    assert first.ok
    assert first.target.endswith("a.py:A")
    assert len(dups) == 2
    assert not any(d.ok for d in dups)
    assert "b.py:B" in str(dups[0].error)
    assert "a.py:A" in str(dups[0].error)
    assert "flxt_same" in str(dups[1].error)
    assert "a.py:A" in str(dups[1].error)


def test_same_class_reached_twice_is_not_a_duplicate(site: Path) -> None:
    mod = uniq()
    write(site / f"{mod}.py", plugin_source())
    make_dist(site, "flxt_twice", "1.0", {"counter": f"{mod}:Counter"})
    cands = [c for c in Discovery([site]).scan() if c.name == "counter"]
    assert len(cands) == 1
    assert cands[0].ok
    assert cands[0].kind == "path"


def test_rediscovery_is_idempotent(site: Path, tmp_path: Path) -> None:
    write(tmp_path / "plugins" / "counter.py", plugin_source())
    mod = uniq()
    write(site / f"{mod}.py", plugin_source("T", "timer"))
    make_dist(site, "flxt_idem", "1.0", {"timer": f"{mod}:T"})
    d = Discovery([tmp_path / "plugins"])
    first = d.scan()
    d.add_dirs(tmp_path / "plugins", str(tmp_path / "plugins" / "." ))
    assert d.plugin_dirs == ((tmp_path / "plugins").resolve(),)
    assert d.scan(rescan=True) == first == d.scan()
    assert d.find("timer") == Discovery([tmp_path / "plugins"]).find("timer")
    assert d.find("nope") is None


def test_cache_is_used_and_notices_a_newly_installed_distribution(site: Path, tmp_path: Path) -> None:
    mod, mod2 = uniq(), uniq()
    write(site / f"{mod}.py", plugin_source())
    write(site / f"{mod2}.py", plugin_source("Timer", "timer"))
    make_dist(site, "flxt_one", "1.0", {"counter": f"{mod}:Counter"})
    settle(site)
    d = Discovery()
    assert [c.name for c in ours(d.scan(), site)] == ["counter"]
    scans = d.scan_count
    assert [c.name for c in ours(d.scan(), site)] == ["counter"]
    assert d.scan_count == scans  # answered from the cache
    make_dist(site, "flxt_two", "2.0", {"timer": f"{mod2}:Timer"})  # "pip install" meanwhile
    assert sorted(c.name or "" for c in ours(d.scan(), site)) == ["counter", "timer"]
    assert d.scan_count == scans + 1
    settle(site)
    d.scan()
    scans = d.scan_count
    assert d.scan(rescan=True)
    assert d.scan_count == scans + 1


def test_cache_notices_an_edited_plugin_and_a_changed_sys_path(site: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    src = write(tmp_path / "plugins" / "counter.py", plugin_source(version="1.0.0"))
    settle(tmp_path)
    d = Discovery([tmp_path / "plugins"])
    assert d.find("counter").metadata.version == "1.0.0"  # type: ignore[union-attr]
    src.write_text(plugin_source(version="1.0.1"))
    os.utime(src, (OLD + 5, OLD + 5))  # an edit in place: the folder's own mtime does not change
    assert d.find("counter").metadata.version == "1.0.1"  # type: ignore[union-attr]
    other = tmp_path / "other-site"
    mod = uniq()
    write(other / f"{mod}.py", plugin_source("Timer", "timer"))
    make_dist(other, "flxt_other", "1.0", {"timer": f"{mod}:Timer"})
    monkeypatch.setattr(sys, "path", [*sys.path, str(other)])
    assert d.find("timer") is not None


def test_first_distribution_on_sys_path_wins(site: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    mod = uniq()
    write(site / f"{mod}.py", plugin_source())
    make_dist(site, "flxt_Dup.Dist", "2.0", {"counter": f"{mod}:Counter"})
    later = tmp_path / "later-site"
    make_dist(later, "flxt_dup_dist", "1.0", {"counter": f"{mod}:Counter"})
    monkeypatch.setattr(sys, "path", [*sys.path, str(later)])
    (c,) = ours(Discovery().scan(), site, later)
    assert "2.0" in c.source


@pytest.mark.parametrize("version", ["1.5", ""], ids=["egg-info-with-version", "develop-egg-info"])
def test_egg_info(site: Path, version: str) -> None:
    missing = uniq()  # unreadable: the version shown is the distribution's
    make_dist(site, "flxt_egg", version, {"eggy": f"{missing}:Egg"}, kind="egg-info")
    (c,) = ours(Discovery().scan(), site)
    assert c.ok
    assert c.metadata is not None
    assert c.metadata.version == (version or "3.4")


def test_pep660_editable_finder_mapping(site: Path, tmp_path: Path) -> None:
    pkg = uniq("flxt_edit")
    project = tmp_path / "project" / "src"
    write(project / pkg / "__init__.py", "")
    write(project / pkg / "plug.py", plugin_source("Ed", "editable", "0.9"))
    write(site / f"__editable___{pkg}_0_1_finder.py",
          f"MAPPING = {{'{pkg}': '{project / pkg}'}}\nNAMESPACES = {{}}\n")
    make_dist(site, "flxt_edit", "0.1", {"editable": f"{pkg}.plug:Ed"})
    (c,) = ours(Discovery().scan(), site, tmp_path)
    assert c.ok
    assert c.metadata is not None
    assert c.metadata.version == "0.9"
    assert c.path == project / pkg / "plug.py"
    assert c.note is None


def test_entry_points_can_be_turned_off_and_groups_chosen(site: Path) -> None:
    mod = uniq()
    write(site / f"{mod}.py", plugin_source())
    make_dist(site, "flxt_grp", "1.0", {"counter": f"{mod}:Counter"}, group="my.group")
    assert ours(Discovery(entry_points=False).scan(), site) == []
    assert ours(Discovery().scan(), site) == []
    assert [c.name for c in ours(Discovery(group="my.group").scan(), site)] == ["counter"]


def test_unreadable_folder_is_an_error_candidate(tmp_path: Path) -> None:
    (c,) = Discovery([tmp_path / "missing"], entry_points=False).scan()
    assert not c.ok
    assert "plugin folder" in str(c.error)
    assert str(tmp_path / "missing") in str(c.error)


@pytest.mark.parametrize("text", [
    'class P(Plugin):\n    metadata = PluginMetadata(name="a", version="1.0")\n',
    'class P(Plugin):\n    metadata: PluginMetadata = PluginMetadata(\n        "a", "1.0", "x (y) \\"z)",\n'
    '        requires=["b>=1"],  # ) in a comment\n        capabilities=("c",))\n',
    'class P(Plugin):\n    metadata = flx_ipy.PluginMetadata(name="""a""", description=\'\'\')\'\'\')\n',
    'class P(Plugin):\n    metadata = PluginMetadata(\n        "a",\n        \'1.0\',\n'
    '        capabilities=("x", "y",),\n    )\n',
    'class P(Plugin):\n    metadata = PluginMetadata(name="a", requires=[],)\n',
], ids=["simple", "strings-and-comments", "triple-quotes", "positional-tuple-trailing-comma", "empty-list"])
def test_fast_path_agrees_with_the_full_parse(text: str) -> None:
    full = read_source(Path("x.py"), "from flx_ipy import Plugin, PluginMetadata\nimport flx_ipy\n" + text)
    assert _fast_fields(text, "P") == full.classes["P"].fields


def test_fast_path_declines_what_it_cannot_be_sure_of() -> None:
    assert _fast_fields("class P(Plugin):\n    pass\nmetadata = PluginMetadata(name='x')\n", "P") is None
    assert _fast_fields("class P(Plugin):\n    metadata = PluginMetadata(name=N)\n", "P") is None
    assert _fast_fields("class Q(Plugin):\n    metadata = PluginMetadata(name='x')\n", "P") is None
    assert _fast_fields("class P(Plugin):\n    metadata = PluginMetadata(name='x'\n", "P") is None


def test_core_modules_do_not_import_ipython() -> None:
    code = ("import sys, flx_ipy.core.discovery, flx_ipy.core.validators; "
            "bad = [m for m in ('IPython', 'ipywidgets', 'comm') if m in sys.modules]; "
            "assert not bad, bad")
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, timeout=60)
