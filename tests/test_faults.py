"""Disk and interrupt faults: a full disk fails one cell and leaves the caches readable; Ctrl-C stops a sweep.

Disk full is simulated two ways: SQLite's own limit on a database's size (`PRAGMA max_page_count`), which
makes SQLite answer exactly as on a full disk (SQLITE_FULL, "database or disk is full") in the middle of the
feature cache's write; and an artifact write that fails with ENOSPC. In both the cell's run is FAILED with
the reason, the feature cache passes SQLite's integrity check, and the next invocation completes the cell.
"""

from __future__ import annotations

import errno
import signal
import sqlite3
import time

import pytest
from sweep_support import cells, fresh_cache, start_sweep, store_runs, wait_for

from benchmark.cli.main import main

pytestmark = pytest.mark.slow

ONE_CELL = ["run", "--methods", "coop", "--datasets", "mlrsnet", "--seeds", "1", "--set", "epochs=1", "--quiet"]


def _fill_the_disk(monkeypatch, what: str) -> None:
    if what == "feature cache":
        from benchmark.data.sqlite_cache import SqliteCache

        connect = SqliteCache._connect

        def small_disk(self):
            con = connect(self)
            if self.path.name == "features.sqlite":
                con.execute("PRAGMA max_page_count = 40")  # ~160 KB: full after the first few hundred features
            return con

        monkeypatch.setattr(SqliteCache, "_connect", small_disk)
    else:
        from benchmark.results import artifacts

        def disk_full_midway(folder, *args, **kwargs):
            (folder / "results.json").write_text("{")  # a partial file, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(artifacts, "write_run_artifacts", disk_full_midway)


@pytest.mark.parametrize(
    ("what", "reason"),
    [
        ("feature cache", "OperationalError: database or disk is full"),
        ("artifacts", "OSError: [Errno 28] No space left on device"),
    ],
)
def test_a_full_disk_fails_the_cell_keeps_the_cache_readable_and_the_rerun_completes(
    what, reason, world_cache, tmp_path, monkeypatch, capsys
):
    from benchmark.run import worker

    cache = fresh_cache(tmp_path / "cache", world_cache)  # cold feature cache: the cell writes to it
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BENCHMARK_CACHE", str(cache))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(worker, "_SERVICES", {})  # this invocation's worker state only
    with monkeypatch.context() as full:
        _fill_the_disk(full, what)
        assert main(ONE_CELL) == 1
    out = capsys.readouterr().out
    assert "1 cell(s) run, 0 skipped (already finished), 1 failed" in out
    db = tmp_path / "mlflow.db"
    (failed,) = cells(db, "FAILED")
    assert failed["failure_reason"].startswith(reason), failed["failure_reason"]

    features = cache / "features" / "features.sqlite"
    with sqlite3.connect(features) as con:  # what a full disk left behind is a consistent database
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        kept = con.execute("SELECT COUNT(*) FROM features").fetchone()[0]

    monkeypatch.setattr(worker, "_SERVICES", {})  # the rerun is a new invocation
    assert main(ONE_CELL) == 0
    (finished,) = cells(db, "FINISHED")
    assert finished["run_key"] == failed["run_key"]
    with sqlite3.connect(features) as con:
        now = con.execute("SELECT COUNT(*) FROM features").fetchone()[0]
    # The write the full disk refused is made by the rerun; a cache the artifacts failure left complete is reused.
    assert now > kept if what == "feature cache" else now == kept > 0
    assert not [r for r in store_runs(db) if r["status"] == "RUNNING"]


@pytest.mark.parametrize("executor", ["local"])
def test_ctrl_c_marks_the_running_cells_killed_at_once_and_exits_130(executor, world_cache, tmp_path):
    """SIGINT to the sweep's process group (what Ctrl-C in a terminal sends): exit 130, nothing left RUNNING.

    The `local` pool: workers and driver all get the signal, as from a terminal (the in-process serial path is
    the worker's own KeyboardInterrupt handling, which this covers too)."""
    extra = ("--executor", executor, "--workers", "2") if executor != "serial" else ("--executor", "serial")
    cwd = tmp_path / "run"
    process = start_sweep(cwd, fresh_cache(tmp_path / "cache", world_cache), *extra)
    db = cwd / "mlflow.db"
    assert wait_for(lambda: bool(cells(db, "RUNNING")), process), process.communicate()[1][-3000:]
    time.sleep(0.5)
    running = {r["run_id"] for r in cells(db, "RUNNING")}
    import os

    os.killpg(process.pid, signal.SIGINT)
    try:
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, err[-3000:]
    assert "interrupted" in err
    runs = {r["run_id"]: r for r in store_runs(db)}
    assert not [r for r in runs.values() if r["status"] == "RUNNING"]  # closed by this invocation, not the next
    for run_id in running:
        assert runs[run_id]["status"] == "KILLED"
        assert "interrupted" in runs[run_id]["failure_reason"]
    (sweep,) = [r for r in runs.values() if r.get("kind") == "sweep"]
    assert sweep["status"] == "KILLED"
    with sqlite3.connect(db) as con:  # every claim was given back
        assert (
            con.execute("SELECT COUNT(*) FROM model_versions WHERE current_stage != 'Deleted_Internal'").fetchone()[0]
            == 0
        )
