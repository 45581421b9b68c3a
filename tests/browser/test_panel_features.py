"""The side panel shows what issues 12-15 added, from a real kernel: an isolated plugin's worker
(pid, RSS, CPU, enforced layers, the last crash after a real SIGKILL), signer badges from real
signatures (signed, modified), the offers of a real local index folder, and a rollback to a
picked revision (the kernel then runs that revision's code, state kept).
Light and dark screenshots land in ``test-results/panel-features-{light,dark}.png``.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from lab_page import LOAD_EXT, Lab, LabServer, set_theme
from playwright.sync_api import expect

from flx_ipy.testing import plugin_source, write_plugin

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "test-results"

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180),
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="worker sandbox is Linux-only")]

COUNTER = """
def start(self):
    self.count = getattr(self, "count", 0)
"""

GREETER = '''from flx_ipy import Plugin, PluginMetadata
from .util import greeting

class Greeter(Plugin):
    metadata = PluginMetadata(name="{name}", version="1.0.0")
'''


def _signed_packages(root: Path, tag: str) -> tuple[Path, Path, Path]:
    """Two package plugins signed by alice; the second edited after signing (so: modified)."""
    pytest.importorskip("cryptography")
    from flx_ipy.core.sshsig import generate_key
    from flx_ipy.core.trust import sign_plugin

    keys = root / f"keys_{tag}"
    key, _ = generate_key(keys / "alice", "alice@example.com")
    pub = (keys / "alice.pub").read_text().split()
    allowed = keys / "allowed_signers"
    allowed.write_text(f'alice@example.com namespaces="flx-ipy" {pub[0]} {pub[1]}\n')
    pkgs = []
    for kind in ("signed", "edited"):
        pkg = root / f"{kind}_{tag}"
        write_plugin(pkg / "__init__.py", GREETER.format(name=f"{kind}_{tag}"))
        write_plugin(pkg / "util.py", 'def greeting():\n    return "hello"\n')
        sign_plugin(pkg, key)
        pkgs.append(pkg)
    write_plugin(pkgs[1] / "util.py", 'def greeting():\n    return "howdy"\n')
    return pkgs[0], pkgs[1], allowed


def _index(root: Path, tag: str) -> Path:
    from flx_ipy.registry import build_index
    from flx_ipy.registry.wheelmaker import make_wheel, plugin_module

    d = root / f"index_{tag}"
    d.mkdir()
    for dist, plugin, version, summary in [("flx-hello", "hello", "1.2.0", "says hello"),
                                           ("flx-clock", "clock", "0.3.0", "tells the time")]:
        mod = dist.replace("-", "_")
        make_wheel(d, dist, version, {f"{mod}/__init__.py": plugin_module(plugin, version)},
                   entry_points={"flx_ipy.plugins": {plugin: f"{mod}:{plugin.capitalize()}Plugin"}},
                   summary=summary, requires_dist=["flx_ipy"])
    build_index(d)
    return d


def test_panel_shows_worker_signatures_and_index_offers(page: Any, lab_server: LabServer) -> None:
    tag = uuid.uuid4().hex[:6]
    root: Path = lab_server.root
    worker = write_plugin(root / f"worker_{tag}.py", plugin_source("worker", "1.0.0"))
    counter = write_plugin(root / f"counter_{tag}.py", plugin_source("counter", "1.0.0", COUNTER))
    signed, edited, allowed = _signed_packages(root, tag)
    index = _index(root, tag)
    setup = "\n".join([
        "import os, signal",
        f"os.environ['FLX_IPY_INDEX'] = {str(index)!r}",
        f"pm.allowed_signers = {str(allowed)!r}",
        "pm.signature_policy = 'warn'",
        f"pm.load({str(worker)!r}, start=True, isolated=True)",
        f"pm.load({str(signed)!r}, start=True)",
        f"pm.load({str(edited)!r}, start=True)",
        f"pm.load({str(counter)!r}, start=True)",
    ])
    notebook = lab_server.new_notebook([LOAD_EXT, setup], stem="features")
    page.set_viewport_size({"width": 1400, "height": 1300})  # the whole panel in one picture
    lab = Lab(page, lab_server, notebook).open()
    lab.open_panel()
    lab.run_cell(0)
    lab.expect_attr("flx-status", "data-status", "ready")
    lab.run_cell(1)

    # issue 12: the worker, as the kernel sees it
    lab.expect_attr("flx-row-worker", "data-state", "running", timeout=60_000)
    pid = lab.kernel("pm.record('worker').worker.pid")
    assert pid is not None and pid.isdigit()
    lab.expect_text("flx-worker-worker", f"isolated · pid {pid}")
    lab.expect_text("flx-worker-worker", " MB")
    lab.expect_text("flx-worker-worker", "s CPU")
    enforced = json.loads(str(lab.kernel("import json; json.dumps(pm.record('worker').worker.enforced)")).strip("'"))
    lab.expect_text("flx-layers-worker", "enforced: " + (", ".join(enforced) or "none"))
    assert lab.tid("flx-crash-worker").count() == 0
    # a real crash: SIGKILL the worker; the panel names the reason, then the new worker's pid
    lab.kernel(f"os.kill({pid}, signal.SIGKILL)")
    lab.expect_text("flx-crash-worker", "last crash: killed (SIGKILL)", timeout=30_000)
    lab.page.wait_for_function(
        "(old) => { const el = document.querySelector(\"[data-testid='flx-worker-worker']\");"
        " return !!el && /pid \\d+/.test(el.textContent) && !el.textContent.includes('pid ' + old + ' '); }",
        arg=pid, timeout=30_000)
    assert lab.tid("flx-isolation-signed_" + tag).count() == 0  # in-kernel plugins: no worker line

    # issue 13: signer badges
    lab.expect_attr(f"flx-signature-signed_{tag}", "data-signature", "signed")
    lab.expect_text(f"flx-signature-signed_{tag}", "signed by alice@example.com")
    lab.expect_attr(f"flx-signature-edited_{tag}", "data-signature", "modified")
    lab.expect_text(f"flx-signature-edited_{tag}", "modified: util.py")
    assert lab.tid("flx-signature-worker").count() == 1  # a policy is on: every row has a status

    # issue 15: what the index offers
    lab.tid("flx-index").locator("summary").click()
    lab.tid("flx-index-search").click()
    lab.expect_text("flx-index-line", "2 plugin packages in")
    lab.expect_text("flx-offer-flx-hello", "v1.2.0")
    lab.expect_text("flx-offer-flx-clock", "tells the time")
    assert lab.tid("flx-install-flx-hello").is_enabled()
    lab.tid("flx-index-term").fill("clock")
    lab.tid("flx-index-term").press("Enter")
    lab.expect_text("flx-index-line", "1 plugin package in")
    assert lab.tid("flx-offer-flx-hello").count() == 0 and lab.tid("flx-offer-flx-clock").count() == 1
    # a bad index: one red line, and the offers listed before stay
    lab.kernel("os.environ['FLX_IPY_INDEX'] = '/nonexistent/index'")
    lab.tid("flx-index-search").click()
    lab.expect_attr("flx-index-line", "data-error", "true")
    assert "\n" not in lab.tid("flx-index-line").inner_text()
    assert lab.tid("flx-offer-flx-clock").count() == 1
    lab.kernel(f"os.environ['FLX_IPY_INDEX'] = {str(index)!r}")
    lab.tid("flx-index-term").fill("")
    lab.tid("flx-index-search").click()
    lab.expect_text("flx-index-line", "2 plugin packages in")

    # issue 14: two saves make revisions 2 and 3; pick 1 in the panel and roll back to it
    expect(lab.tid("flx-rollback-picker-counter")).to_have_count(0)  # one revision: nothing to go back to
    lab.kernel("pm.get('counter').count = 41")
    for version in ("1.1.0", "1.2.0"):
        write_plugin(counter, plugin_source("counter", version, COUNTER))
        lab.kernel("pm.reload('counter')")
        lab.expect_text("flx-version-counter", f"v{version}")
    picker = lab.tid("flx-revisions-counter")
    expect(picker.locator("option")).to_have_count(2)
    assert picker.locator("option").all_inner_texts()[0].startswith("r2 · v1.1.0 · reload")  # newest first
    picker.select_option("1")
    lab.tid("flx-rollback-counter").click()
    lab.expect_text("flx-version-counter", "v1.0.0")
    lab.expect_text("flx-notice", "counter")
    assert lab.kernel("pm.plugins['counter'].version") == "'1.0.0'"
    assert lab.kernel("pm.get('counter').count") == "41"  # state kept
    assert lab.kernel("pm.history('counter')[-1].rollback_of") == "1"
    assert picker.locator("option").all_inner_texts()[0].startswith("r3 · v1.2.0")
    assert lab.tid("flx-rollback-picker-worker").count() == 0  # one revision of the worker: nothing to go back to

    RESULTS.mkdir(exist_ok=True)
    lab.tid("flx-events").locator("summary").click()  # closed: the rows and the index fit in the picture
    try:
        for theme, shot in [("JupyterLab Light", "light"), ("JupyterLab Dark", "dark")]:
            set_theme(lab.page, theme)
            lab.page.screenshot(path=str(RESULTS / f"panel-features-{shot}.png"), clip=lab.page.evaluate(PANEL_BOX))
    finally:
        set_theme(lab.page, "JupyterLab Light")  # the theme is a user setting: do not leak it
    lab.kernel("pm.unload('worker')")


# The side panel's box, down to the end of its content (not the empty space below it).
PANEL_BOX = """() => {
  const panel = document.querySelector("[data-testid='flx-panel']");
  const box = panel.getBoundingClientRect();
  const bottom = Math.max(...[...panel.children].map(c => c.getBoundingClientRect().bottom));
  return { x: box.x, y: box.y, width: box.width, height: Math.min(box.height, bottom - box.y + 8) };
}"""
