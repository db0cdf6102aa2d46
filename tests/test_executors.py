"""Executors: local, submitit (its local executor) and Ray give the serial leaderboard for the same cells.

Also the executor-level failure path: a worker process killed mid-cell fails only that cell (its run
is marked FAILED with the cause), the sweep finishes the others and exits 1, and the next invocation
reruns just that cell.
"""

import os
import signal
import sys
from pathlib import Path

import pytest
from sweep_support import (
    assert_one_finished_run_per_key,
    cells,
    fresh_cache,
    leaderboard,
    reference_leaderboard,
    run_sweep,
    start_sweep,
    store_runs,
    wait_for,
)

from benchmark.run.executors import EXECUTORS
from benchmark.run.executors._common import exit_reason
from benchmark.run.server import healthy, tracking_server
from benchmark.run.worker import worker_device


def test_every_executor_is_importable_and_has_run_cells():
    import importlib

    for name, module in EXECUTORS.items():
        assert callable(importlib.import_module(module).run_cells), name


def test_exit_reason_names_signals():
    assert exit_reason(-9) == "killed by SIGKILL"
    assert exit_reason(1) == "exit code 1"


def test_worker_device_keeps_explicit_devices():
    assert worker_device("cpu", 3) == "cpu"
    assert worker_device("cuda:1", 0) == "cuda:1"
    import torch

    if not torch.cuda.is_available():
        assert worker_device("auto", 1) == "cpu"


