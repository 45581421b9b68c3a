"""Isolated plugins against real worker processes: OS-enforced capabilities, limits, crashes.

Every protection claimed in ``record.worker.enforced`` is checked here from the outside (the
kernel reading ``/proc/PID/...``, a real listening socket, a real file system), never by
asking the worker.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flx_ipy import (
    FlxError,
    PluginCallError,
    PluginCrashedError,
    PluginError,
    PluginLoadError,
    PluginManager,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="worker sandbox is Linux-only")

PLUGIN = '''
import ctypes, os, socket, subprocess, time, mmap
from flx_ipy import Plugin, PluginMetadata, PluginState

IMPORTED_IN = os.getpid()
try:  # runs at import: the sandbox must already be in force
    socket.create_connection(("127.0.0.1", __PORT__), timeout=2).close()
    AT_IMPORT = "connected"
except OSError as e:
    AT_IMPORT = f"{type(e).__name__}: {e.errno}"

class Counter(Plugin):
    metadata = PluginMetadata(name="NAME", version="VERSION", capabilities=CAPS)

    def __init__(self):
        self.count = 0
        self.started = 0

    def initialize(self, ctx):
        self.ctx = ctx

    def start(self):
        self.started += 1

    def bump(self, n=1):
        self.count += STEP * n
        return self.count

    def where(self):
        return {"pid": os.getpid(), "imported_in": IMPORTED_IN, "at_import": AT_IMPORT,
                "data_dir": str(self.ctx.data_dir)}

    def connect(self, port):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return "connected"

    def libc_open(self, path):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        fd = libc.open(path.encode(), os.O_WRONLY | os.O_CREAT, 0o644)
        err = ctypes.get_errno()
        if fd >= 0:
            os.close(fd)
        return [fd, err]

    def write(self, path):
        with open(path, "w") as fh:
            fh.write("x")
        return path

    def run(self, *argv):
        return subprocess.run(list(argv), capture_output=True).returncode

    def alloc(self, mb):
        block = bytearray(mb << 20)
        return len(block)

    def alloc_shared(self, mb):
        m = mmap.mmap(-1, mb << 20)  # MAP_SHARED: not counted by RLIMIT_DATA; the cgroup sees it
        for i in range(0, mb << 20, 4096):
            m[i] = 1
        return mb

    def die(self, code=3):
        os._exit(code)

    def hang(self):
        time.sleep(60)

    def spin(self):
        while True:
            pass

    def boom(self):
        raise ValueError("nope")

    def obj(self):
        return object()

    def echo(self, value):
        return value

    def temp(self):
        import tempfile
        with tempfile.NamedTemporaryFile(delete=False) as fh:
            fh.write(b"t")
        return fh.name

    def save_state(self):
        return PluginState("NAME", "VERSION", runtime_data={"count": self.count})

    def restore_state(self, state):
        self.count = state.runtime_data["count"]
'''


def source(name: str = "counter", *, caps: list[str] | None = None, version: str = "1.0.0", step: int = 1,
           port: int = 9) -> str:
    return (PLUGIN.replace("NAME", name).replace("VERSION", version).replace("CAPS", repr(caps or []))
            .replace("STEP", str(step)).replace("__PORT__", str(port)))


class Events:
    def __init__(self, pm: PluginManager) -> None:
        self.items: list[Any] = []
        self.cond = threading.Condition()
        pm.subscribe(self._add)

    def _add(self, ev: Any) -> None:
        with self.cond:
            self.items.append(ev)
            self.cond.notify_all()

    def wait(self, kind: str, count: int = 1, timeout: float = 20.0) -> list[Any]:
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.of(kind)) >= count, timeout)
        assert ok, f"no {count}x {kind!r} within {timeout} s; got {[e.kind for e in self.items]}"
        return self.of(kind)

    def of(self, kind: str) -> list[Any]:
        return [e for e in self.items if e.kind == kind]


@pytest.fixture
def pm(tmp_path: Path) -> Iterator[PluginManager]:
    manager = PluginManager(entry_points=False, data_root=tmp_path / "data", health_timeout=5.0,
                            hook_timeout=20.0)
    yield manager
    manager.close()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.setblocking(False)
    yield srv
    srv.close()


def write(tmp_path: Path, text: str, name: str = "counter.py") -> Path:
    d = tmp_path / "plugins"
    d.mkdir(exist_ok=True)
    p = d / name
    p.write_text(textwrap.dedent(text))
    return p


def no_connection(srv: socket.socket) -> bool:
    try:
        conn, _ = srv.accept()
    except BlockingIOError:
        return True
    conn.close()
    return False


def proc_status(pid: int) -> dict[str, str]:
    out = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


# ------------------------------------------------------------------------- running in a worker
def test_plugin_runs_in_its_worker_and_never_in_the_kernel(pm: PluginManager, tmp_path: Path,
                                                           listener: socket.socket) -> None:
    path = write(tmp_path, source(port=listener.getsockname()[1]))
    before = set(sys.modules)
    rec = pm.load(path, start=True, isolated=True)
    assert rec.isolated is True and rec.status == "running"
    p = pm.get("counter")
    info = p.where()
    assert info["pid"] == rec.worker.pid != os.getpid()
    assert info["imported_in"] == rec.worker.pid  # the module ran in the worker only
    assert not [m for m in set(sys.modules) - before
                if str(getattr(sys.modules[m], "__file__", "") or "") == str(path)]
    # the sandbox was in force before the module's first line: its import-time connect failed
    assert "connected" not in info["at_import"] and no_connection(listener)
    assert p.bump() == 1 and p.bump(4) == 5 and p.count == 5


def test_enforced_layers_are_read_back_from_outside(pm: PluginManager, tmp_path: Path) -> None:
    rec = pm.load(write(tmp_path, source()), isolated=True)
    w = rec.worker
    enforced = set(w.enforced)
    assert enforced, w.unavailable
    assert not enforced & set(w.unavailable)
    st = proc_status(w.pid)
    if "seccomp" in enforced:
        assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "1"
    if "netns" in enforced:
        assert os.readlink(f"/proc/{w.pid}/ns/net") != os.readlink("/proc/self/ns/net")
    if "userns" in enforced:
        assert os.readlink(f"/proc/{w.pid}/ns/user") != os.readlink("/proc/self/ns/user")
    if "no-capabilities" in enforced:
        assert int(st["CapEff"], 16) == 0 and int(st["CapBnd"], 16) == 0
    if "rlimits" in enforced:
        with open(f"/proc/{w.pid}/limits") as fh:
            core = next(line for line in fh if line.startswith("Max core file size"))
        assert core.split()[4] == "0"
    # on this project's Linux CI every layer is available: say so loudly if one goes missing
    assert {"userns", "netns", "rlimits", "landlock", "seccomp"} <= enforced, w.unavailable


def test_connect_without_net_fails_and_the_listener_sees_nothing(pm: PluginManager, tmp_path: Path,
                                                                 listener: socket.socket) -> None:
    pm.load(write(tmp_path, source()), start=True, isolated=True)
    p = pm.get("counter")
    with pytest.raises(PluginCallError) as exc:
        p.connect(listener.getsockname()[1])
    assert isinstance(exc.value, OSError)
    assert exc.value.type_name in ("PermissionError", "OSError", "ConnectionRefusedError")
    assert no_connection(listener)
    assert p.bump() == 1  # the plugin keeps working


def test_net_capability_allows_connections(pm: PluginManager, tmp_path: Path, listener: socket.socket) -> None:
    rec = pm.load(write(tmp_path, source(caps=["net"])), isolated=True)
    assert "netns" not in rec.worker.enforced
    assert pm.get("counter").connect(listener.getsockname()[1]) == "connected"
    listener.setblocking(True)
    listener.settimeout(5)
    conn, _ = listener.accept()
    conn.close()


def test_write_outside_the_data_folder_fails_even_through_libc(pm: PluginManager, tmp_path: Path) -> None:
    pm.load(write(tmp_path, source()), start=True, isolated=True)
    p = pm.get("counter")
    outside = tmp_path / "outside.txt"
    fd, err = p.libc_open(str(outside))
    assert fd == -1 and err == 13 and not outside.exists()  # EACCES from the kernel, not Python
    with pytest.raises(PermissionError):
        p.write(str(tmp_path / "outside2.txt"))
    data = Path(p.where()["data_dir"])
    assert data == tmp_path / "data" / "counter"
    fd, err = p.libc_open(str(data / "inside.txt"))
    assert fd >= 0 and (data / "inside.txt").exists()


def test_fs_write_capability_grants_that_path(pm: PluginManager, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    pm.load(write(tmp_path, source(caps=[f"fs.write:{shared}"])), isolated=True)
    p = pm.get("counter")
    assert p.write(str(shared / "ok.txt")) and (shared / "ok.txt").read_text() == "x"
    with pytest.raises(PermissionError):
        p.write(str(tmp_path / "not-shared.txt"))


def test_starting_a_process_needs_the_subprocess_capability(pm: PluginManager, tmp_path: Path) -> None:
    pm.load(write(tmp_path, source()), isolated=True)
    with pytest.raises(PermissionError):
        pm.get("counter").run("/bin/true")
    pm.load(write(tmp_path, source("runner", caps=["subprocess"]), "runner.py"), isolated=True)
    assert pm.get("runner").run("/bin/true") == 0


# ------------------------------------------------------------------------- data and errors
def test_errors_arrive_with_type_and_message_and_the_plugin_keeps_working(pm: PluginManager,
                                                                          tmp_path: Path) -> None:
    pm.load(write(tmp_path, source()), start=True, isolated=True)
    p = pm.get("counter")
    with pytest.raises(PluginCallError) as exc:
        p.boom()
    assert isinstance(exc.value, PluginError) and isinstance(exc.value, ValueError)
    assert exc.value.type_name == "ValueError" and exc.value.remote_message == "nope"
    assert "boom" in str(exc.value) and "nope" in str(exc.value)
    assert "raise ValueError" in exc.value.remote_traceback
    assert p.bump() == 1


def test_only_plain_data_crosses_and_the_error_names_the_method(pm: PluginManager, tmp_path: Path) -> None:
    pm.load(write(tmp_path, source()), isolated=True)
    p = pm.get("counter")
    value = {"a": [1, 2.5, None, True, "s", b"\x00"], "n": {"k": -3}}
    assert p.echo(value) == value
    with pytest.raises(TypeError, match=r"counter\.obj\(\)"):
        p.obj()
    with pytest.raises(TypeError, match=r"counter\.echo\(\)"):
        p.echo(object())
    with pytest.raises(AttributeError):
        p.count = 3
    assert p.bump() == 1


def test_bad_limits_are_one_clear_error_and_load_nothing(pm: PluginManager, tmp_path: Path) -> None:
    path = write(tmp_path, source())
    with pytest.raises(PluginError, match="unknown limit 'memory'"):
        pm.load(path, isolated=True, limits={"memory": 10})
    with pytest.raises(PluginError, match="positive"):
        pm.load(path, isolated=True, limits={"memory_mb": -1})
    assert pm.plugins == {}


def test_metadata_that_needs_running_code_is_refused_without_running_it(pm: PluginManager,
                                                                        tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = write(tmp_path, f'''
        from flx_ipy import Plugin, PluginMetadata
        open({str(marker)!r}, "w").close()
        def version():
            return "1.0"
        class Dyn(Plugin):
            metadata = PluginMetadata(name="dyn", version=version())
    ''', "dyn.py")
    with pytest.raises(PluginLoadError, match="statically"):
        pm.load(path, isolated=True)
    assert not marker.exists() and pm.plugins == {}


# ------------------------------------------------------------------------- limits
def test_a_1gb_allocation_under_a_200mb_limit_leaves_everything_running(pm: PluginManager,
                                                                        tmp_path: Path) -> None:
    ev = Events(pm)
    rec = pm.load(write(tmp_path, source()), start=True, isolated=True, limits={"memory_mb": 200})
    p = pm.get("counter")
    p.bump(2)
    with pytest.raises((PluginCallError, PluginCrashedError)) as exc:
        p.alloc(1024)
    if isinstance(exc.value, PluginCallError):
        assert exc.value.type_name == "MemoryError"
    assert p.alloc(16) == 16 << 20
    assert pm.status("counter") == "running" and p.bump() == 3
    if "cgroup" in rec.worker.enforced:  # native-style memory the rlimit cannot see: the ceiling holds
        with pytest.raises(PluginCrashedError):
            p.alloc_shared(1024)
        crashed = ev.wait("crashed")[-1]
        assert crashed.details["reason"] == "out of memory (cgroup limit)"
        ev.wait("restarted")
        assert pm.status("counter") == "running" and p.echo(1) == 1


def test_cpu_limit_kills_the_worker_and_it_comes_back(pm: PluginManager, tmp_path: Path) -> None:
    ev = Events(pm)
    pm.load(write(tmp_path, source()), start=True, isolated=True, limits={"cpu_seconds": 1})
    p = pm.get("counter")
    with pytest.raises(PluginCrashedError):
        p.spin()
    assert "CPU limit" in ev.wait("crashed")[0].details["reason"]
    ev.wait("restarted")
    assert p.bump() == 1


def test_open_files_limit(pm: PluginManager, tmp_path: Path) -> None:
    rec = pm.load(write(tmp_path, source()), isolated=True, limits={"open_files": 64})
    with open(f"/proc/{rec.worker.pid}/limits") as fh:
        line = next(x for x in fh if x.startswith("Max open files"))
    assert line.split()[3:5] == ["64", "64"]


# ------------------------------------------------------------------------- crashes
def test_sigkill_brings_the_plugin_back_with_its_state(pm: PluginManager, tmp_path: Path) -> None:
    ev = Events(pm)
    rec = pm.load(write(tmp_path, source()), start=True, isolated=True)
    p = pm.get("counter")
    p.bump(7)
    assert rec.worker.checkpointed.wait(10)  # the debounced checkpoint after the call
    old = rec.worker.pid
    os.kill(old, signal.SIGKILL)
    crashed = ev.wait("crashed")[0]
    assert crashed.details["reason"] == "killed (SIGKILL)"
    restarted = ev.wait("restarted")[0]
    assert restarted.details["restored"] == "save_state" and restarted.details["state_age"] >= 0
    assert pm.status("counter") == "running"
    assert rec.worker.pid != old and p.count == 7 and p.bump() == 8  # the same proxy, state kept
    assert p.started == 1  # start() ran in the new worker
    assert rec.worker.last_crash["reason"] == "killed (SIGKILL)"


def test_os_exit_in_a_method_raises_plugin_crashed_error(pm: PluginManager, tmp_path: Path) -> None:
    ev = Events(pm)
    pm.load(write(tmp_path, source()), start=True, isolated=True)
    p = pm.get("counter")
    with pytest.raises(PluginCrashedError, match="exit code 3"):
        p.die(3)
    assert ev.wait("crashed")[0].details["reason"] == "exit code 3"
    ev.wait("restarted")
    assert p.bump() == 1


def test_a_hung_call_times_out_and_the_worker_is_replaced(pm: PluginManager, tmp_path: Path) -> None:
    ev = Events(pm)
    pm.load(write(tmp_path, source()), start=True, isolated=True, limits={"call_timeout": 1})
    p = pm.get("counter")
    with pytest.raises(PluginCrashedError, match="did not return"):
        p.hang()
    assert "hung call" in ev.wait("crashed")[0].details["reason"]
    ev.wait("restarted")
    assert p.bump() == 1


def test_a_crash_loop_ends_in_failed(pm: PluginManager, tmp_path: Path) -> None:
    ev = Events(pm)
    pm.load(write(tmp_path, source()), start=True, isolated=True)
    p = pm.get("counter")
    for i in range(3):
        with pytest.raises(PluginCrashedError):
            p.die()
        ev.wait("restarted", i + 1)
    with pytest.raises(PluginCrashedError):
        p.die()
    failed = ev.wait("failed")[0]
    assert failed.details["reason"] == "crash-loop"
    assert pm.status("counter") == "failed" and "crash-loop" in (pm.record("counter").error or "")
    assert len(ev.of("restarted")) == 3
    with pytest.raises(PluginCrashedError):
        p.bump()
    assert pm.health("counter").status == "unhealthy"
    pm.start("counter")  # an explicit start: a fresh worker, from the last good checkpoint
    assert pm.status("counter") == "running" and p.bump() == 1


# ------------------------------------------------------------------------- lifecycle and reload
def test_lifecycle_health_and_state_run_in_the_worker(pm: PluginManager, tmp_path: Path) -> None:
    pm.load(write(tmp_path, source()), isolated=True)
    p = pm.get("counter")
    pm.start("counter")
    assert p.started == 1
    p.bump(2)
    assert pm.health("counter").status == "healthy"
    st = pm.state("counter")
    assert st["kind"] == "save_state" and st["runtime_data"] == {"count": 2}
    pm.stop("counter")
    assert pm.status("counter") == "stopped"
    pm.start("counter")
    assert p.started == 2 and pm.status("counter") == "running"


class Recording:
    """A runner wrapped in at the hook-call seam, recording what passes through it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[tuple[str, str]] = []

    def invoke(self, call: Any) -> Any:
        self.calls.append((call.plugin, call.hook))
        return self.inner.invoke(call)

    async def ainvoke(self, call: Any) -> Any:
        self.calls.append((call.plugin, call.hook))
        return await self.inner.ainvoke(call)


