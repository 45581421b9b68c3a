"""``%plugin``: the plugin author's commands, their configuration and their completion.

A thin adapter over the manager (as IPython's ``AutoreloadMagics`` is over ``ModuleReloader``):
parse, call the manager, render. Each subcommand is written once as a generator that *yields*
the manager operations it needs, ``("start", name)``; a sync driver calls ``pm.start`` and an
async driver awaits ``pm.astart``. The sync form is what ``%plugin start x`` runs inside a
``def`` (async hooks then run on the manager's private hook loop); a top-level ``%plugin start
x`` is rewritten by :func:`rewrite_awaitable` into ``await arun("start x")``, so an ``async
def start`` runs on the kernel's own loop and the cell waits for it — no nest-asyncio.

Errors are one line through ``IPython.core.error.UsageError`` itself (IPython shortens only
that exact class): what failed, which plugin, what is still running, what to type next. The
plugin's own traceback is there on request: ``%plugin error NAME`` or ``%plugin log -v``.
"""

from __future__ import annotations

import ast
import inspect
import logging
import os
import shlex
from collections.abc import Generator
from typing import Any

from IPython.core.error import TryNext, UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, Enum, Float, Int, List, Unicode, observe

from . import display
from .core.errors import FlxError
from .core.origin import origin_scope
from .core.steps import adrive, drive

log = logging.getLogger("flx_ipy")

__all__ = ["PluginMagics", "arun", "help_text", "rewrite_awaitable"]

SUBCOMMANDS = ("discover", "list", "load", "start", "stop", "reload", "unload", "watch", "unwatch",
               "health", "state", "get", "panel", "log", "error", "validate", "sync", "history", "rollback",
               "stats", "search", "install", "audit", "verify", "help")
#: subcommands that call plugin hooks, so a top-level use is awaited on the kernel's loop
AWAITED = frozenset({"load", "start", "stop", "reload", "unload", "health", "rollback"})
_NAME_ARG = frozenset({"start", "stop", "reload", "unload", "health", "state", "get", "error", "history",
                       "rollback", "stats"})
_PATH_ARG = frozenset({"discover", "validate"})  # verify takes a name or a path: both complete

_current: PluginMagics | None = None

Op = tuple[Any, ...]  # (method, args) or (method, args, kwargs)
Command = Generator[Op, Any, Any]


def _jupyter_data_dir() -> str:
    """Jupyter's data dir; terminal IPython may run without jupyter_core, which computes it."""
    try:
        from jupyter_core.paths import jupyter_data_dir
    except ImportError:  # the same rule jupyter_core applies on Linux: JUPYTER_DATA_DIR, then XDG
        if os.environ.get("JUPYTER_DATA_DIR"):
            return os.environ["JUPYTER_DATA_DIR"]
        xdg = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
        return os.path.join(xdg, "jupyter")
    return str(jupyter_data_dir())


