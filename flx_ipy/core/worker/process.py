"""The kernel's side of one worker process: spawn it, talk to it, notice its death.

Calls are serialised per worker (the worker answers one request at a time anyway), and the
caller reads its own reply — no reader thread, so a round trip costs two context switches, not
four. Death is noticed by one monitor thread waiting on every worker's pidfd: about a
millisecond after a segfault or ``os._exit``, with no polling and no cost per call. A call in
flight sees the channel close at the same moment (the worker was its only other holder).
"""

from __future__ import annotations

import atexit
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .protocol import Channel, ChannelClosed, ProtocolError, encode

SIGNAL_REASONS = {
    signal.SIGSEGV: "segfault (SIGSEGV)", signal.SIGKILL: "killed (SIGKILL)",
    signal.SIGABRT: "aborted (SIGABRT)", signal.SIGXCPU: "CPU limit (SIGXCPU)",
    signal.SIGBUS: "bus error (SIGBUS)", signal.SIGTERM: "terminated (SIGTERM)",
    signal.SIGFPE: "arithmetic fault (SIGFPE)", signal.SIGILL: "illegal instruction (SIGILL)",
}


def describe_exit(code: int | None) -> str:
    if code is None:
        return "unknown"
    if code < 0:
        try:
            sig = signal.Signals(-code)
        except ValueError:
            return f"signal {-code}"
        return SIGNAL_REASONS.get(sig, f"signal {sig.name}")
    return f"exit code {code}"


class WorkerGone(Exception):
    """The worker died (or was killed) before it answered."""


class RemoteFailure(Exception):
    """The worker answered with an error; ``reply`` holds its type, message and traceback."""

    def __init__(self, reply: dict[str, Any]) -> None:
        super().__init__(f"{reply.get('type')}: {reply.get('message')}")
        self.reply = reply


