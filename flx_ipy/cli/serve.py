"""``flx-ipy serve``: run plugins headless behind an HTTP API (the ADR's data platform, no Jupyter).

Loads and starts what it is given, serves ``flx_ipy.http.app`` under uvicorn, and on SIGTERM or
Ctrl-C stops serving, then stops the plugins in dependency order (dependants first) before it
exits 0. A plugin that cannot be loaded is a startup error (exit 1: a service should fail fast
and let its supervisor say so); one whose ``start`` fails stays loaded as ``failed`` and
``/readyz`` names it. Scaling out is many such processes behind a load balancer: each has its own
manager, and nothing is shared between them.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from .output import CliError

HELP = """\
TARGET is one of:
  a folder                  every plugin discovered in it (its *.py modules and package folders)
  a .py file or a package folder with __init__.py, or module:Class
  NAME                      a plugin listed by an entry point (group flx_ipy.plugins)
--entry-points loads every entry-point plugin as well.

The token guarding POST actions comes from --token, else $FLX_IPY_TOKEN, else is generated and
printed. The address is 127.0.0.1 unless --host says otherwise; --port 0 picks a free port.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("serve", help="run plugins headless with an HTTP API (livez, readyz, metrics)",
                              description="Run plugins without Jupyter, behind an HTTP API.", epilog=HELP,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("targets", nargs="*", metavar="TARGET", help="plugin folders, files, module:Class or names")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, metavar="N", help="port (default 8765; 0 picks a free one)")
    p.add_argument("--token", default=None, help="bearer token for POST actions (default: $FLX_IPY_TOKEN or random)")
    p.add_argument("--watch", action="store_true", help="reload plugins when their files are saved")
    p.add_argument("--entry-points", action="store_true", help="also load every entry-point plugin")
    p.add_argument("--health-interval", type=float, default=1.0, metavar="SECONDS",
                   help="seconds between health-check rounds feeding /readyz (default 1; 0: never)")
    p.add_argument("--health-timeout", type=float, default=5.0, metavar="SECONDS",
                   help="how long a health check may take (default 5)")
    p.add_argument("--health-gate", action="store_true",
                   help="roll a reload back when the new code's health check says unhealthy")
    p.add_argument("--grpc-port", type=int, default=None, metavar="N",
                   help="also serve grpc.health.v1 on this port (one service per plugin; extra flx_ipy[grpc])")
    p.add_argument("--no-start", action="store_true", help="load the plugins but do not start them")
    p.set_defaults(func=run)


def _load_all(pm: Any, targets: list[str], entry_points: bool) -> list[str]:
    """Load every target; returns the names loaded, in order. Raises CliError on the first failure."""
    from ..core.errors import FlxError

    wanted: list[str] = []
    for t in targets:
        path = Path(os.path.expanduser(t))
        if path.is_dir() and not (path / "__init__.py").exists():
            pm.discover(path.resolve())
            found = [c for c in pm.candidates if c.path is not None and _under(c.path, path.resolve())]
            bad = [c for c in found if not c.ok]
            if bad:
                raise CliError(f"serve: {bad[0].source}: {bad[0].error}")
            if not found:
                raise CliError(f"serve: no plugins found in {path}")
            wanted += [c.target for c in found]
        elif path.exists():
            wanted.append(str(path.resolve()))
        elif "/" not in t and os.sep not in t and not t.endswith(".py"):  # module:Class or a name
            wanted.append(t)
        else:
            raise CliError(f"serve: no such file or folder: {t}", code=2)
    if entry_points:
        pm.discover()
        wanted += [c.target for c in pm.candidates if c.kind == "entry_point" and c.ok]
    names: list[str] = []
    for target in wanted:
        try:
            rec = pm.load(target)
        except FlxError as e:
            raise CliError(f"serve: cannot load {target}: {e}") from None
        if rec.name not in names:
            names.append(rec.name)
    return names


