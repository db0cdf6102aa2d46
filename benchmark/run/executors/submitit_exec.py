"""The `submitit` executor: one job per cell, as a SLURM job array, or local processes without SLURM.

On a SLURM cluster the cells go out as one job array with at most `--workers` jobs running at once
(`slurm_array_parallelism`), one GPU per job unless `--device cpu`; the workers must reach the
tracking server, so a SLURM sweep needs `--tracking-uri http://HOST:PORT` of a server the compute
nodes can reach. Without SLURM, submitit's local executor runs each cell in its own process, at
most `--workers` at a time. Job files and logs go to `.submitit/<sweep run id>/` in the working
directory; they are deleted when every job ended normally and kept for inspection otherwise.

A job that dies (killed, cancelled, out of time, node lost) is reported as a failed cell and its
MLflow run is marked FAILED with submitit's reason; the other jobs go on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmark.errors import UsageError
from benchmark.run.executors._common import Task, bounded_run, close_interrupted, fail_cell, run_cell
from benchmark.run.worker import CellStatus, WorkerEnv, worker_device

log = logging.getLogger(__name__)

IN_PROCESS = False
TIMEOUT_MIN = 24 * 60  # per cell; submitit's local default (2 min) would kill real cells
POLL_S = 0.5


def _cluster() -> str:
    import submitit

    return submitit.AutoExecutor.which()


def check(*, workers: int, address: str | None, remote_tracking: bool) -> None:
    """Fail early when submitit is missing, or SLURM workers could not reach the tracking store.

    `remote_tracking`: whether workers on other machines could reach the tracking store.
    """
    try:
        import submitit  # noqa: F401
    except ImportError:
        message = "executor 'submitit' needs the submitit package: pip install 'rs-prompt-bench[cluster]'"
        raise UsageError(message) from None
    if _cluster() == "slurm" and not remote_tracking:
        raise UsageError(
            "executor 'submitit' on SLURM: compute nodes cannot reach a server on 127.0.0.1; pass --server-host "
            "0.0.0.0 (or an address of this machine) or --tracking-uri http://HOST:PORT of an MLflow server"
        )


def _job(spec_json: str, label: str, parent_id: str | None, env: WorkerEnv, driver_pid: int = 0) -> CellStatus:
    """The function each job runs (importable, so submitit pickles it by reference)."""
    if driver_pid:
        threading.Thread(target=_exit_without_driver, args=(driver_pid,), daemon=True).start()
    return run_cell(spec_json, label, parent_id, env)


def _exit_without_driver(pid: int) -> None:
    """Local jobs end with the driver, so a killed sweep leaves no job running its cell on."""
    while True:
        time.sleep(1.0)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:
            continue


def _executor(folder: Path, cluster: str, env: WorkerEnv, workers: int) -> Any:
    import submitit

    executor = submitit.AutoExecutor(folder=folder / "%j", cluster=cluster)
    params: dict[str, Any] = {"name": "benchmark-cell", "timeout_min": TIMEOUT_MIN}
    if cluster == "slurm":
        params.update(slurm_array_parallelism=workers, gpus_per_node=0 if env.device == "cpu" else 1)
    elif env.device != "cpu":
        import torch

        # submitit's local jobs see only `gpus_per_node` GPUs; each job then picks its own (worker_device).
        params["gpus_per_node"] = torch.cuda.device_count()
    executor.update_parameters(**params)
    return executor


def run_cells(
    tasks: Sequence[Task],
    parent_id: str | None,
    env: WorkerEnv,
    *,
    workers: int = 1,
    address: str | None = None,
) -> Iterator[CellStatus]:
    """Run each task as a submitit job; yield statuses as jobs end."""
    if not tasks:
        return
    cluster = _cluster()
    folder = Path.cwd() / ".submitit" / (parent_id or uuid.uuid4().hex)
    executor = _executor(folder, cluster, env, workers)
    running: dict[Any, Task] = {}  # job -> task, shared with the generators below
    keep = False
    try:
        run = _run_array if cluster == "slurm" else _run_window
        for status in run(executor, tasks, parent_id, env, workers, running):
            keep |= not status.ok
            yield status
    finally:
        for job in running:
            _cancel(job)
        close_interrupted(running.values(), parent_id, env)
        if running or keep:
            log.info("submitit job files and logs kept in %s", folder)
        else:
            shutil.rmtree(folder, ignore_errors=True)
            with contextlib.suppress(OSError):
                folder.parent.rmdir()  # `.submitit/` itself, when no other sweep left files there


def _run_array(
    executor: Any,
    tasks: Sequence[Task],
    parent_id: str | None,
    env: WorkerEnv,
    workers: int,
    running: dict[Any, Task],
) -> Iterator[CellStatus]:
    """SLURM: one job array; SLURM keeps at most `workers` of its jobs running."""
    n = len(tasks)
    jobs = executor.map_array(_job, [t[0] for t in tasks], [t[1] for t in tasks], [parent_id] * n, [env] * n)
    running.update(zip(jobs, tasks))
    while running:
        done = [job for job in list(running) if job.done()]
        if not done:
            time.sleep(POLL_S * 4)
        for job in done:
            yield _status(job, running.pop(job), parent_id, env, "slurm")


def _run_window(
    executor: Any,
    tasks: Sequence[Task],
    parent_id: str | None,
    env: WorkerEnv,
    workers: int,
    running: dict[Any, Task],
) -> Iterator[CellStatus]:
    """Local: keep at most `workers` jobs running, each in a free device slot."""

    def start(task: Task, slot: int) -> Any:
        job_env = replace(env, device=worker_device(env.device, slot))
        return executor.submit(_job, task[0], task[1], parent_id, job_env, os.getpid())

    def wait_ended(jobs: list[Any]) -> list[Any]:
        while True:
            done = [job for job in jobs if job.done()]
            if done:
                return done
            time.sleep(POLL_S)

    yield from bounded_run(
        tasks,
        workers,
        running,
        start=start,
        wait_ended=wait_ended,
        status=lambda job, task: _status(job, task, parent_id, env, "local"),
    )


def _status(job: Any, task: Task, parent_id: str | None, env: WorkerEnv, cluster: str) -> CellStatus:
    """The cell's status from its job: the worker's own report, or a failure naming the job's fate."""
    try:
        return job.result()
    except Exception as exc:  # noqa: BLE001 - any job failure is this cell's failure only
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        reason = f"{cluster} job {job.job_id} ended without a result (state {job.state}): {first[:300]}"
        return fail_cell(task, parent_id, env, reason)


def _cancel(job: Any) -> None:
    try:
        job.cancel(check=False)
    except Exception as exc:  # noqa: BLE001 - best effort; the stale check catches survivors
        log.warning("could not cancel job %s: %s", job.job_id, exc)