class Monitor:
    """One daemon thread waiting on every live worker's pidfd."""

    def __init__(self) -> None:
        self._sel = selectors.DefaultSelector()
        self._r, self._w = os.pipe()
        os.set_blocking(self._w, False)
        self._sel.register(self._r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._adds: list[tuple[int, Callable[[], None]]] = []
        self._thread = threading.Thread(target=self._run, name="flx_ipy-worker-monitor", daemon=True)
        self._thread.start()

    def watch(self, pidfd: int, on_exit: Callable[[], None]) -> None:
        with self._lock:
            self._adds.append((pidfd, on_exit))
        try:
            os.write(self._w, b"x")
        except BlockingIOError:
            pass

    def _run(self) -> None:
        while True:
            for key, _ in self._sel.select():
                if key.data is None:
                    os.read(self._r, 4096)
                    with self._lock:
                        adds, self._adds = self._adds, []
                    for fd, cb in adds:
                        self._sel.register(fd, selectors.EVENT_READ, cb)
                    continue
                self._sel.unregister(key.fd)
                try:
                    key.data()
                except Exception:  # a bug in a handler must not stop crash detection
                    import logging

                    logging.getLogger("flx_ipy").exception("flx_ipy: worker exit handler failed")


_monitor: Monitor | None = None
_monitor_lock = threading.Lock()
_live: weakref.WeakSet[WorkerProcess] = weakref.WeakSet()


def monitor() -> Monitor:
    global _monitor
    with _monitor_lock:
        if _monitor is None:
            _monitor = Monitor()
        return _monitor


#: the worker's command line (``python -I -c BOOTSTRAP PKG_PARENT FD``): ``main.py`` runs it
BOOTSTRAP = ("import sys; sys.path.insert(0, sys.argv[1]); "
             "from flx_ipy.core.worker.main import main; main(sys.argv[2:])")


@atexit.register
def _kill_all() -> None:
    """No worker outlives the kernel (also covered by each worker watching its parent's pidfd).
    Each is asked to exit first, so a running plugin's ``stop()`` runs."""
    for w in list(_live):
        w.close(timeout=0.5)


class WorkerProcess:
    """A running worker. ``call`` sends one request and waits for its reply."""

    def __init__(self, *, on_exit: Callable[[WorkerProcess], None] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self._on_exit = on_exit
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pkg_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        self.started = time.time()
        try:
            self.popen = subprocess.Popen(
                [sys.executable, "-I", "-c", BOOTSTRAP, pkg_parent, str(child.fileno())],
                pass_fds=[child.fileno()], stdin=subprocess.DEVNULL, close_fds=True,
                env=env if env is not None else dict(os.environ))
        finally:
            child.close()
        self.pid = self.popen.pid
        self.channel = Channel(parent)
        self._lock = threading.Lock()
        self._warm = False
        self._next_id = 0
        self.kill_reason: str | None = None
        self.exited = threading.Event()
        self.returncode: int | None = None
        _live.add(self)
        if hasattr(os, "pidfd_open"):
            self.pidfd: int | None = os.pidfd_open(self.pid)
            monitor().watch(self.pidfd, self._exited)
        else:  # not Linux: one waiting thread per worker instead of the pidfd monitor
            self.pidfd = None
            threading.Thread(target=self._wait_then_exited, daemon=True,
                             name=f"flx_ipy-worker-{self.pid}").start()

    # ---------------------------------------------------------------- death
    def _wait_then_exited(self) -> None:
        self.popen.wait()
        self._exited()

    def _exited(self) -> None:
        try:
            self.returncode = self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.returncode = None
        if self.pidfd is not None:
            try:
                os.close(self.pidfd)
            except OSError:
                pass
        try:
            self.channel.sock.shutdown(socket.SHUT_RDWR)  # wakes a caller blocked in recv
        except OSError:
            pass
        self.exited.set()
        _live.discard(self)
        if self._on_exit is not None:
            self._on_exit(self)

    @property
    def alive(self) -> bool:
        return not self.exited.is_set()

    def reason(self) -> str:
        return self.kill_reason or describe_exit(self.returncode)

    def kill(self, reason: str | None = None) -> None:
        if reason and self.kill_reason is None:
            self.kill_reason = reason
        try:
            self.popen.kill()
        except OSError:
            pass

    def close(self, timeout: float = 1.0) -> None:
        """Ask the worker to exit, kill it if it does not; reap it either way."""
        self._on_exit = None
        if self.alive:
            try:
                self.call("exit", timeout=timeout)
            except Exception:
                pass
            if not self.exited.wait(timeout):
                self.kill("closed")
                self.exited.wait(5)
        self.channel.close()

    # ---------------------------------------------------------------- calls
    @contextmanager
    def _failing(self, hung: Callable[[], str], *, chain: bool) -> Iterator[None]:
        """How an exchange with the worker fails: a timeout kills it (``hung()`` is the reason it
        reports, built only then) and is a ``TimeoutError``; a closed channel, a socket error or a protocol
        violation (which kills it too) is ``WorkerGone``, with the cause chained if ``chain``."""
        try:
            yield
        except TimeoutError:
            self.kill(hung())
            self.exited.wait(5)
            raise TimeoutError(self.reason()) from None
        except (ChannelClosed, OSError, ProtocolError) as e:
            if isinstance(e, ProtocolError):
                self.kill(f"protocol violation: {e}")
            self.exited.wait(2)
            raise WorkerGone(self.reason()) from (e if chain else None)

    def call(self, op: str, timeout: float | None = None, **fields: Any) -> Any:
        """Send ``op`` and return the worker's value; ``RemoteFailure`` for its errors,
        ``WorkerGone`` when it died, ``TimeoutError`` (after killing it) when it hung."""
        if not self._lock.acquire(timeout=-1 if timeout is None else timeout):
            raise TimeoutError(f"worker {self.pid} stayed busy for {timeout:g} s")
        try:
            if not self.alive:
                raise WorkerGone(self.reason())
            self._next_id += 1
            rid = self._next_id
            fields["id"], fields["op"] = rid, op
            frame = encode(fields, self.channel.max_frame)
            sock = self.channel.sock
            with self._failing(lambda: f"hung call: {fields.get('method') or op}() did not return "
                                       f"within {timeout:g} s", chain=False):
                self.channel.send_raw(frame)
                sock.settimeout(timeout)
                reply = self.channel.recv()
                if reply.get("op") == "ready" and not self._warm:  # a spare that was never set up
                    self._warm = True
                    reply = self.channel.recv()
            if reply.get("id") != rid:
                self.kill("protocol violation: reply out of order")
                raise WorkerGone(self.reason())
            if not reply.get("ok"):
                raise RemoteFailure(reply)
            return reply.get("value")
        finally:
            self._lock.release()

    def is_warm(self) -> bool:
        """True once the worker has said it finished its own imports (its "ready" frame)."""
        if self._warm:
            return True
        import select

        try:
            return bool(select.select([self.channel.sock], [], [], 0)[0])
        except (OSError, ValueError):
            return False

    def first_reply(self, setup: dict[str, Any], timeout: float) -> dict[str, Any]:
        """The setup exchange: the reply carries the sandbox report even on a failed load."""
        with self._lock:
            setup["id"] = 0
            sock = self.channel.sock
            with self._failing(lambda: f"did not start within {timeout:g} s", chain=True):
                sock.settimeout(timeout)
                if not self._warm:
                    hello = self.channel.recv()
                    if hello.get("op") != "ready":
                        raise ProtocolError(f"expected the worker's ready frame, got {hello!r:.80}")
                    self._warm = True
                self.channel.send(setup)
                sock.settimeout(timeout)
                return self.channel.recv()  # type: ignore[no-any-return]

    def adopt(self, on_exit: Callable[[WorkerProcess], None]) -> bool:
        """Give a spare worker its owner; False if it died meanwhile (then do not use it)."""
        self._on_exit = on_exit
        if self.alive:
            return True
        self._on_exit = None
        return False

    # ---------------------------------------------------------------- stats
    def stats(self) -> dict[str, Any]:
        """RSS and CPU time read from ``/proc`` (no call into the worker)."""
        out: dict[str, Any] = {"pid": self.pid, "rss_mb": None, "cpu_seconds": None}
        if not self.alive:
            return out
        try:
            with open(f"/proc/{self.pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        out["rss_mb"] = round(int(line.split()[1]) / 1024, 1)
            with open(f"/proc/{self.pid}/stat") as fh:
                parts = fh.read().rpartition(")")[2].split()
            out["cpu_seconds"] = round((int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK"), 2)
        except (OSError, ValueError, IndexError):
            pass
        return out


# ---------------------------------------------------------------------- the spare worker
#: keep one started, not yet sandboxed, plugin-free worker ready: a load or a crash restart
#: then costs the sandbox and the plugin's import, not an interpreter start (~30-300 ms here).
#: It holds no plugin code (so nothing in it can be stale after a reload) and no protections
#: yet — those are applied from the setup message, before the plugin's first line, as always.
KEEP_SPARE = True
_spare: WorkerProcess | None = None
_spare_lock = threading.Lock()
_spare_pending = False


def _make_spare() -> None:
    global _spare, _spare_pending
    try:
        w = WorkerProcess()
    except Exception:
        w = None
    with _spare_lock:
        _spare_pending = False
        if _spare is not None and _spare.alive:
            if w is not None:
                w.close(timeout=0.2)
            return
        _spare = w


def _refill() -> None:
    global _spare_pending
    with _spare_lock:
        if not KEEP_SPARE or _spare_pending or (_spare is not None and _spare.alive):
            return
        _spare_pending = True
    threading.Thread(target=_make_spare, name="flx_ipy-spare-worker", daemon=True).start()


def take_worker(on_exit: Callable[[WorkerProcess], None]) -> WorkerProcess:
    """A worker for a new (or restarted) plugin: the spare if one is ready, else a new one."""
    global _spare
    with _spare_lock:
        w, _spare = _spare, None
    if w is None or not w.adopt(on_exit):  # a spare still booting is still ahead of a new one
        w = WorkerProcess(on_exit=on_exit)
    _refill()
    return w


def discard_spare() -> None:
    global _spare
    with _spare_lock:
        w, _spare = _spare, None
    if w is not None:
        w.close(timeout=0.2)