def test_an_isolated_plugins_hooks_pass_the_hook_call_seam(pm: PluginManager, tmp_path: Path) -> None:
    """No special case in the lifecycle: the worker runner at ``pm.hooks`` sends the isolated
    plugin's steps to its worker, and a runner wrapped in before or after still sees them."""
    from flx_ipy.core.steps import InProcess
    from flx_ipy.core.worker.runner import WorkerRunner

    before = Recording(pm.hooks)
    pm.hooks = before
    pm.load(write(tmp_path, source()), isolated=True)
    assert isinstance(pm.hooks, WorkerRunner) and pm.hooks.inner is before
    after = Recording(pm.hooks)
    pm.hooks = after
    pm.start("counter")
    p = pm.get("counter")
    assert p.started == 1 and p.where()["pid"] == pm.record("counter").worker.pid != os.getpid()
    assert pm.health("counter").status == "healthy"
    pm.stop("counter")
    assert after.calls == before.calls == [("counter", h) for h in ("initialize", "start", "health_check", "stop")]
    assert isinstance(before.inner, InProcess)  # the in-process runner below did the waiting


def test_a_rollback_of_an_isolated_plugin_runs_the_kept_code_in_its_worker(pm: PluginManager,
                                                                          tmp_path: Path) -> None:
    """The kernel keeps each revision's bytes (mirrored from the worker); a rollback sends them
    to the worker, whose manager runs the same transaction with them: state kept, disk untouched."""
    path = write(tmp_path, source())
    pm.load(path, start=True, isolated=True)
    p = pm.get("counter")
    p.bump(3)
    path.write_text(source(version="1.1.0", step=10))
    assert pm.apply_changes([path])[0].ok and p.bump() == 13
    on_disk = path.read_bytes()
    res = pm.rollback("counter", 1)
    assert res.ok and "rolled back to revision 1 (1.0.0)" in res.notes
    rec = pm.record("counter")
    assert rec.version == "1.0.0" and rec.status == "running" and p.bump() == 14  # step 1 again, state kept
    assert path.read_bytes() == on_disk
    hist = pm.history("counter")
    assert [(r.revision, r.reason) for r in hist] == [(1, "load"), (2, "reload"), (3, "rollback")]
    assert hist[2].code_sha256 == hist[0].code_sha256
    with pytest.raises(FlxError, match="no revision 9 is kept"):
        pm.rollback("counter", 9)
    assert p.bump() == 15


