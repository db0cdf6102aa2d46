"""Processes that contend for the same cells at the same instant (tests/test_claims.py).

Each contender opens cells exactly as a worker does (`benchmark.run.worker.open_claimed_cell`) on the
tracking URI its executor path would give it: the SQLite store itself for in-process (serial) sweeps, the
sweep's MLflow server for local and submitit workers. All contenders start round `r` at the same wall-clock
instant `t0 + r * interval`, on cell `r`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from benchmark.plan.specs import RunSpec

ROUNDS = 30
CONTENDERS = 3
INTERVAL_S = 0.1


def cell(round_index: int) -> RunSpec:
    """The cell of one round (its own run_key)."""
    return RunSpec(
        method="zeroshot", preset="world", overrides=(), method_config={}, train_config={}, protocol="b2n",
        dataset="patternnet", targets=(), seed=1000 + round_index, shots=16, profile="world", backbone="world",
        backbone_identity="test", split_digests=(), captions="", harness_version="test", numerics="test",
    )  # fmt: skip


def contend(uri: str, folder: str, name: str, rounds: int = ROUNDS, hold_s: float = 0.05) -> list[str]:
    """Wait for the start signal, then try to run cell r at t0 + r * INTERVAL_S; return each round's outcome.

    An outcome is "ran" (this contender held the claim and finished the run), "finished" or "running".
    """
    from benchmark.run.tracking import Tracker
    from benchmark.run.worker import open_claimed_cell

    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    tracker = Tracker(uri, lock_dir=Path(folder) / "locks")
    tracker.experiment_id("b2n")
    tracker.client.search_experiments()  # connections warm before the race
    Path(folder, f"ready-{name}").touch()
    go = Path(folder, "go")
    while not go.exists():
        time.sleep(0.01)
    t0 = float(go.read_text())
    outcomes = []
    for r in range(rounds):
        time.sleep(max(0.0, t0 + r * INTERVAL_S - time.time()))
        run_id, conflict = open_claimed_cell(tracker, cell(r), None, "zeroshot")
        if run_id is None:
            outcomes.append(conflict)
            continue
        time.sleep(hold_s)  # the cell "trains"
        tracker.finish(run_id)
        outcomes.append("ran")
    Path(folder, f"outcomes-{name}.json").write_text(json.dumps(outcomes))
    return outcomes


def release_contenders(folder: Path, count: int, timeout_s: float = 180.0) -> None:
    """Wait until `count` contenders are ready, then give them a common start instant."""
    deadline = time.time() + timeout_s
    while len(list(folder.glob("ready-*"))) < count:
        if time.time() > deadline:
            raise TimeoutError(f"only {len(list(folder.glob('ready-*')))} of {count} contenders started")
        time.sleep(0.05)
    (folder / "go.tmp").write_text(str(time.time() + 0.5))
    os.replace(folder / "go.tmp", folder / "go")
