"""A Jupyter server extension: a kernel's plugins over Jupyter's own HTTP API and auth.

``GET /flx_ipy/api/kernels/{kernel_id}/plugins`` and ``.../readyz[?verbose]`` are answered by
that kernel's manager (``flx_ipy.snapshot.kernel_snapshot``), as jupyter-resource-usage asks its
kernels. The question is sent to a **subshell** of the kernel (ipykernel ≥ 7, "kernel subshells"
in ``kernel_info``): a subshell runs in its own thread, so it answers while a cell runs in the
main shell. Without subshells the question goes to the main shell only when the kernel is idle;
a busy kernel gets a clear 503 "kernel busy" instead of a request that hangs until the cell ends.

Enabled by ``pip install`` (the ``jupyter-config`` data file in the wheel); check with
``jupyter server extension list``.
"""

from __future__ import annotations

import ast
import asyncio
import json
import logging
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.application import ExtensionApp
from tornado import web
from traitlets import Bool, Float

log = logging.getLogger("flx_ipy")


class KernelError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class KernelAsker:
    """One client (and subshell) per kernel, reused; one question at a time per kernel."""

    def __init__(self, use_subshells: bool, timeout: float) -> None:
        self.use_subshells, self.timeout = use_subshells, timeout
        self._clients: dict[str, Any] = {}
        self._subshells: dict[str, str | None] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def ask(self, km: Any, kernel_id: str, expr: str) -> Any:
        lock = self._locks.setdefault(kernel_id, asyncio.Lock())
        async with lock:
            try:
                return await self._ask(km, kernel_id, expr)
            except KernelError:
                raise
            except Exception:
                self.forget(kernel_id)  # a restarted kernel: make a new client and subshell next time
                raise

    def forget(self, kernel_id: str) -> None:
        client = self._clients.pop(kernel_id, None)
        self._subshells.pop(kernel_id, None)
        if client is not None:
            client.stop_channels()

    async def _reply(self, channel: Any, msg_id: str, timeout: float) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise asyncio.TimeoutError
            reply = await channel.get_msg(timeout=left)
            if reply.get("parent_header", {}).get("msg_id") == msg_id:
                return reply  # type: ignore[no-any-return]

    async def _ask(self, km: Any, kernel_id: str, expr: str) -> Any:
        kernel = km.get_kernel(kernel_id)
        client = self._clients.get(kernel_id)
        if client is None:
            client = kernel.client()
            client.start_channels()
            self._clients[kernel_id] = client
        if kernel_id not in self._subshells:
            self._subshells[kernel_id] = await self._make_subshell(client) if self.use_subshells else None
        subshell = self._subshells[kernel_id]
        if subshell is None and getattr(kernel, "execution_state", "idle") == "busy":
            raise KernelError(503, "kernel busy: it runs a cell and has no subshells to answer meanwhile "
                                   "(ipykernel >= 7 has them); try again when the cell ends")
        msg = client.session.msg("execute_request", {
            "code": "", "silent": True, "store_history": False, "allow_stdin": False,
            "user_expressions": {"flx": expr}, "stop_on_error": False})
        if subshell is not None:
            msg["header"]["subshell_id"] = subshell
        client.shell_channel.send(msg)
        try:
            reply = await self._reply(client.shell_channel, msg["header"]["msg_id"], self.timeout)
        except (asyncio.TimeoutError, TimeoutError):
            raise KernelError(503, f"kernel busy: no answer within {self.timeout:g} s") from None
        content = reply["content"]
        if content.get("status") != "ok":
            if "subshell" in str(content.get("evalue", "")).lower():
                self._subshells.pop(kernel_id, None)
            raise KernelError(502, f"the kernel could not answer: {content.get('ename')}: {content.get('evalue')}")
        out = content["user_expressions"]["flx"]
        if out.get("status") != "ok":
            raise KernelError(502, f"the kernel could not answer: {out.get('ename')}: {out.get('evalue')} "
                                   "(is flx_ipy installed in the kernel's environment?)")
        return json.loads(ast.literal_eval(out["data"]["text/plain"]))

    async def _make_subshell(self, client: Any) -> str | None:
        """A subshell id, or None when the kernel has none (or does not answer on control)."""
        info = client.session.msg("kernel_info_request", {})
        client.control_channel.send(info)
        try:
            reply = await self._reply(client.control_channel, info["header"]["msg_id"], self.timeout)
        except (asyncio.TimeoutError, TimeoutError):
            return None
        if "kernel subshells" not in reply["content"].get("supported_features", []):
            return None
        req = client.session.msg("create_subshell_request", {})
        client.control_channel.send(req)
        reply = await self._reply(client.control_channel, req["header"]["msg_id"], self.timeout)
        return reply["content"].get("subshell_id")  # type: ignore[no-any-return]


class KernelPluginsHandler(APIHandler):
    auth_resource = "kernels"

    @web.authenticated
    @authorized
    async def get(self, kernel_id: str, what: str) -> None:
        km = self.kernel_manager
        if kernel_id not in km:
            raise web.HTTPError(404, f"no kernel {kernel_id}")
        asker: KernelAsker = self.settings["flx_ipy_asker"]
        verbose = self.get_argument("verbose", None) is not None
        expr = f"__import__('flx_ipy.snapshot', fromlist=['_']).kernel_snapshot({what!r}, {verbose!r})"
        try:
            answer = await asker.ask(km, kernel_id, expr)
        except KernelError as e:
            self.set_status(e.status)
            self.finish(json.dumps({"error": str(e), "kernel_id": kernel_id}))
            return
        if what == "readyz":
            self.set_status(answer["status"])
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish(answer["text"])
            return
        self.finish(json.dumps({"kernel_id": kernel_id, **answer}))


class FlxIpyServerExtension(ExtensionApp):
    name = "flx_ipy"
    use_subshells = Bool(True, help="Ask kernels through a subshell (answers while a cell runs) when the "
                                    "kernel has them.").tag(config=True)
    kernel_timeout = Float(5.0, help="Seconds to wait for a kernel's answer.").tag(config=True)

    def initialize_settings(self) -> None:
        self.settings["flx_ipy_asker"] = KernelAsker(self.use_subshells, self.kernel_timeout)

    def initialize_handlers(self) -> None:
        self.handlers.append((r"/flx_ipy/api/kernels/(?P<kernel_id>[\w-]+)/(?P<what>plugins|readyz)",
                              KernelPluginsHandler))
