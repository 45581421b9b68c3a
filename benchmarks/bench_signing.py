"""What signatures cost: loading 100 signed plugins under ``require`` vs the same under ``off``,
in-process verify vs ``ssh-keygen -Y verify``, and ``import flx_ipy`` / ``%load_ext`` with every
policy off, against a baseline checkout without this feature.

Run: ``python benchmarks/bench_signing.py [--plugins 100] [--rounds 7] [--baseline /path/to/checkout]
[--no-write]``

- **load overhead**: 100 single-file ~200-line plugins (``_common.plugin_text``), each signed
  with an ed25519 key. One manager with ``signature_policy="off"`` and one with ``"require"``
  load all 100, alternately, ``--rounds`` times (modules forgotten between rounds); the figure is
  the difference of the medians per plugin. Hashing, reading the signature, verifying and pinning
  the bytes are all inside it. The first ``require`` load in a fresh process (which imports
  ``cryptography``) is measured separately, in subprocesses.
- **verify one plugin**: ``check_path`` (what every check runs) beside ``ssh-keygen -Y verify``
  on the same manifest and signature, a process per plugin as a tool shelling out would do.
- **import cost with policies off**: fresh-process medians of ``import flx_ipy`` and of
  ``%load_ext flx_ipy`` (in ``IPython.testing.globalipapp``) for this checkout and for
  ``--baseline`` (default: none, then only ours is shown); no crypto or jsonschema imported.

Results go to ``benchmarks/RESULTS.md`` under "## Signing".
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, append_results, machine, med, ms, plugin_text, ratio, table


def _plugins(folder: Path, n: int, key: Path) -> list[Path]:
    from flx_ipy.core.trust import sign_plugin

    paths = []
    for i in range(n):
        p = folder / f"sig_bench_{i}.py"
        p.write_text(plugin_text(i, name=f"sig_bench_{i}"))
        sign_plugin(p, key)
        paths.append(p)
    return paths


def _load_all(pm, paths: list[Path]) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    for p in paths:
        pm.load(str(p))
    dt = time.perf_counter() - t0
    for name in list(pm.plugins):
        pm.unload(name)
    return dt


def load_overhead(tmp: Path, n: int, rounds: int, key: Path, allowed: Path) -> dict[str, float]:
    from flx_ipy import PluginManager

    paths = _plugins(tmp / "plugins", n, key)
    off = PluginManager(entry_points=False, signature_policy="off")
    req = PluginManager(entry_points=False, signature_policy="require", allowed_signers=allowed)
    _load_all(req, paths)  # warm: cryptography imported, files in the page cache, for both
    _load_all(off, paths)
    t_off, t_req = [], []
    for _ in range(rounds):
        t_off.append(_load_all(off, paths))
        t_req.append(_load_all(req, paths))
    off.close()
    req.close()
    return {"off": med(t_off) / n, "require": med(t_req) / n, "overhead": (med(t_req) - med(t_off)) / n,
            "overhead_min": (min(t_req) - min(t_off)) / n}


def first_require_load(tmp: Path, key: Path, allowed: Path, runs: int) -> float:
    """A fresh process loads one signed plugin under require: includes importing cryptography."""
    p = tmp / "first" / "sig_first.py"
    p.parent.mkdir()
    p.write_text(plugin_text(0, name="sig_first"))
    from flx_ipy.core.trust import sign_plugin

    sign_plugin(p, key)
    code = ("import time, flx_ipy; pm = flx_ipy.PluginManager(entry_points=False, signature_policy='require', "
            f"allowed_signers={str(allowed)!r}); t = time.perf_counter(); pm.load({str(p)!r}); "
            "print(time.perf_counter() - t)")
    out = []
    for _ in range(runs):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
        out.append(float(r.stdout.strip().splitlines()[-1]))
    return med(out)


def verify_costs(tmp: Path, key: Path, allowed: Path, n: int) -> dict[str, float]:
    from flx_ipy.core.signing import signature_path
    from flx_ipy.core.sshsig import AllowedSigners
    from flx_ipy.core.trust import check_path

    paths = sorted((tmp / "plugins").glob("*.py"))[:n]
    signers = AllowedSigners.load(allowed)
    check_path(paths[0], signers)
    t0 = time.perf_counter()
    for p in paths:
        assert check_path(p, signers).status == "signed"
    ours = (time.perf_counter() - t0) / len(paths)
    exe = shutil.which("ssh-keygen")
    if exe is None:
        return {"ours": ours, "ssh_keygen": float("nan")}
    work = tmp / "sshkg"
    work.mkdir()
    jobs = []
    for i, p in enumerate(paths):
        text = signature_path(p).read_text()
        cut = text.index("-----BEGIN SSH SIGNATURE-----")
        (work / f"{i}.msg").write_text(text[:cut])
        (work / f"{i}.sig").write_text(text[cut:])
        jobs.append(i)
    t0 = time.perf_counter()
    for i in jobs:
        with open(work / f"{i}.msg", "rb") as fh:
            subprocess.run([exe, "-Y", "verify", "-f", str(allowed), "-I", "bench@example.com", "-n", "flx-ipy",
                            "-s", str(work / f"{i}.sig")], stdin=fh, capture_output=True, check=True)
    theirs = (time.perf_counter() - t0) / len(jobs)
    return {"ours": ours, "ssh_keygen": theirs}


IMPORT_CODE = "import time; t = time.perf_counter(); import flx_ipy; print(time.perf_counter() - t)"
LOAD_EXT_CODE = ("import sys, time\nfrom IPython.testing.globalipapp import start_ipython\nip = start_ipython()\n"
                 "t = time.perf_counter(); ip.run_line_magic('load_ext', 'flx_ipy'); dt = time.perf_counter() - t\n"
                 "heavy = [m for m in ('cryptography', 'jsonschema', 'jupyter_events') if m in sys.modules]\n"
                 "print(dt, heavy)")


def import_costs(checkouts: list[Path], runs: int, tmp: Path) -> list[dict[str, object]]:
    """Fresh-process medians per checkout, the checkouts interleaved run by run (so load from
    other work on the machine hits each alike)."""
    got: list[dict[str, list[float] | set[str]]] = [{"import": [], "load_ext": [], "heavy": set()} for _ in checkouts]
    for _ in range(runs):
        for checkout, acc in zip(checkouts, got, strict=True):
            env = {**os.environ, "PYTHONPATH": str(checkout), "JUPYTER_DATA_DIR": str(tmp / "jupyter"),
                   "IPYTHONDIR": str(tmp / "ipython")}
            r = subprocess.run([sys.executable, "-c", IMPORT_CODE], capture_output=True, text=True, env=env,
                               check=True)
            acc["import"].append(float(r.stdout.split()[0]))  # type: ignore[union-attr]
            r = subprocess.run([sys.executable, "-c", LOAD_EXT_CODE], capture_output=True, text=True, env=env,
                               check=True)
            last = r.stdout.strip().splitlines()[-1]
            acc["load_ext"].append(float(last.split()[0]))  # type: ignore[union-attr]
            acc["heavy"].update(eval(last.split(None, 1)[1]))  # type: ignore[union-attr]  # our own list literal
    return [{"import": med(a["import"]), "load_ext": med(a["load_ext"]), "heavy": sorted(a["heavy"])}  # type: ignore[arg-type]
            for a in got]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--plugins", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--runs", type=int, default=7, help="fresh processes per import / first-load figure")
    ap.add_argument("--baseline", type=Path, help="a checkout without signing/audit, for the import figures")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    from flx_ipy.core.sshsig import generate_key

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "plugins").mkdir()
        key, pub = generate_key(tmp / "key", "bench@example.com")
        allowed = tmp / "allowed_signers"
        allowed.write_text('bench@example.com namespaces="flx-ipy" ' + " ".join(pub.read_text().split()[:2]) + "\n")
        load = load_overhead(tmp, args.plugins, args.rounds, key, allowed)
        first = first_require_load(tmp, key, allowed, args.runs)
        ver = verify_costs(tmp, key, allowed, min(args.plugins, 50))
        costs = import_costs([ROOT, *([args.baseline] if args.baseline else [])], args.runs, tmp)
        ours_imp = costs[0]
        base_imp = costs[1] if args.baseline else None

    rows = [
        ["load one signed plugin under `require` (~200 lines; hash + verify + pin)", ms(load["require"]),
         "same plugin unsigned under `off`", ms(load["off"]), ratio(load["require"], load["off"])],
        ["overhead of `require` per plugin, difference of medians (target ≤ 0.5 ms)", ms(load["overhead"]),
         "—", "", ""],
        ["same, difference of the fastest rounds (least disturbed by other load)", ms(load["overhead_min"]),
         "—", "", ""],
        ["first `require` load in a fresh process (imports cryptography)", ms(first), "—", "", ""],
        ["verify one plugin in-process (`check_path`)", ms(ver["ours"]), "`ssh-keygen -Y verify` (a process)",
         ms(ver["ssh_keygen"]), ratio(ver["ours"], ver["ssh_keygen"])],
    ]
    heavy = ", ".join(ours_imp["heavy"]) or "none"  # type: ignore[arg-type]
    if base_imp is not None:
        rows += [
            ["`import flx_ipy`, fresh process, policies off", ms(ours_imp["import"]),  # type: ignore[arg-type]
             f"baseline checkout ({args.baseline})", ms(base_imp["import"]),  # type: ignore[arg-type]
             ratio(ours_imp["import"], base_imp["import"])],  # type: ignore[arg-type]
            ["`%load_ext flx_ipy`, fresh shell, policies off (audit log on)", ms(ours_imp["load_ext"]),  # type: ignore[arg-type]
             "baseline checkout", ms(base_imp["load_ext"]),  # type: ignore[arg-type]
             ratio(ours_imp["load_ext"], base_imp["load_ext"])],  # type: ignore[arg-type]
        ]
    else:
        rows += [["`import flx_ipy`, fresh process, policies off", ms(ours_imp["import"]), "—", "", ""],  # type: ignore[arg-type]
                 ["`%load_ext flx_ipy`, fresh shell, policies off", ms(ours_imp["load_ext"]), "—", "", ""]]  # type: ignore[arg-type]
    text = (machine(" ".join(["python", "benchmarks/bench_signing.py", *sys.argv[1:]]))
            + f"- plugins: {args.plugins}, rounds: {args.rounds}, fresh processes per figure: {args.runs}\n"
            + f"- heavy modules imported by `import flx_ipy` / `%load_ext` with policies off: {heavy}\n\n"
            + table(["figure", "flx_ipy ms", "peer / floor", "peer ms", "ratio"], rows))
    print(text)
    if not args.no_write:
        append_results("## Signing", "`benchmarks/bench_signing.py`: signed plugins under `require` vs unsigned "
                       "under `off`, in-process verify vs `ssh-keygen -Y verify`, import cost with policies off.",
                       text)


if __name__ == "__main__":
    main()