def test_hot_reload_in_the_worker_keeps_state_and_the_proxy(pm: PluginManager, tmp_path: Path) -> None:
    path = write(tmp_path, source())
    pm.load(path, start=True, isolated=True)
    p = pm.get("counter")
    p.bump(3)
    path.write_text(source(version="1.1.0", step=10))
    results = pm.apply_changes([path])
    assert len(results) == 1 and results[0].ok, results
    assert pm.record("counter").version == "1.1.0"
    assert p.bump() == 13  # the old proxy runs the new code, state kept
    assert pm.apply_changes([path]) == []  # the same content again: nothing
    path.write_text(source(version="1.2.0", step=10).replace("def bump(self, n=1):", "def bump(self, n=1)"))
    (bad,) = pm.apply_changes([path])
    assert not bad.ok and bad.rolled_back and bad.where
    assert pm.status("counter") == "running" and p.bump() == 23
    assert pm.record("counter").version == "1.1.0"
    path.write_text(source(version="1.1.0", step=10))
    r = pm.reload("counter")  # forced: the worker runs the same transaction
    assert r.ok and p.count == 23 and p.bump() == 33


def test_unload_and_close_leave_no_worker_behind(tmp_path: Path) -> None:
    pm = PluginManager(entry_points=False, data_root=tmp_path / "data")
    a = pm.load(write(tmp_path, source("a"), "a.py"), isolated=True).worker.pid
    b = pm.load(write(tmp_path, source("b"), "b.py"), start=True, isolated=True).worker.pid
    pm.unload("a")
    with pytest.raises(ProcessLookupError):
        os.kill(a, 0)
    pm.close()
    with pytest.raises(ProcessLookupError):
        os.kill(b, 0)


