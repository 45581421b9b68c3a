"""The reload transaction, driven without a watcher: edit the file, call reload/apply_changes."""

from __future__ import annotations

import pickle
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from flx_ipy import PluginManager
from flx_ipy.testing import plugin_source, write_plugin


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    write_plugin(path, text.replace(old, new))


COUNTER = """
    def start(self):
        self.count = getattr(self, "count", 0)
    def inc(self):
        self.count += 1
        return "v1"
"""


@pytest.fixture
def counter(pm: PluginManager, make_plugin) -> Path:
    path = make_plugin("counter", COUNTER)
    pm.load(str(path), start=True)
    return path


def test_method_body_change_is_seen_by_old_references(pm: PluginManager, counter: Path) -> None:
    p = pm.get("counter")
    callback = p.inc  # a bound method stored before the reload
    assert callback() == "v1"
    edit(counter, '"v1"', '"v2"')
    res = pm.reload("counter")
    assert res.ok and not res.rolled_back and res.duration > 0
    assert callback() == "v2" and p.inc() == "v2"
    assert p.count == 3  # state kept on the same instance
    assert pm.get("counter") is p
    assert isinstance(p, pm.plugins["counter"].module.Counter)


def test_method_added_removed_property_and_class_attribute(pm: PluginManager, counter: Path) -> None:
    p = pm.get("counter")
    edit(counter, "    def inc(self):", textwrap.indent(textwrap.dedent("""
        LIMIT = 10
        @property
        def doubled(self):
            return self.count * 2
        def reset(self):
            self.count = 0
    """), "    ") + "    def inc(self):")
    assert pm.reload("counter").ok
    p.inc()
    assert p.doubled == 2 and p.LIMIT == 10
    edit(counter, "return self.count * 2", "return self.count * 3")
    edit(counter, "LIMIT = 10", "LIMIT = 20")
    edit(counter, "    def reset(self):\n        self.count = 0\n", "")
    assert pm.reload("counter").ok
    assert p.doubled == 3 and p.LIMIT == 20
    assert not hasattr(p, "reset")


def test_zero_arg_super_decorators_and_closures(pm: PluginManager, make_plugin) -> None:
    path = make_plugin("deco", """
        @traced
        def run(self):
            return "base"
        def start(self):
            return super().start()
    """, header=textwrap.dedent("""
        import functools
        def traced(fn):
            @functools.wraps(fn)
            def wrapper(self):
                return "traced:" + fn(self)
            return wrapper
        FACTOR = 2
        def scale(x):
            return x * FACTOR
    """))
    pm.load(str(path), start=True)
    p = pm.get("deco")
    assert p.run() == "traced:base"
    edit(path, 'return "base"', 'return "v2-" + str(scale(1)) + "-" + super().health_check().message')
    edit(path, "FACTOR = 2", "FACTOR = 5")
    assert pm.reload("deco").ok
    assert p.run() == "traced:v2-5-running"


def test_pickling_and_isinstance_survive(pm: PluginManager, counter: Path) -> None:
    p = pm.get("counter")
    cls = type(p)
    edit(counter, '"v1"', '"v2"')
    assert pm.reload("counter").ok
    mod = pm.plugins["counter"].module
    assert mod.Counter is cls and isinstance(p, mod.Counter)
    p.ctx = None  # contexts hold loggers/locks; the plugin data itself pickles
    clone = pickle.loads(pickle.dumps(p))
    assert clone.inc() == "v2"


def test_v1_v2_v1_v2_keeps_references_consistent(pm: PluginManager, counter: Path) -> None:
    p = pm.get("counter")
    inc = p.inc
    for version in ("v2", "v1", "v2", "v1", "v2"):
        text = counter.read_text()
        write_plugin(counter, text.replace('"v1"', f'"{version}"').replace('"v2"', f'"{version}"'))
        assert pm.reload("counter").ok
        assert inc() == version and p.inc() == version
    assert p.count == 10


def test_syntax_error_rolls_back_then_fix_reloads(pm: PluginManager, counter: Path) -> None:
    p = pm.get("counter")
    p.inc()
    edit(counter, 'return "v1"', 'return ("v1"')
    res = pm.reload("counter")
    assert not res.ok and res.rolled_back and res.phase == "compile"
    assert res.where and res.where.startswith(str(counter))
    assert "previous version still running" in res.summary()
    assert pm.status("counter") == "running" and p.inc() == "v1" and p.count == 2
    assert "reload_failed" in [e.kind for e in pm.events.history()]
    edit(counter, 'return ("v1"', 'return "fixed"')
    assert pm.reload("counter").ok and p.inc() == "fixed" and p.count == 3


