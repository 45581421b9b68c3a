"""Randomized edit/reload soak: every cycle ok or rolled back, no state ever lost, memory flat.

Run: ``python benchmarks/soak.py [--cycles 10000] [--seed 0] [--apply-share 0.3] [--hammer]
[--tracemalloc] [--no-write]``

A running plugin with state (``benchmarks/_common.plugin_text``: a counter, a history, a window;
``save_state``/``restore_state`` in most versions) is edited at random, one save per cycle:

- **valid** edits, combined at random: a method body, a module constant (``TAG``), a class
  attribute (``LIMIT``), methods added or removed, the shape ``save_state`` returns (three
  shapes; every ``restore_state`` reads all of them), ``save_state``/``restore_state`` removed or
  added back;
- **broken** edits: syntax error, exception in ``start``, import error, failed validation
  (``save_state`` without ``restore_state``), exception in ``restore_state``, a renamed plugin;
- **no-op** saves (the same content again);
- **peers' cases** (issue 10), in a block appended to the plugin module and edited at random too:
  a metaclass defined in the module, a class with a nested class, an instance made at module
  level right after its class (``DEFAULT = Helper()``), a class-keyed registry, a function whose
  decorator (a closure-making ``incremented``) is added or removed, and a module-level dict
  filled at run time (``SEEN``) whose line never changes.

Each cycle applies the save with ``pm.reload(name)`` or (``--apply-share`` of cycles)
``pm.apply_changes([path])``, then checks: the result is ok (valid/no-op edits) or rolled back
(broken edits); the object taken with ``pm.get`` at the start is still ``pm.get``'s object, runs
the current good code (``tag()``) and is running; and its counter equals the number of ``inc()``
calls made (one per cycle): no increment ever lost. The peers' block is checked the same way,
through references taken before the first reload: ``SEEN`` is the same dict and holds every
cycle's entry (module-level state lost otherwise), ``DEFAULT`` is the same object and an
instance of ``Helper``, the registry finds ``Helper``, a nested-class object and the old function
run the current code, and no reload reports the metaclass as changed or makes a new instance.
RSS (and with ``--tracemalloc`` traced memory) is sampled every 1,000 cycles after
``gc.collect()``.

``--hammer``: a second thread calls ``inc()`` non-stop during the whole soak (the main thread
then does not), and the counter must equal the hammer's calls at the end: calls during a reload
must neither fail nor be lost.

Results are appended to ``benchmarks/RESULTS.md`` under "## Soak".
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import append_results, machine, plugin_text, table

NAME = "soak"
BROKEN = ("syntax", "start_raises", "import_error", "validation", "restore_raises", "name_change")


PEERS = """

# ---- peers' cases (benchmarks/soak.py) ----
SEEN = {{}}


class Meta(type):
    def kind(cls):
        return {v}


class Helper(metaclass=Meta):
    def v(self):
        return {v}

    class Inner:
        def w(self):
            return {v}


DEFAULT = Helper()
REGISTRY = {{Helper: "helper"}}


def incremented(fn):
    return lambda *a: fn(*a) + 1


{deco}
def bumped():
    return {v}
