"""Crash safety: a sweep SIGKILLed at random points and rerun gives the uninterrupted leaderboard.

The kill points come from a seeded RNG (set BENCHMARK_KILL_SEED to explore others): as soon as a
cell is RUNNING, at a random moment of a run, and right after the first cell FINISHED. The caches
start cold so cells take seconds, which puts kills in the middle of feature computation (partly
filled caches) and training. After the final uninterrupted rerun: the leaderboard equals the
serial reference, every run_key has exactly one FINISHED run, no run is left RUNNING, and the runs
the kills interrupted are KILLED with a reason. Also: a NaN loss fails one cell and not the sweep.
"""

import os
import random
import time

import pytest
from sweep_support import (
    assert_one_finished_run_per_key,
    cells,
    fresh_cache,
    kill_group,
    leaderboard,
    reference_run,
    run_sweep,
    start_sweep,
    store_runs,
    wait_for,
)

from benchmark.cli.main import main

KILL_SEED = int(os.environ.get("BENCHMARK_KILL_SEED", "7"))


def _kill_rounds(cwd, cache, extra, rng, longest: float) -> tuple[list[str], list[dict]]:
    """Three SIGKILLs of the whole sweep at different kinds of moments.

    Returns what each round hit and the runs each kill left RUNNING (the next invocation must mark
    them KILLED).
    """
    db = cwd / "mlflow.db"
    hits, interrupted = [], []
    for kind in ("cell running", "random moment", "after a finished cell"):
        finished_before = len(cells(db, "FINISHED"))
        started = time.monotonic()
        process = start_sweep(cwd, cache, *extra)
        if kind == "cell running":
            reached = wait_for(lambda: bool(cells(db, "RUNNING")), process)
            time.sleep(rng.uniform(0, 1.0))
        elif kind == "random moment":
            deadline = started + rng.uniform(0.5, longest)
            wait_for(lambda t=deadline: time.monotonic() > t, process)
            reached = process.poll() is None
        else:
            reached = wait_for(lambda n=finished_before: len(cells(db, "FINISHED")) > n, process)
        kill_group(process)
        interrupted += [r for r in store_runs(db) if r["status"] == "RUNNING"]
        hits.append(f"{kind}: {'killed' if reached else 'ended first'} after {time.monotonic() - started:.1f} s")
    return hits, interrupted


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["serial", "local"])
def test_sweep_killed_at_random_points_resumes_to_the_same_leaderboard(
    executor, world_cache, tmp_path, tmp_path_factory
):
    expected, seconds = reference_run(tmp_path_factory, world_cache)
    extra = ("--executor", executor, "--workers", "2") if executor != "serial" else ()
    cache = fresh_cache(tmp_path / "cache", world_cache)
    cwd = tmp_path / "run"
    hits, interrupted = _kill_rounds(cwd, cache, extra, random.Random(KILL_SEED), longest=seconds)
    print(f"{executor} kill rounds (seed {KILL_SEED}):", "; ".join(hits))

    done = run_sweep(cwd, cache, *extra)
    assert done.returncode == 0, (hits, done.stderr[-3000:])
    assert leaderboard(cwd) == expected, hits
    db = cwd / "mlflow.db"
    assert_one_finished_run_per_key(db, 4)
    status = {r["run_id"]: r for r in store_runs(db)}
    assert any(r.get("kind") == "cell" for r in interrupted), hits  # the first kill lands in a RUNNING cell
    for run in interrupted:
        assert status[run["run_id"]]["status"] == "KILLED", hits
        assert "worker died" in status[run["run_id"]]["failure_reason"]
    assert not list((cwd / "results").glob(".*")), "no temporary leaderboard file is left behind"


@pytest.mark.slow
def test_nan_loss_fails_one_cell_and_the_others_finish(world_env, capsys):
    argv = ["run", "--methods", "coop,zeroshot", "--datasets", "mlrsnet", "--seeds", "1", "--quiet"]
    argv += ["--set", "epochs=1", "--set", "coop.warmup_lr=nan"]  # the first SGD step makes CoOp's context NaN
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "2 cell(s) run, 0 skipped (already finished), 1 failed" in out
    assert "non-finite loss (nan)" in out
    db = world_env / "mlflow.db"
    (failed,) = cells(db, "FAILED")
    assert failed["method"] == "coop" and failed["failure_reason"].startswith("non-finite loss (nan) at epoch 1")
    (finished,) = cells(db, "FINISHED")
    assert finished["method"] == "zeroshot"
    (sweep,) = [r for r in store_runs(db) if r.get("kind") == "sweep"]
    assert sweep["status"] == "FAILED"
    board = leaderboard(world_env)
    assert "zeroshot" in board and "coop" not in board  # a failed run is never counted
