"""No cell runs twice: N processes that reach one cell at the same instant run it exactly once.

The claim (`benchmark.run.claims`) is a version of a registered model in the tracking store's own registry:
the store numbers versions in its own transaction, and the lowest live version keeps the cell. Tested on the
three ways workers reach the store: several in-process (serial) sweeps writing the SQLite file directly, the
`local` executor's spawned workers and submitit's local jobs through the sweep's MLflow server; 30 cells in
a row, 3 contenders each.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from claim_support import CONTENDERS, ROUNDS, cell, contend, release_contenders

from benchmark.run.tracking import Tracker

pytestmark = pytest.mark.slow


def _outcomes(folder: Path) -> list[list[str]]:
    found = [json.loads(p.read_text()) for p in sorted(folder.glob("outcomes-*.json"))]
    assert len(found) == CONTENDERS, f"{len(found)} of {CONTENDERS} contenders reported"
    return found


def _assert_each_cell_ran_once(db: Path, folder: Path) -> None:
    outcomes = _outcomes(folder)
    for r in range(ROUNDS):
        this_round = Counter(o[r] for o in outcomes)
        assert this_round["ran"] == 1, f"cell {r}: {dict(this_round)}"
        assert set(this_round) <= {"ran", "running", "finished"}
    with sqlite3.connect(db) as con:
        runs = con.execute("select status, count(*) from runs group by status").fetchall()
        held = con.execute("select count(*) from model_versions where current_stage != 'Deleted_Internal'").fetchone()
    assert runs == [("FINISHED", ROUNDS)]  # one run per cell, all closed
    assert held == (0,)  # every claim was released
    store = Tracker(f"sqlite:///{db}")
    keys = [run.tags["run_key"] for run in store.finished_runs("b2n")]
    assert sorted(keys) == sorted(cell(r).run_key for r in range(ROUNDS))


def _spawned(uri: str, folder: Path) -> None:
    context = mp.get_context("spawn")  # how the local executor starts its workers
    processes = [context.Process(target=contend, args=(uri, str(folder), str(i))) for i in range(CONTENDERS)]
    for p in processes:
        p.start()
    release_contenders(folder, CONTENDERS)
    for p in processes:
        p.join(300)
        assert p.exitcode == 0


def test_serial_sweeps_on_one_sqlite_store_run_each_cell_once(tmp_path):
    """Several in-process sweeps write the SQLite store directly."""
    db = tmp_path / "mlflow.db"
    _spawned(f"sqlite:///{db}", tmp_path)
    _assert_each_cell_ran_once(db, tmp_path)


def test_local_workers_through_the_sweep_server_run_each_cell_once(tmp_path):
    from benchmark.run.server import tracking_server

    db = tmp_path / "mlflow.db"
    with tracking_server(f"sqlite:///{db}") as uri:
        _spawned(uri, tmp_path)
    _assert_each_cell_ran_once(db, tmp_path)


def test_submitit_local_jobs_run_each_cell_once(tmp_path):
    submitit = pytest.importorskip("submitit")
    import claim_support
    import cloudpickle

    from benchmark.run.server import tracking_server

    cloudpickle.register_pickle_by_value(claim_support)  # the job processes need not import tests/
    db = tmp_path / "mlflow.db"
    with tracking_server(f"sqlite:///{db}") as uri:
        executor = submitit.AutoExecutor(folder=tmp_path / "jobs", cluster="local")
        executor.update_parameters(timeout_min=10)
        jobs = [executor.submit(contend, uri, str(tmp_path), str(i)) for i in range(CONTENDERS)]
        release_contenders(tmp_path, CONTENDERS)
        for job in jobs:
            assert len(job.result()) == ROUNDS
    _assert_each_cell_ran_once(db, tmp_path)


def test_a_dead_workers_claim_is_taken_over_and_a_released_cell_is_free(tmp_path):
    """A claim whose lock is no longer held is removed by the next claimant; a live one is respected."""
    from benchmark.run.claims import CellClaim

    db = tmp_path / "mlflow.db"
    first = Tracker(f"sqlite:///{db}", lock_dir=tmp_path / "locks")
    second = Tracker(f"sqlite:///{db}", lock_dir=tmp_path / "locks")
    spec = cell(0)
    held = first.claim_cell("b2n", spec.run_key)
    assert isinstance(held, CellClaim)
    assert second.claim_cell("b2n", spec.run_key) == "running"  # same process, but first's claim is live
    import os

    os.close(first._lock.fd)  # first "dies": its lock is released, its claim stays behind
    taken = second.claim_cell("b2n", spec.run_key)
    assert isinstance(taken, CellClaim) and int(taken.version) > int(held.version)
    run_id = second.start_cell(spec, None, label="zeroshot", claim=taken)
    second.fail(run_id, "stopped by the test")  # a failed run releases its claim: the cell is free again
    third = Tracker(f"sqlite:///{db}", lock_dir=tmp_path / "locks")
    again = third.claim_cell("b2n", spec.run_key)
    assert isinstance(again, CellClaim)
    third.finish(third.start_cell(spec, None, label="zeroshot", claim=again))
    assert Tracker(f"sqlite:///{db}", lock_dir=tmp_path / "locks").claim_cell("b2n", spec.run_key) == "finished"