"""


@dataclass(frozen=True)
class Version:
    tag: int = 0
    extras: tuple[int, ...] = ()
    limit: int = 10
    shape: int = 1
    with_state: bool = True
    body_variant: int = 0
    broken: str | None = None
    peer: int = 0  # what the peers' block returns
    deco: bool = False  # is bumped() decorated with @incremented

    def text(self) -> str:
        return plugin_text(self.tag, name=NAME, extras=self.extras, limit=self.limit, shape=self.shape,
                           broken=self.broken, with_state=self.with_state,
                           body_variant=self.body_variant) + PEERS.format(v=self.peer, deco="@incremented"
                                                                            if self.deco else "")

    @property
    def expected_bumped(self) -> int:
        return self.peer + (1 if self.deco else 0)


    @property
    def expected_tag(self) -> int:
        return self.tag + self.body_variant


@dataclass
class Report:
    cycles: int = 0
    ok: int = 0
    rolled_back: int = 0
    unchanged: int = 0
    state_lost: int = 0
    other_failures: int = 0
    via_apply_changes: int = 0
    kinds: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    memory: list[tuple[int, float, float | None]] = field(default_factory=list)  # cycle, RSS MB, traced MB
    hammer_calls: int = 0
    hammer_errors: int = 0
    seconds: float = 0.0
    reload_ms: list[float] = field(default_factory=list)

    def problem(self, msg: str) -> None:
        if len(self.problems) < 30:
            self.problems.append(msg)

    @property
    def rss_growth(self) -> float:
        return self.memory[-1][1] - self.memory[0][1] if len(self.memory) > 1 else 0.0

    @property
    def traced_growth(self) -> float | None:
        if len(self.memory) > 1 and self.memory[0][2] is not None:
            return self.memory[-1][2] - self.memory[0][2]  # type: ignore[operator]
        return None


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _next_version(rng: random.Random, good: Version, cycle: int, stateless: bool = False,
                  broken_share: float = 0.32) -> tuple[str, Version]:
    kind, v = _pick(rng, good, cycle, broken_share)
    if stateless and v.with_state:
        v = replace(v, with_state=False)
        if kind in ("validation", "restore_raises"):
            kind, v = "syntax", replace(v, broken="syntax")
    return kind, v


def _pick(rng: random.Random, good: Version, cycle: int, broken_share: float) -> tuple[str, Version]:
    r = rng.random()
    if r < 0.08:
        return "noop", good
    if r < 0.08 + broken_share:
        kind = rng.choice(BROKEN)
        if kind == "restore_raises" and not good.with_state:
            kind = "syntax"  # without a saved state the new restore_state would never be called
        base = replace(good, tag=cycle, broken=kind)
        if kind in ("validation", "restore_raises"):
            base = replace(base, with_state=True)
        return kind, base
    v = replace(good, broken=None)
    changes = []
    for _ in range(rng.randint(1, 3)):
        c = rng.choice(("body", "constant", "class_attr", "add_method", "remove_method", "state_shape",
                        "state_hooks", "peers", "decorator"))
        changes.append(c)
        if c == "body":
            v = replace(v, body_variant=rng.randint(1, 1000))
        elif c == "constant":
            v = replace(v, tag=cycle)
        elif c == "class_attr":
            v = replace(v, limit=rng.randint(0, 100))
        elif c == "add_method":
            v = replace(v, extras=tuple(sorted({*v.extras, rng.randint(0, 30)})))
        elif c == "remove_method" and v.extras:
            e = list(v.extras)
            e.remove(rng.choice(e))
            v = replace(v, extras=tuple(e))
        elif c == "state_shape":
            v = replace(v, shape=rng.choice([s for s in (1, 2, 3) if s != v.shape]))
        elif c == "state_hooks":
            v = replace(v, with_state=rng.random() < 0.7)
        elif c == "peers":
            v = replace(v, peer=rng.randint(1, 1000))
        elif c == "decorator":
            v = replace(v, deco=not v.deco)
    v = replace(v, tag=cycle)  # always observable: the new tag says which code runs
    return "valid:" + "+".join(sorted(set(changes))), v


def run_soak(cycles: int = 10_000, *, seed: int = 0, apply_share: float = 0.3, hammer: bool = False,
             trace: bool = False, mem_every: int = 1000, folder: str | None = None,
             progress: bool = False, stateless: bool = False, broken_share: float = 0.32) -> Report:
    from flx_ipy import PluginManager

    rng = random.Random(seed)
    rep = Report()
    with tempfile.TemporaryDirectory(prefix="flx-soak-", dir=folder) as td:
        path = Path(td) / "soakplug.py"
        good = Version(with_state=not stateless)
        _write(path, good.text())
        pm = PluginManager(entry_points=False, hook_timeout=5.0)
        pm.load(str(path), start=True)
        p = pm.get(NAME)
        incs = 0
        mod = pm.plugins[NAME].module
        seen, default, inner, bumped = mod.SEEN, mod.DEFAULT, mod.Helper.Inner(), mod.bumped
        stop = threading.Event()
        hcount = [0]
        herr: list[BaseException] = []

        def hammer_loop() -> None:
            while not stop.is_set():
                try:
                    p.inc()
                    hcount[0] += 1
                except BaseException as e:  # a call that fails during a reload is the bug we look for
                    herr.append(e)
                    if len(herr) > 100:
                        return

        th = threading.Thread(target=hammer_loop, daemon=True) if hammer else None
        if th:
            th.start()
        if trace:
            tracemalloc.start()
        t_start = time.perf_counter()

        def sample(cycle: int) -> None:
            gc.collect()
            traced = tracemalloc.get_traced_memory()[0] / 1e6 if trace else None
            rep.memory.append((cycle, _rss_mb(), traced))

        try:
            for cycle in range(1, cycles + 1):
                kind, new = _next_version(rng, good, cycle, stateless, broken_share)
                rep.kinds[kind.split(":")[0]] += 1
                _write(path, new.text())
                via_apply = rng.random() < apply_share
                try:
                    if via_apply:
                        rep.via_apply_changes += 1
                        results = pm.apply_changes([path])
                        res = results[0] if results else None
                        if len(results) > 1:
                            rep.other_failures += 1
                            rep.problem(f"cycle {cycle}: {len(results)} results for one plugin")
                    else:
                        res = pm.reload(NAME)
                except Exception as e:  # the manager itself raised: neither ok nor rolled back
                    rep.other_failures += 1
                    rep.problem(f"cycle {cycle} ({kind}): manager raised {type(e).__name__}: {e}")
                    res = None
                    if pm.status(NAME) != "running":
                        break
                expect_ok = kind == "noop" or kind.startswith("valid:")
                if res is None:
                    if via_apply and kind == "noop":
                        rep.unchanged += 1  # a save that changes nothing does nothing
                    else:
                        rep.other_failures += 1
                        rep.problem(f"cycle {cycle} ({kind}): apply_changes returned no result")
                elif res.ok:
                    rep.ok += 1
                    rep.reload_ms.append(res.duration * 1000)
                    if not expect_ok:
                        rep.other_failures += 1
                        rep.problem(f"cycle {cycle}: broken edit {kind} was applied")
                elif res.rolled_back:
                    rep.rolled_back += 1
                    if expect_ok:
                        rep.other_failures += 1
                        rep.problem(f"cycle {cycle}: valid edit {kind} rolled back: {res.phase}: {res.error}")
                else:
                    rep.other_failures += 1
                    rep.problem(f"cycle {cycle} ({kind}): neither ok nor rolled back: {res.phase}: {res.error}")
                if expect_ok and (res is None or res.ok):
                    good = new
                elif res is not None and res.ok:  # a broken edit got in: follow what runs
                    good = new
                # the invariants
                try:
                    if pm.get(NAME) is not p:
                        rep.other_failures += 1
                        rep.problem(f"cycle {cycle} ({kind}): pm.get returns a different object")
                    if pm.status(NAME) != "running":
                        rep.other_failures += 1
                        rep.problem(f"cycle {cycle} ({kind}): status {pm.status(NAME)}")
                    if p.tag() != good.expected_tag:
                        rep.other_failures += 1
                        rep.problem(f"cycle {cycle} ({kind}): runs tag {p.tag()}, expected {good.expected_tag}")
                    if not hammer:
                        before = p.count
                        if before != incs:
                            rep.state_lost += 1
                            rep.problem(f"cycle {cycle} ({kind}): count {before} != {incs} increments")
                            incs = before
                        p.inc()
                        incs += 1
                    seen[cycle] = True
                    if mod.SEEN is not seen or len(seen) != cycle:
                        rep.state_lost += 1
                        rep.problem(f"cycle {cycle} ({kind}): module-level SEEN lost ({len(mod.SEEN)} entries)")
                        seen = mod.SEEN
                        seen.update({c: True for c in range(1, cycle + 1)})
                    peer_ok = (mod.DEFAULT is default and isinstance(default, mod.Helper)
                               and mod.REGISTRY.get(mod.Helper) == "helper" and default.v() == good.peer
                               and type(mod.Helper).kind(mod.Helper) == good.peer
                               and isinstance(inner, mod.Helper.Inner) and inner.w() == good.peer
                               and bumped() == good.expected_bumped == mod.bumped())
                    if not peer_ok:
                        rep.other_failures += 1
                        rep.problem(f"cycle {cycle} ({kind}): peers' block runs stale code or lost identity")
                    if res is not None and (res.recreated or any("metaclass" in n for n in res.notes)):
                        rep.other_failures += 1
                        rep.problem(f"cycle {cycle} ({kind}): {res.notes}")
                    extras_now = sorted(int(k[6:]) for k in dir(p) if k.startswith("extra_"))
                    if extras_now != sorted(good.extras):
                        rep.other_failures += 1
                        rep.problem(f"cycle {cycle} ({kind}): methods {extras_now} != {sorted(good.extras)}")
                    if good.extras and p.__getattribute__(f"extra_{good.extras[0]}")(1) != \
                            1 + good.extras[0] + good.limit:
                        rep.other_failures += 1
                        rep.problem(f"cycle {cycle} ({kind}): extra method runs stale code")
                except Exception as e:
                    rep.other_failures += 1
                    rep.problem(f"cycle {cycle} ({kind}): the live object failed: {type(e).__name__}: {e}")
                rep.cycles = cycle
                if cycle == min(100, cycles) or cycle % mem_every == 0:
                    sample(cycle)
                if progress and cycle % 1000 == 0:
                    print(f"... {cycle} cycles ({time.perf_counter() - t_start:.1f} s): ok {rep.ok}, "
                          f"rolled back {rep.rolled_back}, "
                          f"state lost {rep.state_lost}, other {rep.other_failures}, "
                          f"RSS {rep.memory[-1][1]:.1f} MB", file=sys.stderr, flush=True)
        finally:
            stop.set()
            if th:
                th.join(5)
            if hammer:
                rep.hammer_calls, rep.hammer_errors = hcount[0], len(herr)
                if herr:
                    rep.other_failures += len(herr)
                    rep.problem(f"hammer: {len(herr)} calls failed, first {type(herr[0]).__name__}: {herr[0]}")
                if p.count != hcount[0]:
                    rep.state_lost += 1
                    rep.problem(f"hammer: count {p.count} != {hcount[0]} calls "
                                f"({hcount[0] - p.count} increments lost)")
            if trace:
                tracemalloc.stop()
            rep.seconds = time.perf_counter() - t_start
            pm.close()
    return rep


def render(rep: Report, args: Any) -> str:
    rows = [("cycles", rep.cycles), ("ok (applied or no-op)", rep.ok), ("rolled back", rep.rolled_back),
            ("no-op via apply_changes (nothing to do)", rep.unchanged),
            ("state lost (must be 0)", rep.state_lost), ("other failures (must be 0)", rep.other_failures),
            ("applied via pm.apply_changes", rep.via_apply_changes),
            ("edit kinds", ", ".join(f"{k} {v}" for k, v in sorted(rep.kinds.items()))),
            ("median / max ok reload ms", f"{sorted(rep.reload_ms)[len(rep.reload_ms) // 2]:.2f} / "
                                         f"{max(rep.reload_ms):.1f}" if rep.reload_ms else "n/a"),
            ("memory, RSS MB at cycle " + ", ".join(str(c) for c, _, _ in rep.memory),
             ", ".join(f"{m:.1f}" for _, m, _ in rep.memory)),
            ("RSS growth MB (from cycle 100)", f"{rep.rss_growth:.2f}")]
    if rep.traced_growth is not None:
        rows.append(("tracemalloc growth MB (from cycle 100)", f"{rep.traced_growth:.2f}"))
    if args.hammer:
        rows.append(("hammer thread calls / failed", f"{rep.hammer_calls} / {rep.hammer_errors}"))
    rows.append(("wall time s", f"{rep.seconds:.1f}"))
    text = table(("measure", "value"), rows)
    if rep.problems:
        text += "\nFirst problems:\n\n" + "\n".join(f"- {p}" for p in rep.problems[:15]) + "\n"
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--apply-share", type=float, default=0.3)
    ap.add_argument("--hammer", action="store_true")
    ap.add_argument("--tracemalloc", action="store_true")
    ap.add_argument("--stateless", action="store_true",
                    help="the plugin never defines save_state/restore_state (it keeps its attributes)")
    ap.add_argument("--broken-share", type=float, default=0.32, help="share of broken edits")
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args()
    rep = run_soak(a.cycles, seed=a.seed, apply_share=a.apply_share, hammer=a.hammer, trace=a.tracemalloc,
                   progress=True, stateless=a.stateless, broken_share=a.broken_share)
    cmd = (f"python benchmarks/soak.py --cycles {a.cycles} --seed {a.seed} --apply-share {a.apply_share}"
           + (" --hammer" if a.hammer else "") + (" --tracemalloc" if a.tracemalloc else "")
           + (" --stateless" if a.stateless else "") + f" --broken-share {a.broken_share}")
    text = machine(cmd) + "\n" + render(rep, a)
    print(text)
    if not a.no_write:
        append_results("## Soak", "`benchmarks/soak.py`: random valid, broken, state-changing and no-op edits "
                       "of a running plugin with state; every cycle must be ok or rolled back, the counter "
                       "never loses an increment, the first `pm.get` object keeps running the current code.",
                       text)
    sys.exit(1 if rep.state_lost or rep.other_failures else 0)


if __name__ == "__main__":
    main()
