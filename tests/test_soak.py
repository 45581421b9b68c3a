"""A short run of the randomized edit/reload soak (``benchmarks/soak.py``), so CI exercises it.

300 random valid, broken, state-changing and no-op edits of a running plugin with state: every
cycle ok or rolled back, no increment of its counter lost, the first ``pm.get`` object keeps
running the current code. The full 10,000-cycle soak and its memory figures are
``python benchmarks/soak.py``. No timing is asserted here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from soak import run_soak

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("seed", [0, 1])
def test_short_soak_every_cycle_ok_or_rolled_back_and_no_state_lost(tmp_path: Path, seed: int) -> None:
    rep = run_soak(300, seed=seed, apply_share=0.3, folder=str(tmp_path), mem_every=10**9)
    assert rep.cycles == 300
    assert rep.problems == []
    assert rep.state_lost == 0
    assert rep.other_failures == 0
    assert rep.ok + rep.rolled_back + rep.unchanged == 300
    assert rep.rolled_back > 0 and rep.ok > 0 and rep.via_apply_changes > 0  # both paths exercised
    assert {"syntax", "start_raises", "import_error", "validation", "restore_raises"} <= set(rep.kinds)


@pytest.mark.parametrize(("stateless", "broken_share"), [
    pytest.param(True, 0.0, id="plain-plugin-valid-edits"),
    pytest.param(True, 0.32, id="plain-plugin-with-rollbacks"),
    pytest.param(False, 0.0, id="save-restore-state"),
])
def test_short_soak_with_a_hammering_thread(tmp_path: Path, stateless: bool, broken_share: float) -> None:
    """Another thread calls into the plugin during every reload: no call fails, none is lost."""
    rep = run_soak(150, seed=2, apply_share=0.3, hammer=True, folder=str(tmp_path), mem_every=10**9,
                   stateless=stateless, broken_share=broken_share)
    assert rep.hammer_calls > 0
    assert rep.hammer_errors == 0
    assert rep.other_failures == 0
    assert rep.problems == []
    assert rep.state_lost == 0