def test_exception_in_new_start_rolls_back_code_and_state(pm: PluginManager, counter: Path) -> None:
    p = pm.get("counter")
    p.inc()
    edit(counter, 'self.count = getattr(self, "count", 0)',
         'self.count = 999\n        self.extra = 1\n        raise RuntimeError("bad start")')
    edit(counter, '"v1"', '"v2"')
    res = pm.reload("counter")
    assert not res.ok and res.rolled_back and res.phase == "start" and "bad start" in res.error
    assert res.where == f"{counter}:7" or (res.where or "").startswith(str(counter))
    assert pm.status("counter") == "running"
    assert p.count == 1 and not hasattr(p, "extra")  # attributes restored exactly
    assert p.inc() == "v1"  # and the old code runs


def test_import_error_and_failed_validation_roll_back(pm: PluginManager, counter: Path) -> None:
    p = pm.get("counter")
    text = counter.read_text()
    write_plugin(counter, "import no_such_module_abc\n" + text.replace('"v1"', '"v2"'))
    res = pm.reload("counter")
    assert not res.ok and res.rolled_back and res.phase == "import" and "no_such_module_abc" in res.error
    assert p.inc() == "v1"
    write_plugin(counter, text.replace("version='1.0.0'", "version='banana'"))
    res = pm.reload("counter")
    assert not res.ok and res.rolled_back and "banana" in res.error
    assert p.inc() == "v1" and pm.plugins["counter"].version == "1.0.0"
    write_plugin(counter, text.replace("class Counter", "class Renamed"))
    res = pm.reload("counter")
    assert not res.ok and "no longer defined" in res.error
    assert pm.plugins["counter"].module.Counter is type(p)


def test_save_and_restore_state_across_versions(pm: PluginManager, make_plugin) -> None:
    path = make_plugin("store", """
        def start(self):
            self.items = getattr(self, "items", [])
        def save_state(self):
            return PluginState("store", self.metadata.version, runtime_data={"items": self.items})
        def restore_state(self, state):
            self.items = list(state.runtime_data["items"])
    """)
    pm.load(str(path), start=True)
    pm.get("store").items.append("a")
    edit(path, "version='1.0.0'", "version='2.0.0'")
    edit(path, 'self.items = list(state.runtime_data["items"])',
         'self.seen_version = state.version\n'
         '        self.items = {i: True for i in state.runtime_data["items"]}')
    res = pm.reload("store")
    assert res.ok, res.error
    p = pm.get("store")
    assert p.items == {"a": True} and p.seen_version == "1.0.0"
    assert pm.plugins["store"].version == "2.0.0"
    assert pm.state("store")["runtime_data"] == {"items": {"a": True}}


def test_slots_change_moves_state_to_a_fresh_instance(pm: PluginManager, make_plugin) -> None:
    path = make_plugin("slotted", """
        __slots__ = ("ctx", "n")
        def start(self):
            self.n = getattr(self, "n", 0) + 1
    """)
    pm.load(str(path), start=True)
    old = pm.get("slotted")
    edit(path, '__slots__ = ("ctx", "n")', '__slots__ = ("ctx", "n", "extra")')
    res = pm.reload("slotted")
    assert res.ok and res.recreated and "__slots__ changed" in res.notes[0]
    new = pm.get("slotted")
    assert new is not old and new.n == 2


def test_dataclass_field_with_factory_is_filled_on_the_live_instance(pm: PluginManager, make_plugin) -> None:
    path = make_plugin("dc", """
        total: int = 0
    """, header="from dataclasses import dataclass, field")
    text = path.read_text().replace("class Counter", "@dataclass\nclass Counter")
    write_plugin(path, text)
    pm.load(str(path), start=True)
    p = pm.get("dc")
    p.total = 5
    edit(path, "total: int = 0", "total: int = 0\n    tags: list = field(default_factory=list)")
    res = pm.reload("dc")
    assert res.ok and pm.get("dc") is p
    assert p.tags == [] and p.total == 5


def test_removed_top_level_names_do_not_linger(pm: PluginManager, make_plugin) -> None:
    path = make_plugin("names", "def f(self): return OLD_CONSTANT", header="OLD_CONSTANT = 1")
    pm.load(str(path))
    mod = pm.plugins["names"].module
    mod.RUNTIME_GLOBAL = "set at run time"
    edit(path, "OLD_CONSTANT = 1", "NEW_CONSTANT = 2")
    edit(path, "return OLD_CONSTANT", "return NEW_CONSTANT")
    assert pm.reload("names").ok
    assert not hasattr(mod, "OLD_CONSTANT") and mod.NEW_CONSTANT == 2
    assert mod.RUNTIME_GLOBAL == "set at run time"


