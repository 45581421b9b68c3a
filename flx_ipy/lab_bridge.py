"""Kernel side of the JupyterLab side panel: the plugin manager over a Jupyter comm.

``%load_ext flx_ipy`` calls ``LabBridge(manager).attach()``; unloading calls ``detach()``.

* ``attach`` registers the comm target ``flx_ipy`` (the panel opens a comm to it whenever it
  follows this kernel) and rings the panel's doorbell: a comm opened, and closed at once, to
  the frontend target ``flx_ipy.panel``, so a panel opened *before* ``%load_ext`` connects now.
* Each panel's comm gets a snapshot, then a delta per manager event
  (:class:`flx_ipy.uistate.UIState`), also while the kernel is idle: events from the watcher
  thread are sent from that thread (iopub is thread-safe), no cell needs to run.
* Actions (start / stop / reload / unload / rollback / refresh) arrive as comm messages, which the kernel
  handles between cells (the panel shows them as queued meanwhile); each gets a reply.
* No stale comms: a page that reloads names the comm it held (``replaces``) and that one is
  closed; a comm whose send fails is dropped; ``detach`` closes them all.

The protocol is :mod:`flx_ipy.protocol`, mirrored by ``labextension/src/protocol.ts``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from . import protocol
from ._version import __version__
from .protocol import KERNEL_TARGET, PANEL_TARGET, ProtocolError
from .uistate import UIState, run_action

log = logging.getLogger("flx_ipy")


class _Client:
    """One panel's comm and its subscription to the state stream."""

    def __init__(self, comm: Any) -> None:
        self.comm = comm
        self.stop_listening: Callable[[], None] | None = None

    @property
    def comm_id(self) -> str:
        return str(getattr(self.comm, "comm_id", ""))


