"""What the audit log costs an operation, beside Python ``logging`` with a JSON formatter and
``jupyter_events``' ``emit``, and how fast ``flx-ipy audit verify`` checks 100,000 records.

Run: ``python benchmarks/bench_audit.py [--records 100000] [--no-write]``

- **per record, caller's side** (what an operation pays; target ≤ 15 µs): the manager publishing
  a ``started`` event with the audit trail subscribed, minus the same publish without it — the
  record is built (origin from the context variable, the plugin's code bytes captured) and
  queued; JSON, the hash chain and the write happen in the writer thread, held off during this
  loop. A second figure lets the writer run during the loop: then the two share the GIL.
- **per record, writer included**: ``N`` records through ``AuditLog`` until flushed to disk, per
  record (what the machine pays in total, on another thread).
- **blocking mode**: the same, written and flushed before each ``write`` returns.
- **peers**: ``logging.Logger.info`` to a ``FileHandler`` whose formatter ``json.dumps`` the same
  fields (no chain); ``jupyter_events.EventLogger.emit`` with a registered schema to a
  ``FileHandler`` (its validation included, as configured by default). Both in the caller's
  thread, as they run.
- **verify**: ``verify_chain`` in-process, and ``flx-ipy audit verify`` as a process, over
  ``--records`` records.

Results go to ``benchmarks/RESULTS.md`` under "## Audit".
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, append_results, machine, med, ratio, table


def us(x: float) -> str:
    return f"{x * 1e6:.3g}"


def caller_cost(tmp: Path, n: int, rounds: int = 7) -> tuple[float, float, float]:
    from flx_ipy import PluginManager
    from flx_ipy.core.audit import AuditLog, AuditTrail
    from flx_ipy.testing import plugin_source

    plugin = tmp / "audit_bench_plugin.py"
    plugin.write_text(plugin_source("audit_bench_plugin"))
    pm = PluginManager(entry_points=False)
    pm.load(str(plugin))

    def publish_n() -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            pm.events.publish("started", "audit_bench_plugin", version="1.0.0")
        return (time.perf_counter() - t0) / n

    bare, held, running = [], [], []
    for r in range(rounds):
        bare.append(publish_n())
        trail = AuditTrail(pm, AuditLog(tmp / f"caller{r}.jsonl", max_bytes=0))
        trail.log.write({"operation": "warm-up"})
        trail.flush()
        with trail.log._lock:  # the writer waits on this lock (off the GIL): the caller's own cost
            held.append(publish_n())
        trail.flush(60)
        running.append(publish_n())  # a tight loop, the writer competing for the GIL
        trail.close()
    pm.close()
    return med(held) - med(bare), med(running) - med(bare), med(bare)


def writer_cost(tmp: Path, n: int, mode: str) -> float:
    from flx_ipy.core.audit import AuditLog

    log = AuditLog(tmp / f"writer-{mode}.jsonl", mode=mode, max_bytes=0)
    rec = {"operation": "reload", "plugin": "counter", "outcome": "ok", "origin": "api", "error": None,
           "code_sha256": "ab" * 32}
    t0 = time.perf_counter()
    for _ in range(n):
        log.write(rec)
    log.flush(120)
    dt = (time.perf_counter() - t0) / n
    log.close()
    return dt


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"time": self.formatTime(record), **record.__dict__.get("fields", {})},
                          separators=(",", ":"))


def logging_cost(tmp: Path, n: int) -> float:
    logger = logging.getLogger("bench.audit.logging")
    logger.propagate = False
    handler = logging.FileHandler(tmp / "logging.jsonl")
    handler.setFormatter(_JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    fields = {"operation": "reload", "plugin": "counter", "outcome": "ok", "actor": "me", "origin": "api",
              "error": None, "code_sha256": "ab" * 32}
    t0 = time.perf_counter()
    for _ in range(n):
        logger.info("audit", extra={"fields": fields})
    dt = (time.perf_counter() - t0) / n
    handler.close()
    logger.removeHandler(handler)
    return dt


def jupyter_events_cost(tmp: Path, n: int) -> tuple[float, float]:
    code = f"""
