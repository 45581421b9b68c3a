"""``%load_ext flx_ipy`` / ``%unload_ext flx_ipy``: everything the extension adds, and takes away.

Loading wires one manager (``flx_ipy.get_manager()``: one per kernel) to the shell:

* the ``%plugin`` magics and their traitlets settings (registered as a configurable, so
  ``ipython_config.py`` and ``%config PluginMagics`` work),
* the reload scheduler's ``pre_execute`` / ``post_execute`` / ``pre_run_cell`` callbacks
  (``flx_ipy.scheduler``: watched saves are applied between cells, never in one),
* the input transformer that awaits a top-level ``%plugin start x`` on the kernel's loop,
* ``%plugin <TAB>`` completion,
* in a kernel: the in-place status line and the JupyterLab side panel's comm target
  (``flx_ipy.lab_bridge``, optional while it is being built).

Unloading removes each of these and stops watching, so ``%reload_ext flx_ipy`` leaves no
duplicate callback, transformer, completer or comm behind. Loaded plugins stay loaded: they
belong to the manager, which outlives the extension (unload them with ``%plugin unload``).
"""

from __future__ import annotations

import logging
from typing import Any

from .core.manager import get_manager
from .display import StatusLine
from .scheduler import ReloadScheduler

log = logging.getLogger("flx_ipy")

__all__ = ["Extension", "current", "load_ipython_extension", "unload_ipython_extension"]

_active: Extension | None = None


def current() -> Extension | None:
    """The loaded extension (for tests and diagnostics), or None."""
    return _active


class Extension:
    """Owns what ``load_ipython_extension`` added, so ``unload`` can take exactly that away."""

    def __init__(self, ip: Any, pm: Any = None) -> None:
        self.ip = ip
        self.pm = pm if pm is not None else get_manager()
        self.in_kernel = getattr(ip, "kernel", None) is not None
        self.scheduler = ReloadScheduler(ip)
        self.status = StatusLine(self.pm) if self.in_kernel else None
        self.magics: Any = None
        self.bridge: Any = None
        self.poller: Any = None
        self.loopwatch: Any = None
        self._unsubscribe: Any = None

    def load(self) -> Extension:
        from . import magics as magics_mod
        from .magics import PluginMagics, rewrite_awaitable

        ip = self.ip
        self.scheduler.install()
        self.magics = PluginMagics(ip, self.pm, scheduler=self.scheduler, status=self.status)
        ip.register_magics(self.magics)
        if self.magics not in ip.configurables:
            ip.configurables.append(self.magics)
        magics_mod._current = self.magics
        ip.input_transformers_post.append(rewrite_awaitable)
        ip.set_hook("complete_command", self.magics.complete, str_key="%plugin")
        if self.status is not None:
            self.status.attach()
        self.scheduler.on_waiting = self._saves_waiting
        self._unsubscribe = self.pm.subscribe(self._on_event)
        if not self.in_kernel:
            self.scheduler.on_applied = self._dim_line
        if self.in_kernel:
            self._attach_bridge()
            from .health_poll import HealthPoller

            self.poller = HealthPoller(self.pm, self.scheduler, self.magics.health_interval).start()
            self.magics.poller = self.poller
            self._start_loopwatch()
        return self

    def _start_loopwatch(self) -> None:
        """Name a plugin that blocks the kernel's loop while no cell runs (``loopwatch.py``)."""
        loop = self.scheduler.idle_loop()
        threshold = self.magics.loop_lag_threshold
        if loop is None or threshold <= 0:
            return
        from .loopwatch import LoopWatchdog

        self.loopwatch = LoopWatchdog(self.pm, loop, threshold=threshold,
                                      busy=lambda: bool(self.scheduler.running)).start()

    def _saves_waiting(self, count: int) -> None:
        """Saves held back by a running cell become a manager event, so every UI can say so."""
        self.pm.events.publish("saves_waiting", None, count=count)

    def _on_event(self, ev: Any) -> None:
        if ev.kind == "unloaded":
            self.scheduler.forget(ev.plugin)  # a kept notice never names a plugin that is gone

    def _dim_line(self, results: list[Any], where: str) -> None:
        """Terminal only: one dim line at the prompt per applied reload."""
        from .prompt_notice import dim_line, reload_lines

        color = getattr(self.ip, "colors", "NoColor") not in ("NoColor", "nocolor")
        for line in reload_lines(results):
            dim_line(line, color=color)

    def _attach_bridge(self) -> None:
        try:
            from .lab_bridge import LabBridge
        except ImportError:  # the side panel's kernel half is optional
            return
        try:
            self.bridge = LabBridge(self.pm, defer=self.scheduler.applier).attach()
        except Exception:
            log.warning("flx_ipy: the JupyterLab side panel could not attach; magics work without it",
                        exc_info=True)

    def unload(self) -> None:
        from . import magics as magics_mod
        from .magics import rewrite_awaitable

        ip = self.ip
        try:
            self.pm.unwatch()
        except Exception:
            log.warning("flx_ipy: stopping the watcher failed", exc_info=True)
        if self.poller is not None:
            self.poller.stop()
            self.poller = None
        if self.loopwatch is not None:
            self.loopwatch.stop()
            self.loopwatch = None
        self.scheduler.uninstall()
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
        if rewrite_awaitable in ip.input_transformers_post:
            ip.input_transformers_post.remove(rewrite_awaitable)
        if self.magics is not None:
            _remove_completer(ip, self.magics.complete)
            line = ip.magics_manager.magics["line"]
            if getattr(line.get("plugin"), "__self__", None) is self.magics:
                del line["plugin"]
            ip.magics_manager.registry.pop(type(self.magics).__name__, None)
            if self.magics in ip.configurables:
                ip.configurables.remove(self.magics)
            if magics_mod._current is self.magics:
                magics_mod._current = None
        if self.status is not None:
            self.status.detach()
        if self.bridge is not None:
            try:
                self.bridge.detach()
            except Exception:
                log.warning("flx_ipy: detaching the side panel failed", exc_info=True)
            self.bridge = None


def _remove_completer(ip: Any, fn: Any) -> None:
    sdp = ip.strdispatchers.get("complete_command")
    chain = getattr(sdp, "strs", {}).get("%plugin") if sdp is not None else None
    if chain is None:
        return
    chain.chain[:] = [(prio, f) for prio, f in chain.chain if getattr(f, "__func__", f) != fn]
    if not chain.chain:
        del sdp.strs["%plugin"]


def load_ipython_extension(ip: Any) -> None:
    """Loading twice is a no-op (as ``%load_ext`` promises); ``%reload_ext`` unloads first."""
    global _active
    if _active is not None and _active.ip is ip:
        return
    _active = Extension(ip).load()


def unload_ipython_extension(ip: Any) -> None:
    global _active
    ext, _active = _active, None
    if ext is not None:
        ext.unload()