class LabBridge:
    """Serve the manager's state and actions to JupyterLab side panels over comms."""

    def __init__(self, manager: Any, *, comm_manager: Any = None,
                 create_comm: Callable[..., Any] | None = None,
                 defer: Callable[[Callable[[], Any]], Any] | None = None) -> None:
        #: where actions run: ipykernel 7 may deliver a comm message while a cell runs, so the
        #: extension passes its reload scheduler here and a click waits for the cell to end
        self._defer = defer
        self.manager = manager
        self._comm_manager = comm_manager
        self._create_comm = create_comm
        self._state: UIState | None = None
        self._clients: dict[str, _Client] = {}
        self._lock = threading.RLock()

    # --- lifecycle ---------------------------------------------------------------------------

    def attach(self) -> LabBridge:
        """Register the comm target and announce this kernel to open panels (idempotent)."""
        if self._state is not None:
            return self
        self._state = UIState(self.manager).attach()
        self._comms().register_target(KERNEL_TARGET, self._on_open)
        self._announce()
        return self

    def detach(self) -> None:
        """Close every panel's comm, stop following the manager, unregister the target."""
        state, self._state = self._state, None
        if state is None:
            return
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            self._drop(client, close=True)
        state.detach()
        cm = self._comms()
        if getattr(cm, "targets", {}).get(KERNEL_TARGET) == self._on_open:
            cm.unregister_target(KERNEL_TARGET, self._on_open)

    @property
    def attached(self) -> bool:
        return self._state is not None

    @property
    def comm_ids(self) -> list[str]:
        """Comms of the panels connected now (for tests and ``%plugin`` diagnostics)."""
        with self._lock:
            return list(self._clients)

    # --- comm plumbing -----------------------------------------------------------------------

    def _comms(self) -> Any:
        if self._comm_manager is None:
            import comm

            self._comm_manager = comm.get_comm_manager()
        return self._comm_manager

    def _new_comm(self, **kwargs: Any) -> Any:
        if self._create_comm is None:
            import comm

            self._create_comm = comm.create_comm
        return self._create_comm(**kwargs)

    def _announce(self) -> None:
        if not frontend_may_listen():
            return  # headless (nbclient, papermill): nobody registered the panel's target
        try:
            doorbell = self._new_comm(target_name=PANEL_TARGET, data=protocol.announce(__version__))
            doorbell.close()  # the panel answers with a comm of its own; keep nothing here
        except Exception:  # no frontend, or not in a kernel: panels will connect on their own
            log.debug("flx_ipy: announcing to the lab panel failed", exc_info=True)

    def _on_open(self, comm: Any, msg: dict[str, Any]) -> None:
        """A panel opened a comm: check its hello, then stream snapshot + deltas to it."""
        state = self._state
        data = msg.get("content", {}).get("data")
        try:
            hello = protocol.parse_client_message(data)
            if hello["kind"] != "hello":
                raise ProtocolError("flx_ipy: a panel must open its comm with a 'hello' message")
        except ProtocolError as e:
            comm.send(protocol.error(str(e), e.code))
            comm.close()
            return
        if state is None:
            comm.close()
            return
        replaces = hello.get("replaces")
        if replaces:
            with self._lock:
                stale = self._clients.pop(replaces, None)
            if stale is not None:
                self._drop(stale, close=True)
        client = _Client(comm)
        comm.on_msg(lambda m: self._on_msg(client, m))
        comm.on_close(lambda m: self._on_close(client))
        with self._lock:
            self._clients[client.comm_id] = client
        client.stop_listening = state.listen(lambda message: self._send(client, message))

    def _on_close(self, client: _Client) -> None:
        with self._lock:
            self._clients.pop(client.comm_id, None)
        if client.stop_listening is not None:
            client.stop_listening()

    def _drop(self, client: _Client, *, close: bool) -> None:
        with self._lock:
            self._clients.pop(client.comm_id, None)
        if client.stop_listening is not None:
            client.stop_listening()
        if close:
            try:
                client.comm.close()
            except Exception:
                log.debug("flx_ipy: closing a panel comm failed", exc_info=True)

    def _send(self, client: _Client, message: Any) -> None:
        if getattr(client.comm, "_closed", False):
            self._drop(client, close=False)
            return
        try:
            client.comm.send(message)
        except Exception:
            log.warning("flx_ipy: a side panel's comm failed; dropping it", exc_info=True)
            self._drop(client, close=False)

    # --- actions -----------------------------------------------------------------------------

    def _on_msg(self, client: _Client, msg: dict[str, Any]) -> None:
        data = msg.get("content", {}).get("data")
        try:
            request = protocol.parse_client_message(data)
        except ProtocolError as e:
            self._send(client, protocol.error(str(e), e.code))
            return
        if request["kind"] != "action":
            return  # a repeated hello: nothing to do, the stream is already flowing
        name, plugin, request_id = request["action"], request["plugin"], request["request_id"]

        def act() -> list[Any]:
            data = None
            try:
                if name in protocol.INDEX_ACTIONS:
                    ok, text, data = self.index_action(request, client)
                else:
                    revision = request.get("revision")  # parse_client_message checked it: int or None
                    ok, text = self.run_action(name, plugin, client,
                                               revision=revision if isinstance(revision, int) else None)
            except Exception as e:  # flx_ipy errors are one line with the next step in them
                ok, text = False, str(e) or type(e).__name__
            self._send(client, protocol.reply(request_id, name, plugin, ok, text, data))
            return []

        if self._defer is not None:
            self._defer(act)
        else:
            act()

    def index_action(self, request: Any, client: _Client | None = None) -> tuple[bool, str, Any]:
        """``index_search`` / ``install`` from a panel (:mod:`flx_ipy.registry.panel`); pip's
        output goes to the panel as progress messages while it runs."""
        from .registry.panel import configured_index, index_action

        name, request_id = request["action"], request["request_id"]

        def progress(line: str) -> None:
            if client is not None:
                self._send(client, protocol.progress(request_id, name, line))

        return index_action(self.manager, name, spec=request.get("plugin"), term=request.get("term"),
                            index=request.get("index") or configured_index(), progress=progress)

    def run_action(self, name: str, plugin: str | None, client: _Client | None = None, *,
                   revision: int | None = None) -> tuple[bool, str]:
        """Run one panel action on the manager; returns ``(ok, what happened)``. ``revision``
        is a rollback's target (``None``: the one before the current)."""
        pm = self.manager
        if name == "refresh":
            if pm.plugins:
                pm.health()  # re-check, so the snapshot shows health as of now
            state = self._state
            if client is not None and state is not None:
                with state.locked():
                    self._send(client, protocol.snapshot(state.snapshot()))
            return True, "refreshed"
        assert plugin is not None  # parse_client_message checked it
        return run_action(pm, name, plugin, origin="labextension", revision=revision)


def frontend_may_listen() -> bool:
    """Whether a side panel may be listening for the doorbell.

    A kernel that Jupyter Server started for a notebook or console (JupyterLab, Notebook 7) has
    ``JPY_SESSION_NAME`` set; nbclient, papermill and nbconvert start kernels through
    jupyter_client alone, and there a comm to ``flx_ipy.panel`` only makes nbclient log "No
    handler found for comm target". ``FLX_IPY_ANNOUNCE=1`` / ``=0`` overrides. A panel opened
    later connects on its own either way; the doorbell only speeds up ``%load_ext``.
    """
    forced = os.environ.get("FLX_IPY_ANNOUNCE", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    return bool(os.environ.get("JPY_SESSION_NAME"))