import logging, time
t0 = time.perf_counter()
from jupyter_events import EventLogger
imported = time.perf_counter() - t0
schema = {{"$id": "https://example.org/flx_ipy/audit", "version": "1", "title": "audit",
          "description": "an audit record", "type": "object",
          "properties": {{k: {{"type": ["string", "null"]}} for k in
                         ("operation", "plugin", "outcome", "actor", "origin", "error", "code_sha256")}}}}
el = EventLogger(handlers=[logging.FileHandler({str(tmp / 'events.jsonl')!r})])
el.register_event_schema(schema)
data = {{"operation": "reload", "plugin": "counter", "outcome": "ok", "actor": "me", "origin": "api",
        "error": None, "code_sha256": "ab" * 32}}
t0 = time.perf_counter()
for _ in range({n}):
    el.emit(schema_id=schema["$id"], data=data)
print(imported, (time.perf_counter() - t0) / {n})
"""
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600)
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        print("jupyter_events unavailable:", getattr(e, "stderr", e))
        return float("nan"), float("nan")
    imported, per = out.stdout.split()
    return float(per), float(imported)


def verify_cost(tmp: Path, n: int) -> tuple[float, float]:
    from flx_ipy.core.audit import AuditLog, verify_chain

    path = tmp / "verify.jsonl"
    log = AuditLog(path, max_bytes=0)
    for i in range(n):
        log.write({"operation": "reload", "plugin": f"p{i % 50}", "outcome": "ok", "origin": "api"})
    log.close(120)
    t0 = time.perf_counter()
    report = verify_chain(path)
    in_proc = time.perf_counter() - t0
    if not (report.ok and report.records == n):
        raise SystemExit(f"verify_chain disagrees with what was written: {report}")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "flx_ipy", "audit", "verify", str(path)], check=True,
                   capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    cli = time.perf_counter() - t0
    return in_proc, cli


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=100_000, help="records for the verify figure")
    ap.add_argument("--n", type=int, default=20_000, help="records per cost figure")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        caller, contended, bare = caller_cost(tmp, args.n)
        buffered = writer_cost(tmp, args.n, "buffered")
        blocking = writer_cost(tmp, max(args.n // 4, 1000), "blocking")
        lg = logging_cost(tmp, args.n)
        je, je_import = jupyter_events_cost(tmp, max(args.n // 4, 1000))
        v_in, v_cli = verify_cost(tmp, args.records)
    rows = [
        ["per record, the operation's side (buffered; target ≤ 15 µs)", us(caller),
         "`logging` + JSON formatter, per record", us(lg), ratio(caller, lg)],
        ["", "", "`jupyter_events` `emit`, per record", us(je), ratio(caller, je)],
        ["same, in a tight loop with the writer thread competing for the GIL", us(contended),
         "`logging` + JSON formatter", us(lg), ratio(contended, lg)],
        ["per record, writer thread included (JSON + chain + write)", us(buffered),
         "`logging` + JSON formatter (no chain)", us(lg), ratio(buffered, lg)],
        ["per record, blocking mode (written + flushed before returning)", us(blocking),
         "`jupyter_events` `emit`", us(je), ratio(blocking, je)],
        ["(event publish without audit, for scale)", us(bare), "", "", ""],
    ]
    text = (machine(" ".join(["python", "benchmarks/bench_audit.py", *sys.argv[1:]]))
            + f"- records per cost figure: {args.n} (blocking and jupyter_events: a quarter); "
            f"`import jupyter_events`: {je_import * 1000:.0f} ms (why the kernel never imports it)\n\n"
            + table(["figure", "flx_ipy µs", "peer", "peer µs", "ratio"], rows)
            + f"\n`verify_chain` over {args.records:,} records: {v_in * 1000:.0f} ms in-process "
            f"({v_in / args.records * 1e6:.2f} µs/record); `flx-ipy audit verify` as a process: "
            f"{v_cli * 1000:.0f} ms.\n")
    print(text)
    if not args.no_write:
        append_results("## Audit", "`benchmarks/bench_audit.py`: the cost of one audit record beside `logging` with "
                       "a JSON formatter and `jupyter_events`' `emit`; `flx-ipy audit verify` over 100,000 records.",
                       text)


if __name__ == "__main__":
    main()
