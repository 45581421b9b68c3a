"""``flx_ipy.http.app(pm)`` mounted inside another Starlette app, served by uvicorn in-process
on 127.0.0.1 and driven over real HTTP."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from flx_ipy import PluginManager
from flx_ipy.testing import plugin_source, wait_for, write_plugin

httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

HEALTH = """
def health_check(self):
    return HealthStatus.unhealthy("sick") if getattr(self, "sick", False) else HealthStatus.healthy("ok")
"""


@pytest.fixture
def mounted(pm: PluginManager, plugin_dir: Path) -> Iterator[tuple[str, PluginManager, str]]:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    from flx_ipy.http import app

    pm.load(str(write_plugin(plugin_dir / "mounted.py", plugin_source("mounted", "1.0.0", HEALTH))), start=True)
    sub = app(pm, token="tok", health_interval=0.05)

    async def home(request: object) -> PlainTextResponse:
        return PlainTextResponse("the host service")

    host = Starlette(routes=[Route("/", home), Mount("/plugins", app=sub)])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(host, log_level="warning", lifespan="on"))
    t = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    t.start()
    wait_for(lambda: server.started, timeout=10)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", pm, sub.state.token
    finally:
        sub.state.refresher.stop()
        server.should_exit = True
        t.join(10)


def test_mounted_app_serves_under_its_prefix(mounted: tuple[str, PluginManager, str]) -> None:
    url, pm, token = mounted
    with httpx.Client(base_url=url, timeout=10) as c:
        assert c.get("/").text == "the host service"
        assert c.get("/plugins/livez").status_code == 200
        assert c.get("/plugins/api/plugins").json()[0]["name"] == "mounted"
        wait_for(lambda: c.get("/plugins/readyz").status_code == 200, timeout=10)
        pm.get("mounted").sick = True  # health rounds run although the host app owns the lifespan
        wait_for(lambda: c.get("/plugins/readyz").status_code == 503, timeout=10)
        assert c.post("/plugins/api/plugins/mounted/stop").status_code == 401
        r = c.post("/plugins/api/plugins/mounted/stop", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and pm.status("mounted") == "stopped"
        assert c.get("/plugins/readyz").status_code == 200  # stopped on purpose


def test_event_stream_replays_and_resumes_after_last_event_id(mounted: tuple[str, PluginManager, str]) -> None:
    import json

    url, pm, _token = mounted
    seqs = [e.seq for e in pm.events.history()]
    assert len(seqs) >= 3

    def first_events(headers: dict[str, str], query: str, n: int) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        with httpx.Client(base_url=url, timeout=10) as c, c.stream("GET", "/plugins/api/events" + query,
                                                                    headers=headers) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    out.append(json.loads(line[6:]))
                    if len(out) == n:
                        return out
        return out

    replayed = first_events({}, "?replay=1", len(seqs))
    assert [e["seq"] for e in replayed] == seqs
    resumed = first_events({"Last-Event-ID": str(seqs[-2])}, "", 1)
    assert [e["seq"] for e in resumed] == [seqs[-1]]
