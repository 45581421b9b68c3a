"""``%plugin search`` and ``%plugin install``: the registry's face in IPython (``flx_ipy.magics``
dispatches here, so the magics module only names the subcommands)."""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError

from . import RegistryError, default_index, load_index, search
from .live import install_live
from .table import format_table, search_rows

__all__ = ["install_command", "search_command"]


def _index(magics: Any, args: Any) -> Any:
    return load_index(default_index(args.index, getattr(magics, "index", "")))


def search_command(magics: Any, args: Any) -> None:
    term = " ".join(args.args) or None
    try:
        index = _index(magics, args)
        rows = search_rows(search(index, term))
    except RegistryError as e:
        raise UsageError(f"%plugin search: {e}") from None
    if not rows:
        print(f"no plugin in {index.location} matches {term!r}" if term else f"{index.location} lists no plugins")
        return
    print(format_table(rows))


def install_command(magics: Any, args: Any) -> Any:
    if len(args.args) != 1:
        raise UsageError("%plugin install needs one NAME[==VERSION] (`%plugin search` lists what the index offers)")
    spec = args.args[0]
    try:
        index = _index(magics, args)
        if not args.dry_run:
            print(f"installing {spec} from {index.location} (pip, hash-checked)…", flush=True)
        live = install_live(magics.pm, index, spec, target=args.target, dry_run=args.dry_run)
    except RegistryError as e:
        raise UsageError(f"%plugin install {spec}: {e}") from None
    magics.last_install = live  # for diagnostics and benchmarks: what the last install did
    if not live.ok:  # installed, but moving the running plugin onto it was rolled back
        raise UsageError(f"%plugin install {spec}: {live.summary()}")
    print(live.summary())
    return None
