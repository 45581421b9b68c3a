"""Install a plugin from an index through pip, with the index's sha256 enforced by pip itself.

Why pip and not our own unzip: pip is what the user configured (proxies, certificates, extra
indexes in ``pip.conf`` and ``PIP_*`` variables — we never pass ``--isolated``), it writes a
correct ``RECORD`` so ``pip uninstall`` works, and its *hash-checking mode* is the protection:
pip is given a requirements file with one line, ``NAME @ URL --hash=sha256:HEX``, and refuses
the wheel — installing nothing — when the bytes it fetched hash differently. For a folder
index we also check the file before starting pip, so the refusal is immediate; pip checks again
on the bytes it actually reads.

``--no-deps``: hash-checking mode needs every dependency pinned with a hash, which an index of
plugins cannot promise for, say, ``numpy``. So dependencies are *checked* instead: a plugin
whose ``Requires-Dist`` is not satisfied in the target environment is refused with the list of
what is missing, before pip runs. Install those first (with pip, or from the index).
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .index import Index, RegistryError, canonical, is_url, resolve
from .wheels import sha256_file

__all__ = ["InstallPlan", "InstallResult", "install", "installed_version", "plan_install"]

_GOT_RE = re.compile(r"Got\s+([0-9a-f]{64})")


@dataclass
class InstallPlan:
    """What an install would do; ``action`` is install, upgrade, downgrade, reinstall or none."""

    name: str
    version: str
    wheel: str
    location: str
    sha256: str
    installed: str | None
    action: str
    plugins: list[str] = field(default_factory=list)
    modules: list[str] = field(default_factory=list)
    target: str | None = None
    signature: str = "unsigned"

    def summary(self) -> str:
        where = f" into {self.target}" if self.target else ""
        if self.action == "none":
            return f"{self.name} {self.version} is already installed{where} (nothing to do)"
        was = f" (installed: {self.installed})" if self.installed else ""
        return f"{self.action} {self.name} {self.version}{was}{where} from {self.wheel}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class InstallResult:
    plan: InstallPlan
    ok: bool
    changed: bool
    output: str = ""
    dry_run: bool = False
    pip_seconds: float = 0.0  # wall time of the pip subprocess (most of an install)

    def summary(self) -> str:
        if self.dry_run:
            return f"would {self.plan.summary()}" if self.plan.action != "none" else self.plan.summary()
        if not self.changed:
            return self.plan.summary()
        p = self.plan
        was = f" (was {p.installed})" if p.installed and p.installed != p.version else ""
        plugins = f"; plugins: {', '.join(p.plugins)}" if p.plugins else ""
        return f"installed {p.name} {p.version}{was}{plugins}"

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "changed": self.changed, "dry_run": self.dry_run, "pip_seconds": self.pip_seconds,
                **self.plan.to_dict()}


def _search_path(target: str | None) -> list[str]:
    return [target, *sys.path] if target else list(sys.path)


def installed_version(name: str, target: str | None = None) -> str | None:
    """The version of distribution ``name`` visible on ``sys.path`` (``target`` first), or None."""
    from importlib.metadata import distributions

    key = canonical(name)
    for d in distributions(path=_search_path(target)):
        dname = d.metadata["Name"] if d.metadata else None
        if dname and canonical(dname) == key:
            return str(d.version)
    return None


def _unmet(requires: Sequence[str], target: str | None) -> list[str]:
    from packaging.requirements import InvalidRequirement, Requirement

    missing = []
    for text in requires:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        have = installed_version(req.name, target)
        if have is None or (req.specifier and not req.specifier.contains(have, prereleases=True)):
            missing.append(f"{text} ({'not installed' if have is None else f'have {have}'})")
    return missing


def plan_install(index: Index, spec: str, *, target: str | None = None, reinstall: bool = False) -> InstallPlan:
    """What ``install`` would do (the ``--dry-run`` answer); raises RegistryError as it would."""
    return _plan(index, spec, target, reinstall)[0]


def _plan(index: Index, spec: str, target: str | None, reinstall: bool) -> tuple[InstallPlan, dict[str, Any]]:
    from packaging.version import Version

    pkg, entry = resolve(index, spec)
    have = installed_version(pkg["name"], target)
    if have is None:
        action = "install"
    elif Version(have) == Version(entry["version"]):
        action = "reinstall" if reinstall else "none"
    else:
        action = "upgrade" if Version(entry["version"]) > Version(have) else "downgrade"
    plan = InstallPlan(name=pkg["name"], version=entry["version"], wheel=entry["wheel"],
                       location=index.wheel_location(entry), sha256=entry["sha256"], installed=have,
                       action=action, plugins=list(entry.get("plugins") or []),
                       modules=list(entry.get("modules") or []), target=target,
                       signature=str((entry.get("signature") or {}).get("status", "unsigned")))
    return plan, entry


def install(index: Index, spec: str, *, target: str | None = None, dry_run: bool = False,
            reinstall: bool = False, pip_args: Sequence[str] = (),
            on_line: Callable[[str], None] | None = None) -> InstallResult:
    """Install ``spec`` from ``index`` into this interpreter's environment (or ``target``).

    Raises :class:`RegistryError` (one line, nothing installed) for a hash mismatch, unmet
    dependencies, or a pip failure; ``on_line`` receives pip's output as it runs.
    """
    plan, entry = _plan(index, spec, target, reinstall)
    missing = _unmet(entry.get("requires_dist") or [], target)
    if missing:
        raise RegistryError(f"{plan.name} {plan.version} needs {'; '.join(missing)} — install "
                            f"{'it' if len(missing) == 1 else 'them'} first (nothing was installed)")
    if dry_run or plan.action == "none":
        return InstallResult(plan, ok=True, changed=False, dry_run=dry_run)
    if not index.remote:
        if not os.path.isfile(plan.location):
            raise RegistryError(f"{plan.wheel} is listed by the index but missing from {index.base}; "
                                "rebuild the index (`flx-ipy index build`)")
        got = sha256_file(plan.location)
        if got != plan.sha256:
            raise RegistryError(_mismatch(plan, got))
    started = time.perf_counter()
    output = _run_pip(plan, target, reinstall, pip_args, on_line)
    pip_seconds = time.perf_counter() - started
    if target:
        _drop_stale_dist_info(target, plan.name, plan.version)
    importlib.invalidate_caches()
    return InstallResult(plan, ok=True, changed=True, output=output, pip_seconds=pip_seconds)


def _drop_stale_dist_info(target: str, name: str, version: str) -> None:
    """``pip install --target DIR --upgrade`` replaces the package folders but leaves the old
    version's ``NAME-OLD.dist-info`` beside the new one (pip #8063), so DIR would list two
    versions and discovery could read the old entry points. Remove the old ones."""
    import shutil

    from packaging.utils import canonicalize_name

    key = canonicalize_name(name)
    for d in Path(target).glob("*.dist-info"):
        dist, _, ver = d.name[:-10].rpartition("-")
        if canonicalize_name(dist) == key and not _same(ver, version):
            shutil.rmtree(d, ignore_errors=True)


def _same(a: str, b: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def _mismatch(plan: InstallPlan, got: str | None) -> str:
    seen = f"its sha256 is {got[:16]}…, " if got else ""
    return (f"refused {plan.wheel}: {seen}the index says {plan.sha256[:16]}… — the file changed after "
            "`flx-ipy index build` or was tampered with; nothing was installed")


def _run_pip(plan: InstallPlan, target: str | None, reinstall: bool, pip_args: Sequence[str],
             on_line: Callable[[str], None] | None) -> str:
    url = plan.location if is_url(plan.location) else Path(plan.location).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="flx-ipy-install-") as tmp:
        req = Path(tmp, "requirements.txt")
        req.write_text(f"{plan.name} @ {url} --hash=sha256:{plan.sha256}\n", encoding="utf-8")
        cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--require-hashes", "--no-input",
               "--progress-bar", "off", "-r", str(req)]
        if target:
            cmd += ["--target", target, "--upgrade"]
        if reinstall:
            cmd += ["--force-reinstall"]
        cmd += list(pip_args)
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    encoding="utf-8", errors="replace", stdin=subprocess.DEVNULL)
        except OSError as e:
            raise RegistryError(f"could not start pip ({sys.executable} -m pip): {e}") from None
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if on_line is not None:
                on_line(line.rstrip("\n"))
        code = proc.wait()
    output = "".join(lines)
    if code != 0:
        if "DO NOT MATCH THE HASHES" in output:
            m = _GOT_RE.search(output)
            raise RegistryError(_mismatch(plan, m.group(1) if m else None))
        errors = [ln.strip() for ln in lines if ln.strip().startswith("ERROR:")]
        last = errors[-1] if errors else (output.strip().splitlines() or ["no output"])[-1].strip()
        raise RegistryError(f"pip could not install {plan.wheel} (exit {code}): {last}")
    return output

