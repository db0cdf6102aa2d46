"""The `ray` executor: one Ray task per cell, on the cluster at `--ray-address` or a local Ray.

Without an address, a private local Ray is started for the sweep (no dashboard, `--workers` CPUs)
and shut down at the end. Ray decides where its own services listen: Ray 2.x maps a loopback node
address to the machine's address on purpose, so they are protected by Ray's cluster token (on by
default), not by binding 127.0.0.1. With an address, the sweep joins that
cluster, whose nodes must have this package installed and reach the tracking server. At most
`--workers` cells are in flight; each task asks for one CPU, and one GPU when the cluster has GPUs
and `--device` is not `cpu` (Ray then sets CUDA_VISIBLE_DEVICES per task). Ray reuses its worker
processes, so a backbone is loaded once per worker. Tasks are never retried by Ray: a task whose
worker dies is a failed cell (its MLflow run is marked FAILED), and the other cells go on.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator, Sequence
from typing import Any

from benchmark.errors import UsageError
from benchmark.run.executors._common import Task, bounded_run, close_interrupted, fail_cell, run_cell
from benchmark.run.server import LOOPBACK_HOSTS
from benchmark.run.worker import CellStatus, WorkerEnv

log = logging.getLogger(__name__)

IN_PROCESS = False
ENV_PREFIXES = ("BENCHMARK_", "HF_", "TRANSFORMERS_", "MLFLOW_")  # passed on to remote workers
CONNECT_TIMEOUT_S = 5.0


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of `host:port` or `ray://host:port`; None for `auto` or unparsable forms."""
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def check(*, workers: int, address: str | None, remote_tracking: bool) -> None:
    """Fail early when Ray is missing, the cluster does not answer, or remote workers cannot log.

    `remote_tracking`: whether workers on other machines could reach the tracking store.
    """
    try:
        import ray  # noqa: F401
    except ImportError:
        raise UsageError("executor 'ray' needs the ray package: pip install 'rs-prompt-bench[cluster]'") from None
    if not address:
        return
    target = _host_port(address)
    if target is None:
        if address != "auto":
            raise UsageError(f"--ray-address {address!r}: expected HOST:PORT, ray://HOST:PORT or auto")
        return
    try:
        socket.create_connection(target, timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise UsageError(f"Ray cluster unreachable at {address} ({exc.strerror or exc})") from None
    if target[0] not in LOOPBACK_HOSTS and not remote_tracking:
        raise UsageError(
            f"a Ray cluster at {address}: its nodes cannot reach a server on 127.0.0.1; pass --server-host "
            "0.0.0.0 (or an address of this machine) or --tracking-uri http://HOST:PORT of an MLflow server"
        )


def _start(address: str | None, workers: int) -> bool:
    """Connect to (or start) Ray; True when this call started it (so we shut it down)."""
    import ray

    if ray.is_initialized():
        return False
    common: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True, "logging_level": logging.WARNING}
    if address:
        env_vars = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)}
        ray.init(address=address, runtime_env={"env_vars": env_vars} if env_vars else None, **common)
    else:
        ray.init(num_cpus=workers, **common)  # a private single-node Ray sized to the sweep
    return True


def run_cells(
    tasks: Sequence[Task],
    parent_id: str | None,
    env: WorkerEnv,
    *,
    workers: int = 1,
    address: str | None = None,
) -> Iterator[CellStatus]:
    """Submit the tasks as Ray tasks (at most `workers` in flight); yield statuses as they end."""
    import ray

    if not tasks:
        return
    started = _start(address, workers)
    running: dict[Any, Task] = {}
    try:
        gpus = 1 if env.device != "cpu" and ray.cluster_resources().get("GPU", 0) > 0 else 0
        # run_cell is module-level, so Ray workers import it by name
        remote = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=0)(run_cell)
        yield from bounded_run(
            tasks,
            workers,
            running,
            start=lambda task, slot: remote.remote(task[0], task[1], parent_id, env),
            wait_ended=lambda refs: ray.wait(refs, num_returns=1)[0],
            status=lambda ref, task: _status(ref, task, parent_id, env),
        )
    finally:
        for ref, task in running.items():
            try:
                ray.cancel(ref, force=True)
            except Exception as exc:  # noqa: BLE001 - best effort; the stale check catches survivors
                log.debug("could not cancel %s: %s", task[1], exc)
        close_interrupted(running.values(), parent_id, env)
        if started:
            ray.shutdown()


def _status(ref: Any, task: Task, parent_id: str | None, env: WorkerEnv) -> CellStatus:
    import ray

    try:
        return ray.get(ref)
    except Exception as exc:  # noqa: BLE001 - a lost worker or task is this cell's failure only
        first = next((line for line in str(exc).splitlines() if line.strip()), "")
        reason = f"ray task failed ({type(exc).__name__}): {first[:300]}"
        return fail_cell(task, parent_id, env, reason)
