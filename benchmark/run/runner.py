"""A sweep: validate, plan, skip finished run_keys, execute the rest, rebuild the leaderboard.

Resume is by run_key: a cell with a FINISHED MLflow run is skipped unless `force`; RUNNING runs left
by killed workers are marked KILLED first and their cells run again, while a cell that a live worker
of another sweep is running is left to it (checked again by each worker just before it starts a
cell). All input is checked before any work (executor, workers, tracking store, plan, every image
the sweep reads). Cells that run outside the driver process log through one local MLflow server in
front of a SQLite store.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.core.shortcuts import FAST, FastPath
from benchmark.errors import UsageError
from benchmark.plan.sweep import Plan, SweepRequest, build_plan
from benchmark.run.worker import CellStatus, WorkerEnv

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    """How to execute a sweep (none of this changes a result)."""

    tracking_uri: str
    results_dir: Path
    force: bool = False
    allow_partial_weights: bool = False  # the backbone's weight audit may leave weights initialised
    executor: str = "auto"  # `resolve_layout` picks one
    workers: int = 0  # 0: as many as the layout suits (`resolve_layout`)
    threads: int = 0  # torch threads per worker; 0: the cores shared among the workers
    device: str = "auto"
    fast: FastPath = FAST
    progress: bool = True  # a progress bar (a terminal)
    report: Callable[[str], None] | None = None  # receives one line per finished cell (a log file)
    cache_dir: str | None = None
    ray_address: str | None = None
    server_host: str = "127.0.0.1"  # where a parallel sweep's own MLflow server listens
    insecure_server: bool = False  # beyond loopback, serve without per-sweep credentials (trusted networks)


@dataclass
class SweepOutcome:
    """What happened."""

    plan: Plan
    skipped: int = 0  # cells with a FINISHED run already
    busy: int = 0  # cells another sweep's live worker was running, left to it
    statuses: list[CellStatus] = field(default_factory=list)
    leaderboard: Path | None = None
    parent_run_id: str | None = None  # the sweep's MLflow run, when cells ran

    @property
    def failures(self) -> list[CellStatus]:
        """Cells that did not finish."""
        return [s for s in self.statuses if not s.ok]


def _executor(name: str):
    from benchmark.registry import unknown_name_message
    from benchmark.run.executors import EXECUTORS

    if name not in EXECUTORS:
        raise UsageError(unknown_name_message("executor", name, ["auto", *EXECUTORS]))
    return importlib.import_module(EXECUTORS[name])


MAX_AUTO_WORKERS = 4  # each CPU worker holds its own backbone and caches (about 1 GB on the world profile)
# A worker pool starts in about 25 s on 2 cores (its MLflow server, spawned workers importing torch and loading the
# backbone); `auto` starts one only for sweeps of at least this many pending cells, which pay that back.
AUTO_POOL_MIN_CELLS = 16


def resolve_layout(options: RunOptions, pending: int | None = None) -> RunOptions:
    """The executor, worker count and threads of `executor auto` / `workers 0`.

    On CPUs small models use a second thread poorly: measured on 2 cores, two one-thread workers ran the
    default cells 1.6x faster than one two-thread process (README, "Speed"). So `auto` runs one worker
    per core (at most `MAX_AUTO_WORKERS`), one thread each; results on one machine then do not depend on
    the worker count. A sweep of fewer than `AUTO_POOL_MIN_CELLS` pending cells runs in-process (no server
    or worker start-up), also on one thread. With CUDA GPUs: one worker per GPU (`local`), in-process for
    one GPU. `pending` None: not known yet (validation before planning).
    """
    from dataclasses import replace

    executor, workers, threads = options.executor, options.workers, options.threads
    if executor == "auto":
        gpus = _cuda_devices(options.device)
        chosen = workers or (gpus or max(1, min(os.cpu_count() or 1, MAX_AUTO_WORKERS)))
        small = not workers and pending is not None and pending < AUTO_POOL_MIN_CELLS  # explicit --workers wins
        executor = "local" if chosen > 1 and not small else "serial"
        workers = chosen if executor == "local" else 1
        if not gpus:
            threads = threads or 1
    elif workers == 0:
        workers = 1 if executor == "serial" else max(1, min(os.cpu_count() or 1, MAX_AUTO_WORKERS))
    return replace(options, executor=executor, workers=workers, threads=threads)


def _cuda_devices(device: str) -> int:
    """How many CUDA devices the sweep may use (0 on CPU or when `device` names a CPU; 1 for `cuda:N`)."""
    if device.startswith("cpu"):
        return 0
    import torch

    if not torch.cuda.is_available():
        return 0
    return 1 if ":" in device else torch.cuda.device_count()


def validate_options(options: RunOptions):
    """Check the executor, worker count and tracking store (UsageError); return the executor module."""
    from benchmark.run.server import LOOPBACK_HOSTS, check_server_host
    from benchmark.run.tracking import check_tracking_uri

    executor = _executor(options.executor)
    if isinstance(options.workers, bool) or not isinstance(options.workers, int) or options.workers < 1:
        raise UsageError(f"--workers must be a positive integer, got {options.workers!r}")
    check_tracking_uri(options.tracking_uri)
    # Cells outside the driver log to a SQLite store through a server of ours (see _serve).
    served = options.tracking_uri.startswith("sqlite:///") and not getattr(executor, "IN_PROCESS", False)
    if served:
        check_server_host(options.server_host, insecure=options.insecure_server)
    check = getattr(executor, "check", None)
    if check is not None:
        http = options.tracking_uri.startswith(("http://", "https://"))
        remote_ok = http or (served and options.server_host not in LOOPBACK_HOSTS)
        check(workers=options.workers, address=options.ray_address, remote_tracking=remote_ok)
    if options.ray_address and options.executor != "ray":
        log.warning("--ray-address is ignored by the %s executor", options.executor)
    return executor


def _cache_root(options: RunOptions) -> Path:
    from benchmark.paths import cache_dir

    return Path(options.cache_dir) if options.cache_dir else cache_dir()


@contextlib.contextmanager
def _serve(options: RunOptions, in_process: bool) -> Iterator[str]:
    """The tracking URI workers log to: the store itself, or a local server in front of SQLite.

    Cells in other processes never write to one SQLite file together (MLflow gets "database is
    locked"); a sweep whose cells run outside the driver goes through one `mlflow server`. A server
    that listens beyond loopback requires credentials made for this sweep (`benchmark.run.server_auth`),
    which the driver and its workers find in their environment; `--insecure-server` opts out.
    """
    from benchmark.run.server import LOOPBACK_HOSTS, tracking_server
    from benchmark.run.server_auth import client_credentials, sweep_credentials

    if in_process or not options.tracking_uri.startswith("sqlite:///"):
        yield options.tracking_uri
        return
    with contextlib.ExitStack() as stack:
        credentials = None
        if options.server_host not in LOOPBACK_HOSTS and not options.insecure_server:
            credentials = stack.enter_context(sweep_credentials(_cache_root(options)))
        server = tracking_server(options.tracking_uri, host=options.server_host, credentials=credentials)
        uri = stack.enter_context(server)
        stack.enter_context(client_credentials(credentials))
        yield uri


def _worker_env(plan: Plan, options: RunOptions, uri: str, in_process: bool) -> WorkerEnv:
    parallel = not in_process and options.workers > 1
    return WorkerEnv(
        tracking_uri=uri,
        profile=plan.profile.name,
        data_root=str(plan.data_root),
        device=options.device,
        fast=options.fast,
        # Workers in other processes must not depend on inherited environment variables.
        cache_dir=options.cache_dir if in_process else str(_cache_root(options).resolve()),
        progress=options.progress and in_process,
        # Share the cores: N workers with torch's default of all cores each would oversubscribe them.
        threads=options.threads or (max(1, (os.cpu_count() or 1) // options.workers) if parallel else 0),
        force=options.force,
        allow_partial_weights=options.allow_partial_weights,
    )


def run_sweep(request: SweepRequest, options: RunOptions, *, plan: Plan | None = None) -> SweepOutcome:
    """Execute a sweep; raises UsageError (before any work) for bad input.

    `plan`: the request's plan when the caller built it already (`build_plan(request)`), so it is built once.
    """
    from benchmark.data.imagecheck import check_images
    from benchmark.results.leaderboard import rebuild
    from benchmark.run.tracking import Tracker

    original, options = options, resolve_layout(options)
    executor = validate_options(options)
    plan = build_plan(request) if plan is None else plan
    check_images(plan.datasets.values(), _cache_root(options))
    outcome = SweepOutcome(plan)
    tracker = Tracker(options.tracking_uri)
    protocol = plan.protocol.name
    running = tracker.mark_stale(protocol)
    done = set() if options.force else tracker.finished_keys(protocol)
    busy = set() if options.force else running - done
    pending = [spec for spec in plan.specs if spec.run_key not in done | busy]
    outcome.skipped = sum(spec.run_key in done for spec in plan.specs)
    outcome.busy = len(plan.specs) - len(pending) - outcome.skipped
    log.info("%d cell(s): %d to run, %d already finished", len(plan.specs), len(pending), outcome.skipped)
    if outcome.busy:
        log.warning("%d cell(s) are being run by another sweep right now; left to it", outcome.busy)
    if original.executor == "auto":  # now that the pending cells are known
        options = resolve_layout(original, pending=len(pending))
        executor = _executor(options.executor)
    if pending:
        tracker.experiment_id(protocol)  # created once, by the driver, before any worker starts
        in_process = getattr(executor, "IN_PROCESS", False)
        with _serve(options, in_process) as uri:
            _execute(executor, pending, plan, options, _worker_env(plan, options, uri, in_process), outcome)
    several_backbones = len({spec.backbone for spec in plan.specs}) > 1  # then the backbone x method matrix too
    outcome.leaderboard = rebuild(
        tracker,
        protocol,
        options.results_dir,
        profile=plan.profile.name,
        order=plan.protocol.leaderboard_order(plan.profile),
        matrix=several_backbones,
    )
    if outcome.parent_run_id:
        from benchmark.results.matrix import matrix_paths
        from benchmark.results.report import log_sweep_reports, report_paths

        reports = report_paths(options.results_dir, protocol)
        reports += matrix_paths(options.results_dir, protocol) if several_backbones else []
        log_sweep_reports(tracker, outcome.parent_run_id, reports)
    return outcome


def progress_line(status: CellStatus, spec, done: int, total: int, elapsed: float) -> str:
    """`[37/260] coop patternnet seed 2: base 91.1 new 51.5 (8.2 s), ETA 6 min`: one finished cell, for logs."""
    head = f"[{done}/{total}] {status.label} {spec.dataset} seed {spec.seed}"
    if status.claimed:
        body = f"{status.claimed} by another sweep, not run here"
    elif not status.ok:
        body = f"FAILED: {status.reason}"
    else:
        shown = []
        for key, value in status.metrics.items():
            if key.startswith("acc_") and key != "acc_val":
                name = key.removeprefix("acc_")
                shown.append(f"{name.split('/', 1)[1] if '/' in name else name} {value:.1f}")
        body = " ".join(shown) or "finished"
    line = f"{head}: {body} ({status.seconds:.1f} s)"
    if done < total:
        remaining = elapsed / done * (total - done)
        line += f", ETA {remaining / 60:.0f} min" if remaining >= 90 else f", ETA {remaining:.0f} s"
    return line


def _execute(executor, pending: list, plan: Plan, options: RunOptions, env: WorkerEnv, outcome: SweepOutcome) -> None:
    """Open the sweep's parent run, run the cells through the executor, close the parent run."""
    from tqdm import tqdm

    from benchmark.run.tracking import Tracker

    protocol = plan.protocol.name
    tracker = Tracker(env.tracking_uri)
    parent = tracker.start_parent(
        protocol,
        {
            "profile": plan.profile.name,
            "host": socket.gethostname(),
            "cells": str(len(pending)),
            "executor": options.executor,
            "workers": str(options.workers),
        },
    )
    outcome.parent_run_id = parent
    tasks = [(spec.to_json(), plan.labels[spec.run_key]) for spec in pending]
    cells = {spec.run_key: spec for spec in pending}
    done = 0
    start = time.perf_counter()
    bar = tqdm(total=len(tasks), desc=f"{protocol} sweep", unit="cell", disable=not options.progress)
    try:
        statuses = executor.run_cells(tasks, parent, env, workers=options.workers, address=options.ray_address)
        with contextlib.closing(statuses):  # an interrupted sweep closes the executor's workers now
            for status in statuses:
                if status.claimed:  # another sweep finished or started it after this one planned
                    outcome.skipped += status.claimed == "finished"
                    outcome.busy += status.claimed == "running"
                else:
                    outcome.statuses.append(status)
                bar.update(1)
                bar.set_postfix_str(f"{status.label} {'ok' if status.ok else 'FAILED'}")
                done += 1
                if options.report is not None:
                    elapsed = time.perf_counter() - start
                    spec = cells[status.run_key]
                    options.report(progress_line(status, spec, done, len(tasks), elapsed))
    except BaseException:
        tracker.fail(parent, "sweep interrupted", "KILLED")
        raise
    finally:
        bar.close()
    failed = len(outcome.failures)
    tracker.log_results(parent, {"cells_failed": failed, "seconds": time.perf_counter() - start}, {})
    if failed:
        tracker.fail(parent, f"{failed} cell(s) failed")
    else:
        tracker.finish(parent)
