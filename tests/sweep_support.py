"""Helpers shared by the end-to-end sweep tests (executors, kill/resume, worker crashes).

Every sweep runs as `python -m benchmark run ...` in a subprocess, as a user would start it, so
executors can spawn processes and clusters, and a test can SIGKILL the whole sweep.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

# The tiny sweep every executor test runs: 2 methods x 2 datasets x 1 seed = 4 cells (zero-shot runs once per
# dataset whatever the seeds, so a second dataset, not a second seed, makes its fourth cell).
SWEEP = ["--methods", "coop,zeroshot", "--datasets", "mlrsnet,rsicd", "--seeds", "1", "--set", "epochs=1", "--quiet"]
SWEEP_TIMEOUT_S = 600
_REFERENCE: dict[str, tuple[str, float]] = {}


def sweep_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(BENCHMARK_CACHE=str(cache), HF_HUB_OFFLINE="1", MLFLOW_LOGGING_LEVEL="WARNING")
    return env


def start_sweep(cwd: Path, cache: Path, *extra: str, quiet: bool = True) -> subprocess.Popen:
    """Start a sweep in its own process group (so a test can kill all of it); output is a pipe, not a terminal."""
    cwd.mkdir(parents=True, exist_ok=True)
    options = SWEEP if quiet else [a for a in SWEEP if a != "--quiet"]
    return subprocess.Popen(
        [sys.executable, "-m", "benchmark", "run", *options, *extra],
        cwd=cwd,
        env=sweep_env(cache),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # A shell without job control starts background commands with SIGINT ignored, which Python then keeps:
        # restore the default so a test's Ctrl-C (SIGINT) reaches the sweep as it would from a terminal.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )


def run_sweep(cwd: Path, cache: Path, *extra: str, quiet: bool = True) -> subprocess.CompletedProcess:
    process = start_sweep(cwd, cache, *extra, quiet=quiet)
    try:
        out, err = process.communicate(timeout=SWEEP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


# Wall times and memory differ between two runs of the same cells; every other column must not.
MACHINE_COLUMNS = ("train_s", "eval_s", "peak_mem_mb")


def leaderboard(cwd: Path) -> str:
    """The b2n leaderboard CSV without its machine-dependent cost columns."""
    import pandas as pd

    frame = pd.read_csv(cwd / "results" / "leaderboard_b2n.csv")
    return frame.drop(columns=[c for c in MACHINE_COLUMNS if c in frame.columns]).to_csv(index=False)


def reference_run(tmp_path_factory, cache: Path) -> tuple[str, float]:
    """Leaderboard and wall time of an uninterrupted serial run of SWEEP (once per session)."""
    if "b2n" not in _REFERENCE:
        cwd = tmp_path_factory.mktemp("reference")
        start = time.monotonic()
        done = run_sweep(cwd, cache)
        assert done.returncode == 0, done.stderr[-3000:]
        _REFERENCE["b2n"] = (leaderboard(cwd), time.monotonic() - start)
    return _REFERENCE["b2n"]


def reference_leaderboard(tmp_path_factory, cache: Path) -> str:
    """The leaderboard of an uninterrupted serial run of SWEEP."""
    return reference_run(tmp_path_factory, cache)[0]


def store_runs(db: Path) -> list[dict[str, str]]:
    """Every run of a SQLite MLflow store with its status and tags (read-only, no MLflow import)."""
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = con.execute("SELECT run_uuid, status FROM runs").fetchall()
        tags = con.execute("SELECT run_uuid, key, value FROM tags").fetchall()
    except sqlite3.Error:
        return []  # the store is being created
    finally:
        con.close()
    runs = {run_id: {"run_id": run_id, "status": status} for run_id, status in rows}
    for run_id, key, value in tags:
        if run_id in runs:
            runs[run_id][key] = value
    return list(runs.values())


def cells(db: Path, status: str | None = None) -> list[dict[str, str]]:
    return [r for r in store_runs(db) if r.get("kind") == "cell" and (status is None or r["status"] == status)]


def wait_for(predicate, process: subprocess.Popen, timeout: float = SWEEP_TIMEOUT_S, poll: float = 0.2) -> bool:
    """Poll until `predicate()` holds (True) or the process ended (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if process.poll() is not None:
            return False
        time.sleep(poll)
    raise TimeoutError("condition not reached")


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the sweep and everything in its process group."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.communicate()


def assert_one_finished_run_per_key(db: Path, n_keys: int) -> None:
    finished = Counter(r["run_key"] for r in cells(db, "FINISHED"))
    assert len(finished) == n_keys and set(finished.values()) == {1}, finished
    assert not cells(db, "RUNNING")


def fresh_cache(tmp: Path, world_cache: Path) -> Path:
    """A cache that shares the generated world but has cold feature and caption caches.

    Cells then take seconds (they compute features), which leaves room to kill them mid-run and
    exercises partially filled caches.
    """
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "world").symlink_to(world_cache / "world", target_is_directory=True)
    return tmp
