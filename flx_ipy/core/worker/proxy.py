"""What ``pm.get(name)`` returns for an isolated plugin: calls run in the worker.

The proxy holds the plugin's *runtime*, not a worker, so a reference taken before a reload or
a crash keeps working afterwards (it talks to whichever worker serves the plugin now).
Arguments and results are plain data; private names (``_x``) are never forwarded, so IPython's
display probing (``_repr_html_`` …) costs no round trip.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runtime import IsolatedRuntime


class RemoteMethod:
    __slots__ = ("_rt", "name")

    def __init__(self, rt: IsolatedRuntime, name: str) -> None:
        self._rt = rt
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._rt.call_method(self.name, args, kwargs)

    def __repr__(self) -> str:
        return f"<isolated method {self._rt.name}.{self.name}>"


class PluginProxy:
    """A live isolated plugin. ``proxy.method(...)`` runs ``method`` in the worker; reading an
    attribute fetches its current value (plain data); setting one is refused."""

    __slots__ = ("_rt",)

    def __init__(self, rt: IsolatedRuntime) -> None:
        object.__setattr__(self, "_rt", rt)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        rt = self._rt
        bound = rt.bound.get(name)
        if bound is not None:
            return bound
        if name in rt.methods:
            bound = rt.bound[name] = RemoteMethod(rt, name)
            return bound
        return rt.get_attribute(name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{self._rt.name} is isolated: its attributes live in its worker; "
                             "change them by calling one of its methods")

    def __dir__(self) -> list[str]:
        return sorted(self._rt.methods)

    def __repr__(self) -> str:
        rt = self._rt
        return f"<isolated plugin {rt.name} (worker pid {rt.pid}, {rt.state})>"
