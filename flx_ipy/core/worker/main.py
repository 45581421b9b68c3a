"""The worker process: one isolated plugin, run by an ordinary in-process ``PluginManager``.

Started by the kernel with ``subprocess`` (never ``fork``: the kernel is threaded) and handed
one end of a socketpair. The first message says what to protect and what to load; the sandbox
(``sandbox/``) is in force before the plugin's module runs its first line. After that the
worker answers one request at a time: method calls, lifecycle steps, checkpoints, and hot
reloads — the same reload transaction as in the kernel, because it *is* the same engine.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import select
import socket
import sys
import threading
import time
from typing import Any

from .. import loader
from ..errors import HookError, plugin_traceback
from ..files import source_hashes, sources
from ..lifecycle import coerce_state
from ..loader import overrides
from ..manager import PluginManager  # trusted code, imported before waiting: a spare is ready sooner
from ..steps import InProcess
from ..types import PluginState
from . import sandbox
from .protocol import Channel, ChannelClosed, NotPlainData, encode
from .sandbox import landlock, rlimits, seccomp, userns  # noqa: F401  (imported before the plugin too)


def _watch_parent(pfd: int | None) -> None:
    """Exit when the kernel dies, even while a plugin method is busy (no orphans). Started
    after the sandbox: ``unshare(CLONE_NEWUSER)`` refuses a process with threads."""
    if pfd is None:
        return

    def wait() -> None:
        select.select([pfd], [], [])
        os._exit(70)

    threading.stack_size(256 * 1024)
    threading.Thread(target=wait, name="flx_ipy-parent-watch", daemon=True).start()
    threading.stack_size(0)


def _private_tmp(data_dir: str) -> None:
    """``tempfile`` works inside the sandbox: temporary files go under the data folder, the one
    place the plugin may write without declaring more."""
    import tempfile

    tmp = os.path.join(data_dir, ".tmp")
    try:
        os.makedirs(tmp, exist_ok=True)
    except OSError:
        return
    os.environ["TMPDIR"] = tmp
    tempfile.tempdir = None


class Worker:
    def __init__(self, ch: Channel, setup: dict[str, Any]) -> None:
        self.ch = ch
        self.setup = setup
        data_dir = setup["policy"]["data_dir"]
        self.pm = PluginManager(entry_points=False, data_root=os.path.dirname(data_dir),
                                hook_timeout=None)
        self.name: str = ""

    # ------------------------------------------------------------ helpers
    def _await(self, value: Any) -> Any:
        if inspect.isawaitable(value):
            runner = self.pm.hooks
            assert isinstance(runner, InProcess)  # the worker's own manager runs hooks in-process
            return runner.hook_loop.run(value, None)
        return value

    @property
    def rec(self) -> Any:
        return self.pm.record(self.name)

    def info(self) -> dict[str, Any]:
        rec = self.rec
        inst = rec.instance
        cls = type(inst)
        methods = sorted(n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n, None)))
        return {"name": rec.name, "metadata": rec.metadata.to_dict(), "methods": methods,
                "files": sorted(rec.files), "hashes": {f: source_hashes.get(f) for f in rec.files},
                "root": rec.root, "package_dir": rec.package_dir, "source": rec.source,
                "status": str(rec.status), "error": rec.error, "failed_hashes": dict(rec.failed_hashes),
                "reload_count": rec.reload_count,
                "sources": {f: sources[f] for f in rec.files if f in sources}}

    # ------------------------------------------------------------ ops
    def op_load(self, req: dict[str, Any]) -> Any:
        self._pin(req.get("pins"))
        overrides.update(req.get("sources") or {})  # the last good version, after a crash
        try:
            rec = self.pm.load(req["target"], config=req.get("config") or {})
        finally:
            overrides.clear()
        self.name = rec.name
        return self.info()

    def op_call(self, req: dict[str, Any]) -> Any:
        fn = getattr(self.rec.instance, req["method"])
        return self._await(fn(*req.get("args", ()), **req.get("kwargs", {})))

    def op_getattr(self, req: dict[str, Any]) -> Any:
        value = getattr(self.rec.instance, req["attr"])
        if callable(value):
            return {"callable": True}
        return {"value": value}

    def op_lifecycle(self, req: dict[str, Any]) -> Any:
        step = req["step"]
        rec = self.rec
        if step == "initialize":
            rec.config = dict(req.get("config") or {})
            self.pm.initialize(self.name)
        elif step == "start":
            self.pm.start(self.name)
        elif step == "stop":
            before = rec.error
            self.pm.stop(self.name)
            return {"problem": rec.error if rec.error != before else None}
        elif step == "health":
            return self.pm.health(self.name).to_dict()  # type: ignore[union-attr]
        elif step == "state":
            return self.pm.state(self.name)
        return None

    def op_checkpoint(self, req: dict[str, Any]) -> Any:
        rec = self.rec
        inst = rec.instance
        if callable(getattr(inst, "save_state", None)) and rec.initialized:
            st = coerce_state(rec, self._await(inst.save_state()))
            return {"kind": "save_state", "data": st.to_dict(), "time": time.time()}
        attrs = {}
        for k, v in vars(inst).items():
            if k == "ctx" or k.startswith("__"):
                continue
            try:
                encode(v)
            except Exception:
                continue  # not plain data: cannot be carried to a new process
            attrs[k] = v
        return {"kind": "attributes", "data": attrs, "time": time.time()}

    def op_restore(self, req: dict[str, Any]) -> Any:
        rec = self.rec
        rec.config = dict(req.get("config") or {})
        if req.get("initialize"):
            self.pm.initialize(self.name)
        cp = req.get("checkpoint")
        inst = rec.instance
        if cp and cp["kind"] == "save_state" and callable(getattr(inst, "restore_state", None)):
            self._await(inst.restore_state(PluginState.from_dict(cp["data"])))
        elif cp and cp["kind"] == "attributes":
            for k, v in cp["data"].items():
                setattr(inst, k, v)
        if req.get("start"):
            self.pm.start(self.name)
        return self.info()

    @staticmethod
    def _pin(pins: dict[str, Any] | None) -> None:
        """The bytes the kernel's signature check verified: exactly those are imported here."""
        if pins:
            loader.pin(pins["unit"], {str(k): bytes(v) for k, v in pins["files"].items()},
                       strict=bool(pins.get("strict")))

    def _gate(self, req: dict[str, Any]) -> None:
        """The kernel's health gate holds for the reload the worker runs."""
        self.pm.health_gate = bool(req.get("health_gate"))
        if req.get("health_timeout"):
            self.pm.health_timeout = float(req["health_timeout"])

    def op_reload(self, req: dict[str, Any]) -> Any:
        self._gate(req)
        given = req.get("sources")  # a rollback's kept bytes, or the bytes a signature check verified
        res = self.pm.reload(self.name, force=bool(req.get("force", True)),
                             sources={str(k): bytes(v) for k, v in given.items()} if given else None)
        self._pin(req.get("pins") if res.ok else None)
        return {"results": [dataclasses.asdict(res)], "info": self.info()}

    def op_apply(self, req: dict[str, Any]) -> Any:
        self._gate(req)
        results = self.pm.apply_changes(req["paths"], force=bool(req.get("force")))
        return {"results": [dataclasses.asdict(r) for r in results], "info": self.info()}

    def op_ping(self, req: dict[str, Any]) -> Any:
        return req.get("value")

    # ------------------------------------------------------------ loop
    def error_reply(self, rid: Any, exc: BaseException, req: dict[str, Any]) -> dict[str, Any]:
        if isinstance(exc, HookError) and exc.__cause__ is not None:
            exc = exc.__cause__  # the plugin's own exception, not the manager's wrapper
        files = self.pm.registry[self.name].files if self.name in self.pm.registry else set()
        tb, where = plugin_traceback(exc, files)
        return {"id": rid, "ok": False, "type": type(exc).__name__, "message": str(exc),
                "traceback": tb, "where": where}

    def serve(self) -> None:
        ch = self.ch
        while True:
            try:
                req = ch.recv()
            except ChannelClosed:
                return
            rid, op = req.get("id"), req.get("op")
            if op == "exit":  # the plugin's stop() runs if it still runs (kernel shutdown)
                try:
                    self.pm.close()
                finally:
                    ch.send({"id": rid, "ok": True, "value": None})
                return
            handler = getattr(self, f"op_{op}", None)
            try:
                if handler is None:
                    raise ValueError(f"unknown worker operation {op!r}")
                value = handler(req)
                frame = encode({"id": rid, "ok": True, "value": value})
            except NotPlainData as e:
                what = req.get("method") or req.get("attr") or op
                frame = encode({"id": rid, "ok": False, "type": "TypeError", "not_plain": True,
                                "message": f"{self.name}.{what}() returned {e.what}, which is not plain "
                                           "data (JSON/MessagePack types: None, bool, int, float, str, "
                                           "bytes, list, dict)", "traceback": "", "where": None})
            except Exception as e:
                frame = encode(self.error_reply(rid, e, req))
            ch.send_raw(frame)