@magics_class
class PluginMagics(Magics):
    """``%plugin`` and its settings (``c.PluginMagics.step = 10`` or ``%config PluginMagics.step = 10``)."""

    plugin_dirs = List(Unicode(), help="Folders searched for plugins, besides entry points.").tag(config=True)
    watch_on_load = Bool(False, help="Watch a plugin's folder as soon as it is loaded.").tag(config=True)
    debounce = Int(200, help="Watcher debounce in ms: caps how long a continuous stream of file events "
                             "is grouped. It does not set latency; `step` does.").tag(config=True)
    step = Int(5, help="Watcher step in ms: a batch of file events ends after this much quiet. "
                       "Sets the save-to-reload latency.").tag(config=True)
    settle = Float(0.008, help="Seconds a changed file must keep the same content before it is "
                               "applied (editors write in several steps).").tag(config=True)
    health_timeout = Float(5.0, help="Seconds a health check may take before it counts as "
                                     "unhealthy.").tag(config=True)
    health_interval = Float(30.0, help="In a kernel, re-run health checks every this many seconds "
                                       "while no cell runs, so panels show health as it changes "
                                       "(0: only on request).").tag(config=True)
    health_gate = Bool(False, help="Roll a reload back when the new code's health check says unhealthy "
                                   "within the health timeout (Helm's --atomic).").tag(config=True)
    loop_lag_threshold = Float(0.1, help="In a kernel, warn (once per offence) naming the plugin whose code "
                                         "blocked the kernel's event loop longer than this many seconds while "
                                         "no cell ran (0: off). Read when the extension loads.").tag(config=True)
    log_size = Int(500, help="Manager events kept for `%plugin log` and late-attaching panels.").tag(config=True)
    isolate = List(Unicode(), help="Plugins loaded isolated (own sandboxed worker process) even without "
                                   "--isolated: names, or 'all', or 'entry_points'.").tag(config=True)
    force_polling = Bool(None, allow_none=True,
                         help="Poll for changes instead of waiting for file system events. None: "
                              "poll only where events do not arrive (network, VM/WSL and Docker "
                              "Desktop mounts; FLX_IPY_FORCE_POLLING in the environment).").tag(config=True)
    index = Unicode("", help="Default plugin index (folder or URL) for `%plugin search` and `%plugin install`; "
                             "empty: $FLX_IPY_INDEX.").tag(config=True)
    status_line = Bool(True, help="In a notebook, show a status line under `%plugin watch` that "
                                  "updates in place when a save is applied.").tag(config=True)
    signature_policy = Enum(["off", "warn", "require"], "off",
                            help="Check plugin signatures: 'off' (nothing checked), 'warn' (load, and show "
                                 "unsigned/modified), 'require' (refuse what is not signed by an allowed "
                                 "signer; roll back hot edits of signed plugins).").tag(config=True)
    allowed_signers = Unicode("", help="OpenSSH allowed_signers file of trusted plugin signers "
                                       '(PRINCIPAL namespaces="flx-ipy" ssh-ed25519 AAAA...).').tag(config=True)
    audit_log = Unicode("", help="Audit log file (JSON Lines, hash-chained). Empty: "
                                 "<Jupyter data dir>/flx_ipy/audit.jsonl; 'off': no audit log.").tag(config=True)
    audit_mode = Enum(["buffered", "blocking"], "buffered",
                      help="'buffered': records are written by a background thread; 'blocking': written "
                           "before each operation returns, and no plugin code loads while the log cannot "
                           "be written.").tag(config=True)

    def __init__(self, shell: Any, pm: Any, scheduler: Any = None, status: Any = None, **kwargs: Any) -> None:
        self.pm = pm
        self.scheduler = scheduler
        self.status = status
        self.poller: Any = None  # the extension's HealthPoller, re-armed when the interval changes
        self.last_internal_error: str | None = None
        super().__init__(shell=shell, parent=shell, **kwargs)
        self.apply_config()

    # ----------------------------------------------------------------- configuration
    def apply_config(self) -> None:
        """Push every setting into the manager (at load, and whenever one changes)."""
        if self.plugin_dirs:
            self.pm.discovery.add_dirs(*self.plugin_dirs)
        self.pm.health_timeout = self.health_timeout
        self.pm.health_gate = self.health_gate
        self.pm.events.resize(self.log_size)
        if self.isolate:
            self.pm.isolate = self.isolate[0] if self.isolate[0] in ("all", "entry_points") else list(self.isolate)

        self.pm.allowed_signers = os.path.expanduser(self.allowed_signers) if self.allowed_signers else None
        self.pm.signature_policy = self.signature_policy
        path = self.audit_path()
        current = self.pm.audit
        # a log the manager was given in Python (PluginManager(audit_log=...)) is kept unless a
        # setting names another; one these settings chose follows them
        ours = current is not None and str(current.path) == getattr(self, "_audit_applied", None)
        if path is None:
            if current is not None:
                self.pm.set_audit_log(None)
        elif current is None or ((ours or self.audit_log) and (
                str(current.path) != path or current.log.mode != self.audit_mode)):
            self.pm.set_audit_log(path, mode=self.audit_mode)
        self._audit_applied = str(self.pm.audit.path) if self.pm.audit is not None else None

    def audit_path(self) -> str | None:
        """Where this kernel's audit log goes (None: off)."""
        if self.audit_log.strip().lower() == "off":
            return None
        if self.audit_log:
            return os.path.abspath(os.path.expanduser(self.audit_log))
        return os.path.join(_jupyter_data_dir(), "flx_ipy", "audit.jsonl")

    @observe("plugin_dirs", "health_timeout", "health_gate", "log_size", "isolate", "signature_policy",
             "allowed_signers", "audit_log", "audit_mode")
    def _manager_setting(self, change: Any) -> None:
        if getattr(self, "pm", None) is not None:
            self.apply_config()

    @observe("health_interval")
    def _poll_setting(self, change: Any) -> None:
        poller = getattr(self, "poller", None)
        if poller is not None:
            poller.stop()
            poller.interval = change["new"]
            poller.start()

    @observe("debounce", "step", "settle", "force_polling")
    def _watch_setting(self, change: Any) -> None:
        pm = getattr(self, "pm", None)
        if pm is not None and pm.watching:  # re-arm with the new timing, same folders
            self.arm_watch(pm.watched_paths)

    def arm_watch(self, paths: list[str] | None) -> Any:
        applier = self.scheduler.save_applier if self.scheduler is not None else None
        return self.pm.watch(paths, applier=applier, debounce=self.debounce, step=self.step,
                             settle=self.settle, force_polling=self.force_polling)

    # ----------------------------------------------------------------- the magic
    @line_magic
    @magic_arguments()
    @argument("command", nargs="?", default="help", help="one of: " + ", ".join(SUBCOMMANDS))
    @argument("args", nargs="*", help="plugin names, a load target, folders or files")
    @argument("--start", action="store_true", help="load: start the plugin once loaded")
    @argument("--isolated", action="store_true",
              help="load: run the plugin in its own sandboxed worker process")
    @argument("--memory-mb", type=int, default=None, help="load --isolated: memory limit (MB)")
    @argument("--cpu-seconds", type=int, default=None, help="load --isolated: CPU time limit (s)")
    @argument("--open-files", type=int, default=None, help="load --isolated: open files limit")
    @argument("-n", type=int, default=20, help="log: how many recent events (default 20)")
    @argument("-v", "--verbose", action="store_true", help="log: add failing plugins' own tracebacks")
    @argument("--index", help="search/install: index folder or URL (default: PluginMagics.index, $FLX_IPY_INDEX)")
    @argument("--dry-run", action="store_true", help="install: show what would change, install nothing")
    @argument("--target", help="install: into this folder (pip --target), put first on sys.path")
    @argument("--where", action="store_true", help="audit: print where the audit log is written")
    def plugin(self, line: str = "") -> Any:
        """Develop plugins interactively: load, start, watch, edit, and see the new code run.

        ::

          %plugin discover [DIR ...]      list plugins in entry points and folders (no import)
          %plugin list                    loaded plugins: version, status, health, last reload
          %plugin load TARGET [--start]   a discovered name, module:Class, module, .py or folder
            [--isolated [--memory-mb N] [--cpu-seconds N] [--open-files N]]
                                          ... in its own sandboxed worker process
          %plugin start|stop|reload|unload NAME
          %plugin watch [NAME|PATH ...]   reload on save (idle: at once; busy: after the cell)
          %plugin unwatch
          %plugin health [NAME]           run health checks
          %plugin state NAME              what the plugin hands to its next version
          p = %plugin get NAME            the live object (keeps working across reloads)
          %plugin panel                   inline dashboard
          %plugin log [-n N] [-v]         recent events; -v adds plugins' tracebacks
          %plugin error [NAME]            a failed plugin's own traceback
          %plugin validate PATH           check a plugin file or folder without importing it
          %plugin sync                    apply saves made just before this cell, now
          %plugin history NAME            revisions (every load, reload, rollback) with their code
          %plugin rollback NAME [REV]     run an earlier revision's code again (default: the previous)
          %plugin stats [NAME]            hook call timings and reload outcomes per plugin
          %plugin search [TERM] [--index URL|PATH]    plugins an index offers
          %plugin install NAME[==VER] [--index ...] [--dry-run] [--target DIR]
                                          pip-install (hash-checked) into this kernel; loadable at once
          %plugin audit [-n N] [--where]  the audit log's last records (who did what, from where)
          %plugin verify NAME|PATH        its signature, against allowed_signers (as `flx-ipy verify`)

        Settings: ``%config PluginMagics`` (folders, watch timing, polling, health timeout, log size,
        signature_policy, allowed_signers, audit_log, audit_mode).
        """
        args = self._parse(line)
        if args is None:
            return None
        with origin_scope("magic"):  # the audit log's origin for what this command does
            return self._guard(args, lambda: self._drive_sync(self._command(args)))

    async def aplugin(self, line: str) -> Any:
        """The awaitable twin: hooks run on the caller's loop (the kernel's)."""
        args = self._parse(line)
        if args is None:
            return None
        try:
            with origin_scope("magic"):
                return await self._drive_async(self._command(args))
        except (UsageError, KeyboardInterrupt):
            raise
        except Exception as e:
            raise self._usage(args, e) from None

    def _parse(self, line: str) -> Any:
        try:
            words = shlex.split(line, posix=os.name != "nt")
        except ValueError as e:
            raise UsageError(f"%plugin: cannot parse {line!r}: {e}") from None
        if not words or words[0] == "help" or "-h" in words or "--help" in words:
            print(help_text(self.plugin.__doc__))
            return None
        args = parse_argstring(self.plugin, line)
        if args.command not in SUBCOMMANDS:
            raise UsageError(f"%plugin: unknown subcommand {args.command!r}; use one of "
                             f"{', '.join(SUBCOMMANDS)} (`%plugin --help`)")
        return args

    def _guard(self, args: Any, run: Any) -> Any:
        try:
            return run()
        except (UsageError, KeyboardInterrupt):
            raise
        except Exception as e:
            raise self._usage(args, e) from None

    def _usage(self, args: Any, e: BaseException) -> UsageError:
        """One line: what failed, which plugin, what is still running, what to type next."""
        if isinstance(e, FlxError):
            message, hint = getattr(e, "message", str(e)), getattr(e, "hint", "")
            text = f"{message} — {hint}" if hint else message
            text = " ".join(text.split())  # validation lists every problem: keep them on one line
        else:
            import traceback

            self.last_internal_error = "".join(traceback.format_exception(e))
            log.debug("flx_ipy: %%plugin %s failed", args.command, exc_info=e)
            text = (f"%plugin {args.command} failed inside flx_ipy: {type(e).__name__}: {e} "
                    "(a bug in flx_ipy; `%plugin error` shows where)")
        name = getattr(e, "plugin", None)
        rec = self.pm.plugins.get(name) if name else None
        if rec is not None and rec.error_detail and "%plugin error" not in text:
            text += f" — `%plugin error {name}` shows its traceback"
        running = sorted(n for n, r in self.pm.plugins.items() if r.status == "running")
        text += f" [running: {', '.join(running)}]" if running else " [nothing running]"
        return UsageError(text)

    # ----------------------------------------------------------------- drivers
    def _drive_sync(self, cmd: Any) -> Any:
        if not inspect.isgenerator(cmd):
            return cmd
        return drive(cmd, lambda op: getattr(self.pm, op[0])(*op[1], **(op[2] if len(op) > 2 else {})))

    async def _drive_async(self, cmd: Any) -> Any:
        if not inspect.isgenerator(cmd):
            return cmd
        return await adrive(cmd, self._ainvoke)

    async def _ainvoke(self, op: Op) -> Any:
        """A manager call, through its awaitable twin when it has one (hooks on this loop)."""
        method, a = op[0], op[1]
        kw = op[2] if len(op) > 2 else {}
        twin = getattr(self.pm, "a" + method, None)
        return await twin(*a, **kw) if twin is not None else getattr(self.pm, method)(*a, **kw)

    def _command(self, args: Any) -> Any:
        return getattr(self, "_cmd_" + args.command)(args)

    # ----------------------------------------------------------------- subcommands
    def _names(self, args: Any, what: str) -> list[str]:
        if not args.args:
            loaded = ", ".join(sorted(self.pm.plugins)) or "none loaded"
            raise UsageError(f"%plugin {what} needs a plugin name (loaded: {loaded})")
        return list(args.args)

    def _cmd_help(self, args: Any) -> None:
        print(help_text(self.plugin.__doc__))

    def _cmd_discover(self, args: Any) -> display.Table:
        dirs = [os.path.abspath(os.path.expanduser(d)) for d in args.args]
        missing = [d for d in dirs if not os.path.isdir(d)]
        if missing:
            raise UsageError(f"%plugin discover: no such folder: {missing[0]} (paths are relative to "
                             f"{os.getcwd()})")
        self.pm.discover(*dirs)
        return display.discovery_table(self.pm.candidates)

    def _cmd_list(self, args: Any) -> display.Table:
        return display.plugin_table(self.pm)

    def _cmd_load(self, args: Any) -> Command:
        if len(args.args) != 1:
            raise UsageError("%plugin load needs one target: a discovered name, module:Class, a module, "
                             "or a path to a .py file or package folder")
        target = args.args[0]
        expanded = os.path.expanduser(target)
        if os.path.exists(expanded):
            target = os.path.abspath(expanded)
        limits = {k: v for k, v in (("memory_mb", args.memory_mb), ("cpu_seconds", args.cpu_seconds),
                                    ("open_files", args.open_files)) if v is not None}
        if limits and not args.isolated:
            raise UsageError("%plugin load: --memory-mb/--cpu-seconds/--open-files need --isolated")
        rec = yield (("load", (target,), {"isolated": True, "limits": limits}) if args.isolated
                     else ("load", (target,)))
        if args.start:
            rec = yield ("start", (rec.name,))
        if self.watch_on_load or self.pm.watching:
            self._watch_more([rec.root] if rec.root else [])
        watching = " (watching)" if self.pm.watching else ""
        print(f"{rec.name} {rec.version} {rec.status}{watching} — {rec.source}")
        if rec.worker is not None:
            w = rec.worker
            missing = "; not in force here: " + ", ".join(sorted(w.unavailable)) if w.unavailable else ""
            print(f"  isolated in worker pid {w.pid}; enforced: {', '.join(w.enforced) or 'nothing'}{missing}")

    def _cmd_start(self, args: Any) -> Command:
        for name in self._names(args, "start"):
            rec = yield ("start", (name,))
            print(f"{name} {rec.version} running")

    def _cmd_stop(self, args: Any) -> Command:
        for name in self._names(args, "stop"):
            yield ("stop", (name,))
            print(f"{name} stopped")

    def _cmd_reload(self, args: Any) -> Command:
        for name in self._names(args, "reload"):
            result = yield ("reload", (name,))
            if not result.ok:
                raise UsageError(f"{result.summary()}; fix the file and save, or `%plugin error {name}` "
                                 "for the traceback")
            print(result.summary())

    def _cmd_unload(self, args: Any) -> Command:
        for name in self._names(args, "unload"):
            yield ("unload", (name,))
            print(f"{name} unloaded")

    def _cmd_watch(self, args: Any) -> None:
        paths: list[str] = []
        for item in args.args:
            rec = self.pm.plugins.get(item)
            if rec is not None:
                own = _plugin_scope(rec)
                if not own:
                    raise UsageError(f"%plugin watch: {item} has no source folder to watch")
                paths.append(own)  # exactly this plugin: its package, or its one file
                continue
            p = os.path.abspath(os.path.expanduser(item))
            if not os.path.exists(p):
                raise UsageError(f"%plugin watch: {item!r} is neither a loaded plugin nor an existing path "
                                 f"(loaded: {', '.join(sorted(self.pm.plugins)) or 'none'})")
            paths.append(p)
        if not paths and not self.pm.watch_roots():
            raise UsageError("%plugin watch: nothing to watch yet — `%plugin load PATH` first, or name a "
                             "folder: `%plugin watch DIR`")
        if paths:
            self._watch_more(paths, exact=True)
        else:
            self.arm_watch(None)
        n = len(self.pm.watched_paths)
        w = self.pm.watcher
        mode = f" (polling: {w.polling_reason})" if getattr(w, "polling", False) else ""
        noun = "folder" if all(os.path.isdir(p) for p in self.pm.watched_paths) else "path"
        folders = ", ".join(self.pm.watched_paths)
        print(f"watching {n} {noun}{'s' if n != 1 else ''}{mode}: {folders} — {self._when_applied()}")
        self._show_status()

    def _when_applied(self) -> str:
        """The truth about when a save is applied here: a terminal prompt runs no event loop
        unless ``%gui asyncio`` is on, so only the next command can apply it."""
        if self.scheduler is None or self.scheduler.idle_loop() is not None:
            return "a save is applied at once while idle, after the running cell otherwise"
        return ("a save is applied just before your next command runs (this prompt runs no event loop); "
                "run `%gui asyncio` to apply saves at once while the prompt waits")

    def _watch_more(self, paths: list[str], exact: bool = False) -> None:
        """Add ``paths`` to what is watched; ``exact``: when nothing is watched yet, watch only
        them (``%plugin watch NAME``), not every loaded plugin's folder."""
        current = self.pm.watched_paths if self.pm.watching else ([] if exact else self.pm.watch_roots())
        wanted = sorted({*current, *paths})
        if not self.pm.watching or wanted != sorted(self.pm.watched_paths):
            self.arm_watch(wanted)

    def _cmd_unwatch(self, args: Any) -> None:
        was = self.pm.watching
        self.pm.unwatch()
        print("stopped watching" if was else "was not watching")

    def _cmd_health(self, args: Any) -> Command:
        if not args.args:
            return display.health_table((yield ("health", ())))
        found = {}
        for name in args.args:
            found[name] = yield ("health", (name,))
        return display.health_table(found)

    def _cmd_state(self, args: Any) -> Command:
        (name,) = self._names(args, "state")[:1]
        return display.state_view(name, (yield ("state", (name,))))

    def _cmd_get(self, args: Any) -> Any:
        (name,) = self._names(args, "get")[:1]
        return self.pm.get(name)

    def _cmd_panel(self, args: Any) -> Any:
        try:
            from .widgets import dashboard  # built separately; optional until it lands
        except ImportError:
            pass
        else:
            return dashboard(self.pm)
        from IPython.display import display as show

        show(display.plugin_table(self.pm))
        self._show_status(force=True)
        return None

    def _cmd_log(self, args: Any) -> Any:
        details = {n: r.error_detail for n, r in self.pm.plugins.items() if r.error and r.error_detail}
        return display.event_log(self.pm.events.history(max(args.n, 1)), verbose=args.verbose, details=details)

    def _cmd_history(self, args: Any) -> Any:
        from .opsview import history_table

        (name,) = self._names(args, "history")[:1]
        current = self.pm.revisions.current(name)
        return history_table(name, self.pm.history(name), current.revision if current else None)

    def _cmd_rollback(self, args: Any) -> Command:
        names = self._names(args, "rollback")
        if len(names) > 2:
            raise UsageError("%plugin rollback NAME [REVISION]")
        to = names[1] if len(names) == 2 else None
        if to is not None and not to.isdigit():
            raise UsageError(f"%plugin rollback: REVISION must be a number, not {to!r} "
                             f"(see `%plugin history {names[0]}`)")
        result = yield ("rollback", (names[0], int(to) if to is not None else None))
        if not result.ok:
            raise UsageError(f"{result.summary()}; `%plugin error {names[0]}` for the traceback")
        rev = self.pm.revisions.current(names[0])
        print(f"{names[0]}: rolled back in {result.duration * 1000:.1f} ms — {names[0]} {rev.version} is revision "
              f"{rev.revision} (the code of revision {rev.rollback_of}); the files on disk are unchanged")

    def _cmd_stats(self, args: Any) -> Any:
        from .opsview import hook_table, stats_table

        metrics = self.pm.metrics()
        if args.args:
            name = args.args[0]
            self.pm.record(name)
            return hook_table(name, metrics.get(name, {"hooks": {}}))
        return stats_table(metrics)

    def _cmd_error(self, args: Any) -> None:
        names = args.args or [n for n, r in sorted(self.pm.plugins.items()) if r.error]
        if not names:
            print(self.last_internal_error or "no plugin has an error kept")
            return
        for name in names:
            rec = self.pm.record(name)
            if not rec.error:
                print(f"{name}: no error kept ({rec.status})")
                continue
            print(f"{name}: {rec.error}")
            if rec.error_detail:
                print(rec.error_detail.rstrip())

    def _cmd_sync(self, args: Any) -> Command:
        """A cell that wants to see a save made just before it opts in here: otherwise a save
        reaching the kernel while this cell runs waits until the cell ends (one cell, one version)."""
        results = yield ("apply_pending", ())
        if not results:
            print("nothing to apply: every loaded plugin runs its saved source")
        for r in results:
            print(r.summary())

    def _cmd_validate(self, args: Any) -> display.Text:
        if len(args.args) != 1:
            raise UsageError("%plugin validate needs one PATH (a .py file, package folder or plugin folder)")
        from .core.validators import validate_path

        return display.validation_view(validate_path(os.path.expanduser(args.args[0])))

    def _cmd_search(self, args: Any) -> Any:
        from .registry.magic import search_command

        return search_command(self, args)

    def _cmd_install(self, args: Any) -> Any:
        from .registry.magic import install_command

        return install_command(self, args)

    def _cmd_audit(self, args: Any) -> Any:
        audit = self.pm.audit
        if args.where:
            print(str(audit.path) if audit is not None else "the audit log is off "
                  "(`%config PluginMagics.audit_log = ''` turns it on)")
            return None
        if audit is None:
            raise UsageError("%plugin audit: the audit log is off (`%config PluginMagics.audit_log = ''` "
                             "writes it under Jupyter's data folder)")
        from .core.audit import tail

        audit.flush()
        try:
            records = tail(audit.path, max(args.n, 1))
        except FileNotFoundError:
            records = []
        return display.audit_table(records)

    def _cmd_verify(self, args: Any) -> display.Text:
        if len(args.args) != 1:
            raise UsageError("%plugin verify needs one loaded plugin NAME or a PATH (file or package folder)")
        if not self.pm.allowed_signers:
            raise UsageError("%plugin verify: no allowed_signers file is set "
                             "(`%config PluginMagics.allowed_signers = 'PATH'`)")
        from .core.trust import check_path, unit_for_record

        item = args.args[0]
        rec = self.pm.plugins.get(item)
        unit = unit_for_record(rec) if rec is not None else os.path.abspath(os.path.expanduser(item))
        if unit is None or not os.path.exists(unit):
            raise UsageError(f"%plugin verify: {item!r} is neither a loaded plugin with source files nor an "
                             "existing path")
        info = check_path(unit, self.pm.allowed_signers)
        lines = [f"{info.unit}: {info.summary()}", *(f"  {kind}: {rel}" for rel, kind in info.changes.items())]
        return display.Text("\n".join(lines))

    def _show_status(self, force: bool = False) -> None:
        if self.status is not None and (self.status_line or force):
            self.status.show()

    # ----------------------------------------------------------------- completion
    def complete(self, _shell: Any, event: Any) -> list[str]:
        """``%plugin <TAB>``: subcommands, then plugin names; paths are left to IPython."""
        before = event.text_until_cursor
        words = before.split()
        index = len(words) if before.endswith((" ", "\t")) else len(words) - 1
        if index <= 1:
            return [c for c in SUBCOMMANDS if c.startswith(event.symbol)] or list(SUBCOMMANDS)
        sub = words[1]
        if sub in _PATH_ARG or (event.symbol and ("/" in event.symbol or event.symbol.startswith((".", "~")))):
            raise TryNext
        if sub in _NAME_ARG:
            return sorted(self.pm.plugins)
        if sub == "watch":
            names = sorted(self.pm.plugins)
            if names:
                return names
            raise TryNext
        if sub == "load":
            names = sorted({c.name for c in self.pm.candidates if c.name} - set(self.pm.plugins))
            if names:
                return names
        raise TryNext