def test_no_worker_outlives_a_killed_kernel(tmp_path: Path) -> None:
    """The worker watches its parent's pidfd: SIGKILL of the kernel leaves no orphan."""
    import subprocess

    path = write(tmp_path, source())
    code = (f"import sys, time; from flx_ipy import PluginManager; pm = PluginManager(entry_points=False, "
            f"data_root={str(tmp_path / 'data')!r}); r = pm.load({str(path)!r}, isolated=True); "
            "print(r.worker.pid, flush=True); time.sleep(60)")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    kernel = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        pid = int(kernel.stdout.readline())  # type: ignore[union-attr]
        pidfd = os.pidfd_open(pid)
        kernel.kill()
        kernel.wait(10)
        import select

        assert select.select([pidfd], [], [], 10)[0], "the worker outlived its kernel"
        os.close(pidfd)
    finally:
        kernel.kill()


def test_a_save_seen_by_the_kernels_watcher_reloads_the_worker(pm: PluginManager, tmp_path: Path) -> None:
    ev = Events(pm)
    path = write(tmp_path, source())
    pm.load(path, start=True, isolated=True)
    p = pm.get("counter")
    p.bump(2)
    pm.watch()
    try:
        path.write_text(source(version="2.0.0", step=100))
        ev.wait("reloaded")
        assert p.bump() == 102 and pm.record("counter").version == "2.0.0"
    finally:
        pm.unwatch()


