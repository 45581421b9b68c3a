"""The ASGI app: routes, bearer-token auth, readiness, and the background health refresh.

Reads (``/readyz``, ``/api/plugins``) are async handlers that only read the registry, so a
probe never waits behind a thread pool or a plugin's health check: health is refreshed by a
background thread every ``health_interval`` seconds (each check has its own timeout), and the
probes report the last result. Actions run the manager's sync operations in Starlette's thread
pool; the manager's lock serialises them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import secrets
import threading
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from ..core.errors import FlxError, InvalidStateError, PluginNotFoundError
from ..snapshot import plugin_view, readyz_text

log = logging.getLogger("flx_ipy")

ACTIONS = ("start", "stop", "reload", "rollback")
TOKEN_ENV = "FLX_IPY_TOKEN"


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


# ---------------------------------------------------------------------------- health refresh
class HealthRefresher:
    """Re-run every health check each ``interval`` seconds in a daemon thread."""

    def __init__(self, pm: Any, interval: float) -> None:
        self.pm, self.interval = pm, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.interval > 0 and self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(target=self._run, name="flx_ipy-http-health", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.pm.health()
            except Exception:
                log.debug("flx_ipy: health refresh failed", exc_info=True)
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()


# ---------------------------------------------------------------------------- the app
def app(manager: Any, *, token: str | None = None, health_interval: float = 1.0,
        actor: str = "http") -> Starlette:
    """An ASGI app serving ``manager``. ``token`` guards the actions (default: ``$FLX_IPY_TOKEN``,
    else a random one, readable as ``app.state.token``). The app never stops the manager's
    plugins itself: whoever owns the manager does (``flx-ipy serve`` does, on SIGTERM)."""
    pm = manager
    secret = token or os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(24)
    expected = secret.encode()
    refresher = HealthRefresher(pm, health_interval)
    collectors: dict[str, Any] = {}  # the Prometheus registry, made at the first scrape

    def authorized(request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if not header or scheme.lower() != "bearer" or not given:
            return JSONResponse({"error": "this action needs `Authorization: Bearer TOKEN`"}, status_code=401,
                                headers={"WWW-Authenticate": 'Bearer realm="flx-ipy"'})
        if not hmac.compare_digest(given.strip().encode(), expected):
            return _error(403, "wrong token")
        return None

    async def livez(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        refresher.start()  # mounted in another app, our lifespan never runs: start on first use
        status, text = readyz_text(pm, "verbose" in request.query_params)
        return PlainTextResponse(text, status_code=status)

    async def plugins(request: Request) -> Response:
        refresher.start()
        return JSONResponse([plugin_view(pm, rec) for _, rec in sorted(pm.plugins.items())])

    async def plugin(request: Request) -> Response:
        name = request.path_params["name"]
        rec = pm.plugins.get(name)
        if rec is None:
            return _error(404, f"no plugin named {name!r} is loaded")
        view = plugin_view(pm, rec)
        view["history"] = [r.to_dict() for r in pm.history(name)]
        view["metrics"] = pm.metrics().get(name)
        return JSONResponse(view)

    async def action(request: Request) -> Response:
        denied = authorized(request)
        if denied is not None:
            return denied
        name, verb = request.path_params["name"], request.path_params["action"]
        if verb not in ACTIONS:
            return _error(404, f"no action {verb!r}; one of: {', '.join(ACTIONS)}")
        args: tuple[Any, ...] = (name,)
        if verb == "rollback":
            to: Any = request.query_params.get("to")
            body = await request.body()
            if body:
                try:
                    payload = json.loads(body)
                except ValueError:
                    return _error(400, "the body must be JSON, e.g. {\"to\": 3}")
                to = payload.get("to", to) if isinstance(payload, dict) else to
            if to is not None:
                try:
                    to = int(to)
                except (TypeError, ValueError):
                    return _error(400, f"`to` must be a revision number, not {to!r}")
            args = (name, to)
        try:
            out = await run_in_threadpool(getattr(pm, verb), *args)
        except PluginNotFoundError as e:
            return _error(404, str(e))
        except (InvalidStateError, FlxError) as e:
            return _error(409, str(e))
        rec = pm.plugins.get(name)
        body_out: dict[str, Any] = {"ok": True, "plugin": plugin_view(pm, rec) if rec is not None else None}
        if verb in ("reload", "rollback"):
            body_out["ok"] = bool(out.ok)
            body_out["result"] = out.to_dict()
            if not out.ok:
                body_out["error"] = out.summary()
                return JSONResponse(body_out, status_code=409)
        return JSONResponse(body_out)

    async def metrics(request: Request) -> Response:
        from .prom import render

        data, content_type = await run_in_threadpool(render, pm, collectors)
        return Response(data, media_type=content_type)

    async def events(request: Request) -> Response:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1000)

        def push(ev: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(_offer, queue, ev)

        # ?replay=1: the kept history first; a reconnecting EventSource sends Last-Event-ID and
        # gets what it missed (if still kept). Live events queue from now on; seq dedupes.
        since: int | None = -1 if request.query_params.get("replay") not in (None, "", "0", "false") else None
        with contextlib.suppress(TypeError, ValueError):
            since = int(request.headers.get("last-event-id", ""))
        unsubscribe = pm.subscribe(push)
        backlog = [e for e in pm.events.history() if e.seq > since] if since is not None else []

        def frame(ev: Any) -> bytes:
            data = json.dumps({"kind": ev.kind, "plugin": ev.plugin, "time": ev.time, "seq": ev.seq,
                               "details": ev.details}, default=str)
            return f"id: {ev.seq}\nevent: {ev.kind}\ndata: {data}\n\n".encode()

        async def stream() -> AsyncIterator[bytes]:
            sent = 0
            try:
                yield b": flx-ipy events\n\n"
                for ev in backlog:
                    sent = ev.seq
                    yield frame(ev)
                while not state.closing:
                    try:
                        ev = await asyncio.wait_for(queue.get(), 0.5)
                    except asyncio.TimeoutError:
                        continue
                    if ev.seq > sent:
                        sent = ev.seq
                        yield frame(ev)
            finally:
                unsubscribe()

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        refresher.start()
        try:
            yield
        finally:
            state.closing = True
            refresher.stop()

    routes = [
        Route("/livez", livez), Route("/readyz", readyz),
        Route("/api/plugins", plugins), Route("/api/plugins/{name}", plugin),
        Route("/api/plugins/{name}/{action}", action, methods=["POST"]),
        Route("/api/events", events), Route("/metrics", metrics),
    ]
    application = Starlette(routes=routes, lifespan=lifespan)
    state = application.state
    state.token = secret
    state.manager = pm
    state.closing = False
    state.refresher = refresher
    return application


def _offer(queue: asyncio.Queue[Any], ev: Any) -> None:
    try:
        queue.put_nowait(ev)
    except asyncio.QueueFull:  # a client that does not read loses events, never the manager
        pass