def test_helper_module_change_reloads_in_import_order(pm: PluginManager, plugin_dir: Path) -> None:
    pkg = plugin_dir / "fmt_pkg"
    pkg.mkdir()
    (pkg / "consts.py").write_text("PREFIX = '>'\n")
    (pkg / "helpers.py").write_text("from .consts import PREFIX\ndef fmt(x):\n    return PREFIX + x\n")
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        from flx_ipy import Plugin, PluginMetadata
        from .helpers import fmt
        class Fmt(Plugin):
            metadata = PluginMetadata(name="fmt", version="1.0.0")
            def show(self, x):
                return fmt(x)
    """))
    pm.load(str(pkg), start=True)
    p = pm.get("fmt")
    assert p.show("a") == ">a"
    write_plugin(pkg / "consts.py", "PREFIX = '#'\n")
    results = pm.apply_changes([pkg / "consts.py"])
    assert [r.ok for r in results] == [True]
    assert results[0].modules == ["fmt_pkg.consts", "fmt_pkg.helpers", "fmt_pkg"]
    assert p.show("a") == "#a"
    # a save that changes nothing does nothing
    n_events = len(pm.events.history())
    write_plugin(pkg / "consts.py", "PREFIX = '#'\n")
    assert pm.apply_changes([pkg / "consts.py"]) == []
    assert len(pm.events.history()) == n_events


def test_only_affected_plugins_reload_and_dependants_are_told(pm: PluginManager, make_plugin) -> None:
    a = make_plugin("base", "def v(self): return 1")
    pm.load(str(a), start=True)
    b = make_plugin("user", "restart_on_dependency_reload = True\ndef start(self):\n    self.starts = "
                    "getattr(self, 'starts', 0) + 1", requires=("base",), cls="User")
    c = make_plugin("bystander", cls="By")
    pm.load(str(b), start=True)
    pm.load(str(c), start=True)
    edit(a, "return 1", "return 2")
    results = pm.apply_changes([a])
    assert [r.plugin for r in results] == ["base"]
    assert pm.get("base").v() == 2 and pm.get("user").starts == 2
    told = [e for e in pm.events.history() if e.kind == "dependency_reloaded"]
    assert [(e.plugin, e.details["dependency"]) for e in told] == [("user", "base")]
    assert not [e for e in pm.events.history() if e.kind == "reloading" and e.plugin == "bystander"]


def test_same_broken_content_is_not_retried_until_the_file_changes(pm: PluginManager, counter: Path) -> None:
    edit(counter, 'return "v1"', 'return ("v1"')
    assert len(pm.apply_changes([counter])) == 1
    assert pm.apply_changes([counter]) == []  # same broken bytes: no error spam
    edit(counter, 'return ("v1"', 'return "ok"')
    assert [r.ok for r in pm.apply_changes([counter])] == [True]


def test_fixing_a_failed_plugin_starts_it_again(pm: PluginManager, make_plugin) -> None:
    path = make_plugin("fragile", "def start(self): raise RuntimeError('typo')")
    pm.load(str(path))
    with pytest.raises(Exception, match="typo"):
        pm.start("fragile")
    assert pm.status("fragile") == "failed"
    edit(path, "raise RuntimeError('typo')", "self.ok = True")
    results = pm.apply_changes([path])
    assert results and results[0].ok
    assert pm.status("fragile") == "running" and pm.get("fragile").ok


def test_hammering_thread_during_50_reloads_loses_nothing(pm: PluginManager, counter: Path) -> None:
    p = pm.get("counter")
    stop = threading.Event()
    calls = [0]
    errors: list[BaseException] = []

    def hammer() -> None:
        while not stop.is_set():
            try:
                p.inc()
                calls[0] += 1
            except BaseException as e:  # any failure is the bug we are looking for
                errors.append(e)
                return

    t = threading.Thread(target=hammer)
    t.start()
    try:
        text = counter.read_text()
        for i in range(50):
            write_plugin(counter, text.replace('"v1"', f'"v{i + 2}"'))
            res = pm.reload("counter")
            assert res.ok, res.error
    finally:
        stop.set()
        t.join(5)
    assert errors == []
    assert p.count == calls[0]
    assert p.inc() == "v51"


def test_explicit_reload_of_unchanged_plugin_still_runs_the_transaction(pm: PluginManager, counter: Path) -> None:
    res = pm.reload("counter")
    assert res.ok and not res.changed and res.modules
    assert "source unchanged" in res.summary()
    assert sys.modules[pm.plugins["counter"].module.__name__] is pm.plugins["counter"].module


def test_other_plugin_source_variants(pm: PluginManager, tmp_path: Path) -> None:
    path = write_plugin(tmp_path / "v.py", plugin_source("variant", body="def x(self): return 1"))
    pm.load(str(path))
    write_plugin(path, plugin_source("variant", body="def x(self): return 2"))
    assert pm.reload("variant").ok and pm.get("variant").x() == 2


def test_apply_pending_applies_saves_not_yet_applied(pm: PluginManager, counter: Path) -> None:
    assert pm.pending_changes() == [] and pm.apply_pending() == []
    p = pm.get("counter")
    edit(counter, '"v1"', '"v2"')
    assert pm.pending_changes() == [str(counter)]
    results = pm.apply_pending(timeout=2)
    assert [r.ok for r in results] == [True] and p.inc() == "v2"
    assert pm.pending_changes() == []
    edit(counter, 'return "v2"', 'return ("v2"')
    assert [r.rolled_back for r in pm.apply_pending(timeout=0.1)] == [True]
    assert pm.pending_changes() == []  # a failed version is not pending again


def test_changed_enum_in_plugin_module_is_reported(pm: PluginManager, make_plugin) -> None:
    path = make_plugin("lights", "def start(self):\n    self.light = Light.GREEN",
                       header="import enum\nclass Light(enum.Enum):\n    GREEN = 1\n    RED = 2")
    pm.load(str(path), start=True)
    edit(path, "    RED = 2", "    RED = 2\n    AMBER = 3")
    res = pm.reload("lights")
    assert res.ok
    assert any("Light: its Enum members changed" in n for n in res.notes), res.notes


HANDOVER = """
    def start(self):
        self.count = getattr(self, "count", 0)
        self.halt = threading.Event()
        self.worker = threading.Thread(target=self.work, daemon=True)
        self.worker.start()
    def work(self):
        while not self.halt.is_set():
            self.count += 1
    def stop(self):
        self.halt.set()
        self.worker.join()
    def save_state(self):
        return PluginState("worker", "1", runtime_data={"count": self.count})
    def restore_state(self, state):
        self.count = state.runtime_data["count"]
    def tag(self):
        return "v1"