def test_a_policy_isolates_by_name(tmp_path: Path) -> None:
    plugins = write(tmp_path, source("chosen"), "chosen.py").parent
    write(tmp_path, source("other"), "other.py")
    pm = PluginManager(plugin_dirs=[plugins], entry_points=False, data_root=tmp_path / "data",
                       isolate=["chosen"])
    try:
        pm.discover()
        assert pm.load("chosen").isolated is True
        assert pm.load("other").isolated is False
    finally:
        pm.close()


def test_a_module_class_target_on_sys_path_loads_isolated(pm: PluginManager, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    lib = tmp_path / "lib"
    (lib / "isopkg").mkdir(parents=True)
    (lib / "isopkg" / "__init__.py").write_text("SIDE_EFFECT = __import__('os').getpid()\n")
    (lib / "isopkg" / "mod.py").write_text(source("modplug"))
    monkeypatch.syspath_prepend(str(lib))
    rec = pm.load("isopkg.mod:Counter", start=True, isolated=True)
    assert rec.isolated and "isopkg" not in sys.modules  # neither it nor its parent package ran here
    assert pm.get("modplug").bump() == 1


def test_a_denied_call_is_an_event(pm: PluginManager, tmp_path: Path) -> None:
    ev = Events(pm)
    pm.load(write(tmp_path, source()), isolated=True)
    with pytest.raises(PermissionError):
        pm.get("counter").write(str(tmp_path / "nope.txt"))
    denied = ev.wait("denied")[0]
    assert denied.plugin == "counter" and "write" in denied.details["call"]


def test_a_save_after_a_crash_loop_starts_a_fresh_worker(pm: PluginManager, tmp_path: Path) -> None:
    ev = Events(pm)
    path = write(tmp_path, source())
    pm.load(path, start=True, isolated=True)
    p = pm.get("counter")
    for i in range(4):
        with pytest.raises(PluginCrashedError):
            p.die()
        if i < 3:
            ev.wait("restarted", i + 1)
    ev.wait("failed")
    path.write_text(source(version="1.0.1", step=5))  # the fix
    (res,) = pm.apply_changes([path])
    assert res.ok and pm.status("counter") == "running"
    assert p.bump() == 5 and pm.record("counter").version == "1.0.1"


def test_a_crash_after_a_rolled_back_save_restarts_the_last_good_code(pm: PluginManager,
                                                                      tmp_path: Path) -> None:
    ev = Events(pm)
    path = write(tmp_path, source(step=2))
    rec = pm.load(path, start=True, isolated=True)
    p = pm.get("counter")
    p.bump()
    path.write_text(source(step=3).replace("def bump(self, n=1):", "def bump(self, n=1)"))
    (bad,) = pm.apply_changes([path])
    assert bad.rolled_back
    rec.worker.checkpoint_now()
    os.kill(rec.worker.pid, signal.SIGKILL)
    ev.wait("restarted")
    assert pm.status("counter") == "running" and p.bump() == 4  # step 2: the good version, state kept


def test_a_plugin_that_fails_to_import_is_a_load_error_and_leaves_no_worker(pm: PluginManager,
                                                                            tmp_path: Path) -> None:
    path = write(tmp_path, source().replace("IMPORTED_IN = os.getpid()", "IMPORTED_IN = 1 / 0"))
    live_before = {w.pid for w in list(__import__("flx_ipy.core.worker.process", fromlist=["_live"])._live)}
    with pytest.raises(PluginLoadError, match="ZeroDivisionError"):
        pm.load(path, isolated=True)
    assert pm.plugins == {}
    from flx_ipy.core.worker import process

    leftover = {w.pid for w in list(process._live) if w.alive} - live_before
    spare = process._spare.pid if process._spare is not None else None
    assert leftover <= {spare}


def test_the_ui_state_shows_the_worker(pm: PluginManager, tmp_path: Path) -> None:
    from flx_ipy.uistate import UIState

    rec = pm.load(write(tmp_path, source()), start=True, isolated=True)
    ui = UIState(pm).attach()
    try:
        view = ui.plugin("counter")
        assert view is not None and view["isolation"] is not None
        iso = view["isolation"]
        assert iso["pid"] == rec.worker.pid and iso["enforced"] == rec.worker.enforced
        assert iso["rss_mb"] and iso["crashes"] == 0 and iso["last_crash"] is None
    finally:
        ui.detach()
    pm.load(write(tmp_path, source("plain"), "plain.py"))
    assert UIState(pm).attach().plugin("plain")["isolation"] is None  # type: ignore[index]


def test_an_in_process_plugin_can_require_an_isolated_one(pm: PluginManager, tmp_path: Path) -> None:
    from flx_ipy.testing import plugin_source

    pm.load(write(tmp_path, source()), isolated=True)
    user = tmp_path / "plugins" / "user.py"
    user.write_text(plugin_source("user", "1.0.0", """
def initialize(self, ctx):
    self.ctx = ctx

def use(self):
    return self.ctx.deps["counter"].bump(10)
""", cls="User", requires=("counter>=1.0",)))
    pm.load(user)
    pm.start("user")  # its dependency, isolated, starts first
    assert pm.status("counter") == "running"
    assert pm.get("user").use() == 10 and pm.get("counter").count == 10
    pm.stop("counter")  # dependants stop first
    assert pm.status("user") == "stopped"


def test_tempfile_works_inside_the_data_folder(pm: PluginManager, tmp_path: Path) -> None:
    pm.load(write(tmp_path, source()), isolated=True)
    name = Path(pm.get("counter").temp())
    assert name.is_relative_to(tmp_path / "data" / "counter") and name.read_bytes() == b"t"


def test_a_start_that_raises_in_the_worker_fails_with_the_plugins_own_traceback(pm: PluginManager,
                                                                                 tmp_path: Path) -> None:
    from flx_ipy import HookError

    path = write(tmp_path, source().replace("self.started += 1", "raise RuntimeError('no start today')"))
    pm.load(path, isolated=True)
    with pytest.raises(HookError, match="no start today"):
        pm.start("counter")
    rec = pm.record("counter")
    assert rec.status == "failed" and "RuntimeError: no start today" in (rec.error or "")
    assert "raise RuntimeError" in (rec.error_detail or "") and str(path) in (rec.error_detail or "")
    path.write_text(source())  # fix and save: the worker retries and starts it
    (res,) = pm.apply_changes([path])
    assert res.ok and pm.status("counter") == "running" and pm.get("counter").started == 1