def help_text(doc: str | None) -> str:
    """``%plugin --help`` as plain text: the docstring (and argparse's usage block) without
    reST markup — no ``::`` block markers, no double backticks."""
    out: list[str] = []
    for line in inspect.cleandoc(doc or "").splitlines():
        if line.strip() == "::":
            continue
        line = line.replace("``", "")
        if not line.strip() and out and not out[-1].strip():
            continue
        out.append(line.rstrip())
    text = "\n".join(out).strip()
    if text.startswith("%plugin ["):
        text = "usage: " + text
    return text


# --------------------------------------------------------------------- top-level awaiting
async def arun(line: str) -> Any:
    """What a top-level ``%plugin start x`` becomes: ``await arun("start x")``."""
    if _current is None:
        raise UsageError("flx_ipy is not loaded: run `%load_ext flx_ipy`")
    # as run_line_magic does: `%plugin load {path}` and `$name` expand in the cell's namespace
    shell = _current.shell
    if shell is not None:
        line = shell.var_expand(line, depth=1)
    return await _current.aplugin(line)


_MARK = "run_line_magic('plugin',"


def rewrite_awaitable(lines: list[str]) -> list[str]:
    """Input transformer (post): make top-level hook-calling ``%plugin`` lines awaited.

    IPython has already turned ``%plugin start x`` into ``get_ipython().run_line_magic('plugin',
    'start x')``. Only statements at the top level of the cell (a bare call, or an assignment
    of one) are rewritten — inside a ``def`` or a loop the sync form keeps working. The
    substring test keeps the cost of every other cell to one ``in`` per line.
    """
    if not any(_MARK in line for line in lines):
        return lines
    try:
        tree = ast.parse("".join(lines))
    except SyntaxError:
        return lines
    out = list(lines)
    for node in tree.body:
        call = node.value if isinstance(node, (ast.Expr, ast.Assign)) else None
        if call is None or node.lineno != node.end_lineno or node.col_offset != 0:
            continue
        line_arg = _plugin_line(call)
        if line_arg is None or not line_arg.split() or line_arg.split()[0] not in AWAITED:
            continue
        raw = out[node.lineno - 1].encode()  # ast offsets count UTF-8 bytes
        start, end = call.col_offset, call.end_col_offset or len(raw)
        new = f"await __import__('flx_ipy.magics', fromlist=['arun']).arun({line_arg!r})"
        out[node.lineno - 1] = (raw[:start] + new.encode() + raw[end:]).decode()
    return out


def _plugin_line(call: Any) -> str | None:
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
            and call.func.attr == "run_line_magic" and len(call.args) == 2 and not call.keywords):
        return None
    owner = call.func.value
    if not (isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "get_ipython"):
        return None
    name, arg = call.args
    if not (isinstance(name, ast.Constant) and name.value == "plugin" and isinstance(arg, ast.Constant)
            and isinstance(arg.value, str)):
        return None
    return arg.value


def _plugin_scope(rec: Any) -> str | None:
    """What ``%plugin watch NAME`` watches: the plugin's package folder, or its one file."""
    if rec.package_dir:
        return str(rec.package_dir)
    files = sorted(rec.files)
    if len(files) == 1:
        return str(files[0])
    return str(rec.root) if rec.root else None
