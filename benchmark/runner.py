"""A sweep: plan, skip finished run_keys, execute the rest, rebuild the leaderboard.

Resume is by run_key: a cell with a FINISHED MLflow run is skipped unless `force`; RUNNING runs left
by killed workers are marked KILLED first and their cells run again.
"""

from __future__ import annotations

import importlib
import logging
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.errors import UsageError
from benchmark.planning import Plan, SweepRequest, build_plan
from benchmark.speed import FAST, FastPath
from benchmark.worker import CellStatus, WorkerEnv

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    """How to execute a sweep (none of this changes a result)."""

    tracking_uri: str
    results_dir: Path
    force: bool = False
    executor: str = "serial"
    workers: int = 1
    device: str = "auto"
    fast: FastPath = FAST
    progress: bool = True
    cache_dir: str | None = None


@dataclass
class SweepOutcome:
    """What happened."""

    plan: Plan
    skipped: int = 0
    statuses: list[CellStatus] = field(default_factory=list)
    leaderboard: Path | None = None

    @property
    def failures(self) -> list[CellStatus]:
        """Cells that did not finish."""
        return [s for s in self.statuses if not s.ok]


def _executor(name: str):
    from benchmark.executors import EXECUTORS
    from benchmark.registry import unknown_name_message

    if name not in EXECUTORS:
        raise UsageError(unknown_name_message("executor", name, EXECUTORS))
    return importlib.import_module(EXECUTORS[name])


def run_sweep(request: SweepRequest, options: RunOptions) -> SweepOutcome:
    """Execute a sweep; raises UsageError (before any work) for bad input."""
    from tqdm import tqdm

    from benchmark.leaderboard import rebuild
    from benchmark.tracking import Tracker, check_tracking_uri

    executor = _executor(options.executor)
    if options.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {options.workers}")
    check_tracking_uri(options.tracking_uri)
    plan = build_plan(request)
    outcome = SweepOutcome(plan)
    tracker = Tracker(options.tracking_uri)
    protocol = plan.protocol.name
    tracker.mark_stale(protocol)
    done = set() if options.force else tracker.finished_keys(protocol)
    pending = [spec for spec in plan.specs if spec.run_key not in done]
    outcome.skipped = len(plan.specs) - len(pending)
    log.info("%d cell(s): %d to run, %d already finished", len(plan.specs), len(pending), outcome.skipped)
    if pending:
        parent = tracker.start_parent(
            protocol, {"profile": plan.profile.name, "host": socket.gethostname(), "cells": str(len(pending))}
        )
        env = WorkerEnv(
            tracking_uri=options.tracking_uri,
            profile=plan.profile.name,
            data_root=str(plan.data_root),
            device=options.device,
            fast=options.fast,
            cache_dir=options.cache_dir,
            progress=options.progress,
        )
        tasks = [(spec.to_json(), plan.labels[spec.run_key]) for spec in pending]
        start = time.perf_counter()
        bar = tqdm(total=len(tasks), desc=f"{protocol} sweep", unit="cell", disable=not options.progress)
        try:
            for status in executor.run_cells(tasks, parent, env, workers=options.workers):
                outcome.statuses.append(status)
                bar.update(1)
                bar.set_postfix_str(f"{status.label} {'ok' if status.ok else 'FAILED'}")
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
    outcome.leaderboard = rebuild(
        tracker,
        protocol,
        options.results_dir,
        profile=plan.profile.name,
        order=plan.profile.leaderboard_order(protocol),
    )
    return outcome
