"""The deployment examples parse and agree with each other and with `flx-ipy serve`."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from flx_ipy import PluginManager
from flx_ipy.cli import build_parser

yaml = pytest.importorskip("yaml")
DEPLOY = Path(__file__).resolve().parents[1] / "examples" / "deploy"


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, rest) pairs, continuation lines joined."""
    out, pending = [], ""
    for raw in (DEPLOY / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending += line
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        instr, _, rest = pending.partition(" ")
        out.append((instr.upper(), rest.strip()))
        pending = ""
    return out


def test_kubernetes_manifest_probes_livez_and_readyz() -> None:
    docs = list(yaml.safe_load_all((DEPLOY / "k8s.yaml").read_text()))
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"Deployment", "Service"}
    dep = kinds["Deployment"]
    assert dep["spec"]["selector"]["matchLabels"] == dep["spec"]["template"]["metadata"]["labels"]
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    port = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert c["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert c[probe]["httpGet"]["port"] in port
    args = build_parser().parse_args(c["args"][1:])  # the command line `flx-ipy serve` really accepts
    assert args.verb == "serve" and args.host == "0.0.0.0" and args.port == port["http"]
    assert c["env"][0]["name"] == "FLX_IPY_TOKEN" and "secretKeyRef" in c["env"][0]["valueFrom"]
    svc = kinds["Service"]
    assert svc["spec"]["selector"] == dep["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    ann = dep["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/path"] == "/metrics" and int(ann["prometheus.io/port"]) == port["http"]


def test_dockerfile_serves_the_example_plugins_on_the_manifest_port() -> None:
    steps = dockerfile()
    instrs = [i for i, _ in steps]
    assert instrs[0] == "FROM" and "CMD" in instrs and "EXPOSE" in instrs and "USER" in instrs
    cmd = json.loads(dict(steps)["CMD"])
    args = build_parser().parse_args(cmd[1:])
    assert cmd[0] == "flx-ipy" and args.verb == "serve" and args.host == "0.0.0.0"
    assert int(dict(steps)["EXPOSE"]) == args.port
    assert any(i == "RUN" and "pip install" in r and "[serve]" in r for i, r in steps)
    copies = [shlex.split(r) for i, r in steps if i == "COPY"]
    assert ["examples/plugins", args.targets[0]] in copies
    health = json.loads(dict(steps)["HEALTHCHECK"].split("CMD", 1)[1])
    assert "/livez" in health[-1] and str(args.port) in health[-1]
    manifest = next(iter(yaml.safe_load_all((DEPLOY / "k8s.yaml").read_text())))
    (c,) = manifest["spec"]["template"]["spec"]["containers"]
    assert c["args"] == cmd
    user = dict(steps)["USER"]
    assert manifest["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(user)


def test_the_served_plugins_load_and_start(tmp_path: Path) -> None:
    pm = PluginManager(entry_points=False, data_root=tmp_path)
    try:
        metas = pm.discover(DEPLOY.parent / "plugins")
        assert {m.name for m in metas} >= {"clock", "alarm"}
        for c in pm.candidates:
            pm.load(c.target)
        for name in list(pm.plugins):
            if pm.status(name) != "running":
                pm.start(name)
        assert all(r.status == "running" for r in pm.plugins.values())
    finally:
        pm.close()