def main(argv: list[str]) -> None:
    fd = int(argv[0])
    os.set_inheritable(fd, False)  # a process the plugin starts must not hold the channel open
    sock = socket.socket(fileno=fd)
    ch = Channel(sock)
    try:
        parent_fd: int | None = os.pidfd_open(os.getppid())
    except (OSError, AttributeError):  # AttributeError: not Linux (EOF on the channel still ends us)
        parent_fd = None
    ch.send({"op": "ready"})  # imports done: the kernel sends the setup now
    try:
        setup = ch.recv()  # a spare worker waits here, plugin-free, until it is given a plugin
    except (ChannelClosed, OSError):
        return
    if setup.get("op") == "exit":  # a spare nobody needed
        ch.send({"id": setup.get("id"), "ok": True, "value": None})
        return
    here = sys.path[0]
    sys.path[:] = [here, *[p for p in setup.get("sys_path", []) if p != here]]
    try:
        os.chdir(setup.get("cwd") or "/")
    except OSError:
        pass
    policy = sandbox.Policy(**setup["policy"])
    applied = sandbox.apply(policy)
    _private_tmp(policy.data_dir)
    _watch_parent(parent_fd)
    worker = Worker(ch, setup)
    rid = setup.get("id")
    try:
        info = worker.op_load(setup)
        ch.send({"id": rid, "ok": True, "value": {"sandbox": applied.to_dict(), "plugin": info}})
    except Exception as e:
        reply = worker.error_reply(rid, e, setup)
        reply["sandbox"] = applied.to_dict()
        ch.send(reply)
        return
    worker.serve()


if __name__ == "__main__":
    main(sys.argv[1:])