def _under(p: Path, folder: Path) -> bool:
    try:
        p.resolve().relative_to(folder)
        return True
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..http import app as make_app
    except ImportError as e:
        raise CliError(f"serve needs the serve extra: pip install 'flx_ipy[serve]' ({e.name} is missing)") from None
    from ..core import PluginManager
    from ..core.errors import FlxError

    if not args.targets and not args.entry_points:
        raise CliError("serve: give plugin folders, files or names, or --entry-points", code=2)
    # from here on SIGTERM/Ctrl-C mean "shut down cleanly", even before uvicorn listens for them
    stop_asked: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: stop_asked.append(signum))
    # entry points are always listed (a NAME target is resolved through them); --entry-points
    # decides whether every one of them is loaded
    pm = PluginManager(entry_points=True, health_timeout=args.health_timeout,
                       health_gate=args.health_gate)
    try:
        names = _load_all(pm, args.targets, args.entry_points)
        if not args.no_start:
            for name in names:
                if str(pm.status(name)) != "running":
                    try:
                        pm.start(name)
                    except FlxError as e:
                        print(f"flx-ipy serve: {e}", file=sys.stderr)
        if args.watch:
            pm.watch()
        try:
            # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP, and
            # without it every kept-alive response waits ~40 ms for a delayed ACK (Nagle)
            sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM,
                                 socket.IPPROTO_TCP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((args.host, args.port))
            sock.listen(128)  # connections made after the URL is printed wait in the backlog
        except OSError as e:
            raise CliError(f"serve: cannot listen on {args.host}:{args.port}: {e.strerror}") from None
        application = make_app(pm, token=args.token, health_interval=args.health_interval)
        grpc_service = _grpc(pm, args) if args.grpc_port is not None else None
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        print(f"flx-ipy serve: http://{shown}:{port}", flush=True)
        given = args.token or os.environ.get("FLX_IPY_TOKEN")
        print(f"token: {'(as given)' if given else application.state.token}", flush=True)
        for name in names:
            rec = pm.plugins[name]
            print(f"  {name} {rec.version} {rec.status}" + (f" — {rec.error}" if rec.error else ""), flush=True)
        if args.watch:
            print(f"watching: {', '.join(pm.watched_paths)}", flush=True)
        if grpc_service is not None:
            print(f"grpc health: {shown}:{grpc_service.port}", flush=True)
        print("serving (SIGTERM or Ctrl-C stops the plugins, dependants first)", flush=True)
        try:
            if not stop_asked:
                _serve(uvicorn, application, sock, stop_asked)
        finally:
            if grpc_service is not None:
                grpc_service.stop()
    finally:
        order = _shutdown(pm)
        if order:
            print(f"flx-ipy serve: stopped {', '.join(order)}", file=sys.stderr, flush=True)
    return 0


def _grpc(pm: Any, args: argparse.Namespace) -> Any:
    try:
        from ..grpc_health import PluginHealthService

        return PluginHealthService(pm, args.host, args.grpc_port).start()
    except ImportError as e:
        raise CliError(f"--grpc-port needs the grpc extra: pip install 'flx_ipy[grpc]' ({e.name} is missing)") from None
    except (OSError, RuntimeError) as e:
        raise CliError(f"serve: gRPC health: {e}") from None


def _serve(uvicorn: Any, application: Any, sock: socket.socket, stop_asked: list[int]) -> None:
    class Server(uvicorn.Server):  # type: ignore[misc]
        def handle_exit(self, sig: int, frame: Any) -> None:
            application.state.closing = True  # event streams end now, not at the grace timeout
            super().handle_exit(sig, frame)

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if stop_asked:  # a signal came between our handler and uvicorn's
                self.should_exit = True

    config = uvicorn.Config(application, log_level="warning", lifespan="on", timeout_graceful_shutdown=5,
                            access_log=False)
    server = Server(config)
    # uvicorn re-raises a captured SIGTERM/SIGINT after serving, with the handlers it found: ours
    # (recording it), so the plugins are stopped afterwards and the exit code is 0
    server.run(sockets=[sock])


def _shutdown(pm: Any) -> list[str]:
    """Stop every running plugin, dependants before their dependencies; then unload all."""
    stopped = []
    for name in pm.registry.shutdown_order():
        rec = pm.plugins.get(name)
        if rec is not None and str(rec.status) == "running":
            try:
                pm.stop(name)
                stopped.append(name)
            except Exception as e:
                print(f"flx-ipy serve: stopping {name}: {e}", file=sys.stderr)
    pm.close()
    return stopped