def test_tracking_server_binds_localhost_and_stops(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    from benchmark.run.tracking import Tracker

    Tracker(uri).experiment_id("b2n")  # the driver creates the experiment before serving
    with tracking_server(uri) as http:
        assert http.startswith("http://127.0.0.1:")
        assert healthy(http)
        assert Tracker(http).experiment_id("b2n", create=False) is not None
    assert not healthy(http, timeout=0.5)


def test_tracking_server_on_every_interface_is_advertised_by_host_name(tmp_path):
    import socket

    with tracking_server(f"sqlite:///{tmp_path / 'mlflow.db'}", host="0.0.0.0") as http:
        host, port = http.removeprefix("http://").rsplit(":", 1)
        assert host == socket.gethostname()
        assert healthy(f"http://127.0.0.1:{port}")  # a wildcard bind answers on loopback too
        api = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=1"
        assert _status_with_host(api, f"{host}:{port}") == 200  # what workers send
        assert _status_with_host(api, f"evil.example:{port}") == 403  # MLflow's DNS-rebinding guard stays on


def _status_with_host(url: str, host_header: str, authorization: str | None = None) -> int:
    import urllib.error
    import urllib.request

    headers = {"Host": host_header, **({"Authorization": authorization} if authorization else {})}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_remote_workers_need_a_reachable_tracking_server(tmp_path, monkeypatch):
    """SLURM nodes cannot log to 127.0.0.1: refused up front unless the server listens wider."""
    from benchmark.errors import UsageError
    from benchmark.run.executors import submitit_exec
    from benchmark.run.runner import RunOptions, validate_options

    monkeypatch.setattr(submitit_exec, "_cluster", lambda: "slurm")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    local = RunOptions(tracking_uri=store, results_dir=tmp_path, executor="submitit", workers=2)
    with pytest.raises(UsageError, match="cannot reach a server on 127.0.0.1; pass --server-host"):
        validate_options(local)
    validate_options(RunOptions(**{**local.__dict__, "server_host": "0.0.0.0"}))


def _spec_json(seed: int) -> str:
    from benchmark.plan.specs import RunSpec

    spec = RunSpec(
        method="zeroshot", preset="world", overrides=(), method_config={}, train_config={}, protocol="b2n",
        dataset="mlrsnet", targets=(), seed=seed, shots=1, profile="world", backbone="world",
        backbone_identity="x", split_digests=(), captions="", harness_version="0", numerics="zeroshot=1;harness=2",
    )  # fmt: skip
    return spec.to_json()


def test_local_pool_reports_each_cell_even_when_worker_setup_fails():
    from benchmark.run.executors import local
    from benchmark.run.worker import WorkerEnv

    env = WorkerEnv(tracking_uri="sqlite:///unused.db", profile="no-such-profile", data_root=".")
    tasks = [(_spec_json(seed), f"cell{seed}") for seed in range(3)]
    statuses = list(local.run_cells(tasks, None, env, workers=2))
    assert sorted(s.label for s in statuses) == ["cell0", "cell1", "cell2"]
    assert all(not s.ok and "unknown profile 'no-such-profile'" in s.reason for s in statuses)


@pytest.mark.slow
# `local` gives the serial leaderboard in test_a_killed_local_worker_fails_only_its_cell and in the crash tests
@pytest.mark.parametrize("executor", ["submitit", "ray"])
def test_executor_gives_the_serial_leaderboard(executor, world_cache, tmp_path, tmp_path_factory):
    if executor == "ray":
        pytest.importorskip("ray")
    if executor == "submitit":
        pytest.importorskip("submitit")
    expected = reference_leaderboard(tmp_path_factory, world_cache)
    done = run_sweep(tmp_path, world_cache, "--executor", executor, "--workers", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "4 cell(s) run, 0 skipped" in done.stdout
    assert leaderboard(tmp_path) == expected
    assert_one_finished_run_per_key(tmp_path / "mlflow.db", 4)
    (sweep,) = [r for r in store_runs(tmp_path / "mlflow.db") if r.get("kind") == "sweep"]
    assert sweep["status"] == "FINISHED" and sweep["executor"] == executor and sweep["workers"] == "2"
    assert not (tmp_path / ".submitit").exists()  # job files of a clean submitit sweep are removed


def _worker_pids(driver: int) -> list[int]:
    """Pool workers of the `local` executor: spawned children of the driver."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == driver and b"spawn_main" in cmdline:
            pids.append(int(stat.parent.name))
    return sorted(pids)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds workers through /proc")
def test_a_killed_local_worker_fails_only_its_cell(world_cache, tmp_path, tmp_path_factory):
    expected = reference_leaderboard(tmp_path_factory, world_cache)
    cache = fresh_cache(tmp_path / "cache", world_cache)  # cold features: cells run for seconds
    db = tmp_path / "run" / "mlflow.db"
    process = start_sweep(tmp_path / "run", cache, "--executor", "local", "--workers", "2")
    assert wait_for(lambda: len(cells(db, "RUNNING")) >= 2, process), process.communicate()
    victim = _worker_pids(process.pid)[0]
    os.kill(victim, signal.SIGKILL)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 1, err[-3000:]
    assert "3 failed" not in out and "1 failed" in out
    assert "worker process died (killed by SIGKILL) while running the cell" in out
    (failed,) = cells(db, "FAILED")
    assert "killed by SIGKILL" in failed["failure_reason"]
    assert len(cells(db, "FINISHED")) == 3
    (sweep,) = [r for r in store_runs(db) if r.get("kind") == "sweep"]
    assert sweep["status"] == "FAILED" and sweep["failure_reason"] == "1 cell(s) failed"
    assert sweep["executor"] == "local" and sweep["workers"] == "2"

    again = run_sweep(tmp_path / "run", cache, "--executor", "local", "--workers", "2")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "1 cell(s) run, 3 skipped" in again.stdout
    assert leaderboard(tmp_path / "run") == expected
    assert_one_finished_run_per_key(db, 4)


def test_a_server_beyond_loopback_refuses_requests_without_the_sweeps_credentials(tmp_path):
    """`--server-host 0.0.0.0`: MLflow's basic-auth app with an admin made for the sweep; workers get it
    through their environment, anyone else gets 401."""
    import base64
    import os
    import socket
    import stat
    import subprocess
    import sys

    pytest.importorskip("flask_wtf")
    from benchmark.run.server_auth import PASSWORD_ENV, USERNAME_ENV, client_credentials, sweep_credentials

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with sweep_credentials(tmp_path / "cache") as credentials:
        assert stat.S_IMODE(credentials.config.stat().st_mode) == 0o600
        assert stat.S_IMODE(credentials.config.parent.stat().st_mode) == 0o700
        assert credentials.password not in repr(credentials)
        with tracking_server(store, host="0.0.0.0", credentials=credentials) as http:
            port = http.rsplit(":", 1)[1]
            host = f"{socket.gethostname()}:{port}"
            api = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=1"
            assert healthy(f"http://127.0.0.1:{port}")  # the health probe stays open
            assert _status_with_host(api, host) == 401  # no credentials
            wrong = base64.b64encode(f"{credentials.username}:guess".encode()).decode()
            assert _status_with_host(api, host, authorization=f"Basic {wrong}") == 401
            with client_credentials(credentials):
                # A worker process started now inherits the credentials and can log.
                worker = (
                    "import sys; from benchmark.run.tracking import Tracker; "
                    "print(Tracker(sys.argv[1]).experiment_id('b2n'))"
                )
                done = subprocess.run([sys.executable, "-c", worker, http], capture_output=True, text=True, timeout=120)
                assert done.returncode == 0, done.stderr[-2000:]
                assert credentials.password not in done.stdout + done.stderr
            assert USERNAME_ENV not in os.environ and PASSWORD_ENV not in os.environ  # restored
            process_lines = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True).stdout
            assert "basic-auth" in process_lines and credentials.password not in process_lines
    assert not credentials.config.parent.exists()  # the sweep's credentials are gone with it


def test_a_server_beyond_loopback_without_auth_needs_insecure_server(monkeypatch):
    import importlib.util

    from benchmark.errors import UsageError
    from benchmark.run.server import check_server_host

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "flask_wtf" else real(name, *a))
    with pytest.raises(UsageError, match=r"needs authentication.*--insecure-server"):
        check_server_host("0.0.0.0")
    check_server_host("0.0.0.0", insecure=True)  # accepted, with a warning
    check_server_host("127.0.0.1")  # loopback needs neither
