"""``%plugin install`` in a real ipykernel: installed through pip into the kernel's own
interpreter (into a temp ``--target``, so the shared venv is untouched), then ``%plugin load``
works in the same kernel with no restart; a newer version of a loaded plugin is moved onto by
the hot-reload engine with its state kept; an imported non-plugin module asks for a restart."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from iopub import running_kernel

from flx_ipy.registry import build_index
from flx_ipy.registry.wheelmaker import make_wheel, plugin_module

pytestmark = pytest.mark.kernel


def run(kc: Any, code: str, timeout: float = 90.0) -> tuple[str, str | None]:
    """Execute a cell; its printed text, and the error it raised (``ename: evalue``) or None."""
    out: list[str] = []
    err: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        c = msg["content"]
        if msg["msg_type"] == "stream":
            out.append(c["text"])
        elif msg["msg_type"] in ("execute_result", "display_data"):
            out.append(c["data"].get("text/plain", "") + "\n")
        elif msg["msg_type"] == "error":
            err.append(f"{c['ename']}: {c['evalue']}")

    reply = kc.execute_interactive(textwrap.dedent(code), output_hook=hook, timeout=timeout)
    if reply["content"]["status"] != "ok" and not err:
        err.append(f"{reply['content'].get('ename', 'error')}: {reply['content'].get('evalue', '')}")
    if not err and "UsageError: " in "".join(out):  # IPython prints a UsageError as one stderr line
        err.append("UsageError: " + "".join(out).split("UsageError: ", 1)[1].strip())
    return "".join(out), (err[0] if err else None)


def hello(folder: Path, version: str, tag: str) -> Path:
    body = (f"    def start(self):\n        self.count = getattr(self, 'count', 0)\n\n"
            f"    def tag(self):\n        return {tag!r}\n")
    source = plugin_module("hello", version, body=body)
    return make_wheel(folder, "flx-hello", version, {"flx_hello/__init__.py": source},
                      entry_points={"flx_ipy.plugins": {"hello": "flx_hello:HelloPlugin"}}, requires_dist=["flx_ipy"])


def test_install_then_load_in_the_same_kernel_and_upgrade_a_running_plugin(tmp_path: Path) -> None:
    idx, target = tmp_path / "index", tmp_path / "site"
    idx.mkdir()
    hello(idx, "1.0.0", "one")
    make_wheel(idx, "flx-util", "1.0", {"flx_util/__init__.py": "VERSION = 1\n" + plugin_module("util", "1.0")},
               entry_points={"flx_ipy.plugins": {"util": "flx_util:UtilPlugin"}})
    build_index(idx)
    with running_kernel(tmp_path) as (_km, kc):
        out, err = run(kc, "%load_ext flx_ipy")
        assert err is None, err
        out, err = run(kc, "import importlib.util; print(importlib.util.find_spec('flx_hello'))")
        assert out.strip() == "None"  # not installed anywhere this kernel can see

        out, err = run(kc, f"%plugin install hello --index {idx} --target {target}")
        assert err is None, err
        assert "installed flx-hello 1.0.0" in out and "`%plugin load hello` works now, no restart" in out, out

        out, err = run(kc, "%plugin load hello --start")
        assert err is None, err
        assert "hello 1.0.0 running" in out, out
        out, err = run(kc, "p = %plugin get hello\np.count = 41\nprint(p.tag(), p.__class__.__module__)")
        assert err is None and out.split() == ["one", "flx_hello"], (out, err)

        # A new version appears in the index; installing it moves the running plugin onto it.
        hello(idx, "1.1.0", "two")
        build_index(idx)
        out, err = run(kc, f"%plugin install hello --index {idx} --target {target} --dry-run")
        assert err is None and out.strip() == (f"would upgrade flx-hello 1.1.0 (installed: 1.0.0) into {target} from "
                                               "flx_hello-1.1.0-py3-none-any.whl — would move the running plugin "
                                               "hello onto it (hot reload, state kept)"), out
        out, err = run(kc, f"%plugin install hello --index {idx} --target {target}")
        assert err is None, err
        assert "installed flx-hello 1.1.0 (was 1.0.0)" in out and "reloaded" in out, out
        out, err = run(kc, "from flx_ipy import get_manager\nrec = get_manager().plugins['hello']\n"
                           "print(rec.version, rec.status, p.tag(), p.count)")
        assert err is None and out.split() == ["1.1.0", "running", "two", "41"], (out, err)

        # A distribution imported directly (no loaded plugin owns it) cannot be swapped: say so.
        out, err = run(kc, f"%plugin install flx-util --index {idx} --target {target}\nimport flx_util")
        assert err is None, err
        make_wheel(idx, "flx-util", "2.0", {"flx_util/__init__.py": "VERSION = 2\n" + plugin_module("util", "2.0")},
                   entry_points={"flx_ipy.plugins": {"util": "flx_util:UtilPlugin"}})
        build_index(idx)
        out, err = run(kc, f"%plugin install flx-util --index {idx} --target {target}")
        assert err is None, err
        assert "installed flx-util 2.0 (was 1.0)" in out and "restart the kernel" in out and "flx_util" in out, out

        # A tampered wheel: one line, nothing installed, the running plugin untouched.
        hello(idx, "1.2.0", "three")
        build_index(idx)
        w = idx / "flx_hello-1.2.0-py3-none-any.whl"
        w.write_bytes(w.read_bytes() + b"\0")
        out, err = run(kc, f"%plugin install hello --index {idx} --target {target}")
        assert err is not None and err.startswith("UsageError: %plugin install hello: refused flx_hello-1.2.0"), err
        assert "nothing was installed" in err and "\n" not in err and "Traceback" not in out
        out, err = run(kc, "print(rec.version, p.tag())")
        assert out.split() == ["1.1.0", "two"], (out, err)
        # every install is an event on the manager's bus (panels' event log, audit)
        out, err = run(kc, "print([(e.kind, e.plugin, e.details.get('version'))\n"
                           "       for e in get_manager().events.history() if e.kind.startswith('install')])")
        assert out.strip() == ("[('installed', 'hello', '1.0.0'), ('installed', 'hello', '1.1.0'), "
                               "('installed', 'util', '1.0'), ('installed', 'util', '2.0'), "
                               "('install_failed', 'hello', None)]"), out
        # ... and %plugin log (like the panels' event logs) says each in one line
        out, err = run(kc, "%plugin log -n 40")
        assert err is None, err
        assert "hello 1.1.0 installed (from flx-hello, was 1.0.0)" in out, out
        assert "util 2.0 installed (from flx-util, was 1.0)" in out, out
        assert "hello install failed: refused flx_hello-1.2.0" in out and "install_failed" not in out, out


def test_panel_actions_list_an_index_and_refuse_a_bad_install(tmp_path: Path) -> None:
    """The side panel's half of the protocol: ``index_search`` answers with the offers in the reply's
    ``data``; a failed ``install`` is a reply with ``ok: false`` and one line, nothing installed.
    (A successful install from a panel runs the same ``install_live`` as the magic above; it is
    not repeated here because a panel install has no ``--target`` and would write to the venv.)"""
    import uuid

    idx = tmp_path / "index"
    idx.mkdir()
    hello(idx, "1.0.0", "one")
    build_index(idx)
    w = idx / "flx_hello-1.0.0-py3-none-any.whl"
    w.write_bytes(w.read_bytes() + b"\0")  # tampered after the index was built
    with running_kernel(tmp_path) as (_km, kc):
        out, err = run(kc, f"%load_ext flx_ipy\n%config PluginMagics.index = {str(idx)!r}")
        assert err is None, err
        comm_id = uuid.uuid4().hex
        kc.shell_channel.send(kc.session.msg("comm_open", {"comm_id": comm_id, "target_name": "flx_ipy", "data": {
            "kind": "hello", "protocol": "1.0", "client": "test"}}))

        def ask(action: str, **fields: Any) -> dict[str, Any]:
            rid = uuid.uuid4().hex
            kc.shell_channel.send(kc.session.msg("comm_msg", {"comm_id": comm_id, "data": {
                "kind": "action", "protocol": "1.0", "request_id": rid, "action": action, **fields}}))
            while True:
                msg = kc.get_iopub_msg(timeout=30)
                data = msg["content"].get("data", {})
                if msg["msg_type"] == "comm_msg" and data.get("kind") == "reply" and data.get("request_id") == rid:
                    return dict(data)

        found = ask("index_search", term="hel")  # the index comes from c.PluginMagics.index
        assert found["ok"], found
        (row,) = found["data"]
        assert (row["name"], row["latest"], row["plugins"]) == ("flx-hello", "1.0.0", ["hello"])
        refused = ask("install", plugin="hello")
        assert not refused["ok"] and refused["message"].startswith("refused flx_hello-1.0.0"), refused
        assert "\n" not in refused["message"]
        missing = ask("index_search", index=str(tmp_path / "nowhere"))
        assert not missing["ok"] and "no index.json" in missing["message"]
        out, err = run(kc, "import importlib.util; print(importlib.util.find_spec('flx_hello'))")
        assert out.strip() == "None"


def pkg_wheel(folder: Path, version: str, word: str, *, broken: bool = False) -> Path:
    """A plugin package whose plugin module imports a helper module of the same package."""
    start = 'raise RuntimeError("broken on purpose")' if broken else "pass"
    body = (f"    def start(self):\n        {start}\n\n"
            "    def word(self):\n        from flx_pkg.helper import WORD\n        return WORD\n")
    return make_wheel(folder, "flx-pkg", version, {
        "flx_pkg/__init__.py": "",
        "flx_pkg/helper.py": f"WORD = {word!r}\n",
        "flx_pkg/plugin.py": "import flx_pkg.helper  # noqa: F401\n" + plugin_module("pkg", version, body=body)},
        entry_points={"flx_ipy.plugins": {"pkg": "flx_pkg.plugin:PkgPlugin"}})


def test_upgrading_a_package_plugin_swaps_its_helpers_and_a_broken_version_rolls_back(tmp_path: Path) -> None:
    idx, target = tmp_path / "index", tmp_path / "site"
    idx.mkdir()
    pkg_wheel(idx, "1.0", "old")
    build_index(idx)
    with running_kernel(tmp_path) as (_km, kc):
        out, err = run(kc, f"%load_ext flx_ipy\n%config PluginMagics.index = {str(idx)!r}\n"
                           f"%plugin install pkg --target {target}\n%plugin load pkg --start\n"
                           "p = %plugin get pkg\nprint(p.word())")
        assert err is None and out.strip().endswith("old"), (out, err)
        pkg_wheel(idx, "2.0", "new")
        build_index(idx)
        out, err = run(kc, f"%plugin install pkg --target {target}\nprint(p.word())")
        assert err is None, (out, err)
        assert "reloaded" in out and "restart" not in out and out.strip().endswith("new"), out

        # A new version that fails to start: installed, but the running plugin stays on 2.0.
        pkg_wheel(idx, "3.0", "newest", broken=True)
        build_index(idx)
        out, err = run(kc, f"%plugin install pkg --target {target}")
        assert err is not None and "installed flx-pkg 3.0 (was 2.0)" in err and "broken on purpose" in err, (out, err)
        out, err = run(kc, "from flx_ipy import get_manager\nprint(get_manager().plugins['pkg'].version, "
                           "get_manager().status('pkg'), p.word())")
        assert out.split() == ["2.0", "running", "new"], (out, err)