"""


def test_state_hand_over_with_a_stop_that_joins_a_worker_touching_self(pm: PluginManager, make_plugin) -> None:
    """Other threads wait while state is handed over; a stop that joins a worker touching self
    must not deadlock (the worker is let through after a short grace)."""
    path = make_plugin("worker", HANDOVER, header="import threading")
    pm.load(str(path), start=True)
    p = pm.get("worker")
    edit(path, 'return "v1"', 'return "v2"')
    res = pm.reload("worker")
    assert res.ok, res.error
    assert p.tag() == "v2" and p.worker.is_alive()
    assert res.duration < pm.handover_grace + 5  # bounded by the grace, never a hang


def test_rollback_keeps_other_threads_writes_but_reverts_the_hooks(pm: PluginManager, counter: Path) -> None:
    p = pm.get("counter")
    p.inc()
    edit(counter, 'self.count = getattr(self, "count", 0)',
         'self.count = 999\n        self.extra = 1\n        raise RuntimeError("bad start")')
    assert pm.reload("counter").rolled_back
    assert p.count == 1 and not hasattr(p, "extra")
    assert "__setattr__" not in vars(type(p)) and "__getattribute__" not in vars(type(p))


def test_ctrl_c_in_a_hook_during_reload_restores_the_old_code(pm: PluginManager, counter: Path) -> None:
    p = pm.get("counter")
    edit(counter, 'self.count = getattr(self, "count", 0)', 'raise KeyboardInterrupt')
    edit(counter, '"v1"', '"v2"')
    with pytest.raises(KeyboardInterrupt):
        pm.reload("counter")
    assert p.inc() == "v1"  # the old code is back
    assert pm.status("counter") == "stopped"  # it was stopped for the swap and not restarted
    assert "__setattr__" not in vars(type(p))
    edit(counter, "raise KeyboardInterrupt", 'self.count = getattr(self, "count", 0)')
    pm.start("counter")
    assert pm.reload("counter").ok and p.inc() == "v2"


def test_reloading_is_published_while_the_reload_runs(pm: PluginManager, counter: Path) -> None:
    seen: list[tuple[str, str]] = []
    pm.subscribe(lambda ev: seen.append((ev.kind, str(pm.status("counter")))) if ev.plugin == "counter" else None)
    edit(counter, '"v1"', '"v2"')
    assert pm.reload("counter").ok
    assert seen == [("reloading", "reloading"), ("reloaded", "running")]
