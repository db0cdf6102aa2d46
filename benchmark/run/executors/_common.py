"""What every out-of-process executor needs: closing the runs of cells whose worker died.

A worker that is killed (SIGKILL, segfault, out-of-memory killer, a lost node, a cancelled job)
cannot mark its own MLflow run. The driver knows which cell each worker was running, so it marks
that cell's RUNNING run under this sweep FAILED (or KILLED when the sweep itself is stopped) with
the reason as a tag, and reports the cell as failed; the other cells go on.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterable

from benchmark.plan.specs import RunSpec
from benchmark.run.worker import CellStatus, WorkerEnv, exception_line

log = logging.getLogger(__name__)


def exit_reason(code: int | None) -> str:
    """`killed by SIGKILL` / `exit code 1` for a process's exit status."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def close_cell(
    task: tuple[str, str], parent_id: str | None, env: WorkerEnv, reason: str, status: str = "FAILED"
) -> CellStatus:
    """Mark the open run of `task` (a dead worker's cell) and return its failed status."""
    from benchmark.run.tracking import Tracker

    spec_json, label = task
    run_key = RunSpec.from_json(spec_json).run_key
    run_ids: list[str] = []
    if parent_id:
        try:
            run_ids = Tracker(env.tracking_uri).fail_open_cells(parent_id, run_key, reason, status)
        except Exception as exc:  # noqa: BLE001 - the next invocation's stale check still catches the run
            log.warning("could not mark the run of %s %s: %s", label, run_key, exc)
    return CellStatus(run_key, label, ok=False, run_id=run_ids[0] if run_ids else None, reason=reason)


def fail_cell(task: tuple[str, str], parent_id: str | None, env: WorkerEnv, reason: str) -> CellStatus:
    """A cell whose worker or job ended without a result: log the reason, close its run FAILED."""
    log.error("%s: %s", task[1], reason)
    return close_cell(task, parent_id, env, reason)


def close_interrupted(tasks: Iterable[tuple[str, str]], parent_id: str | None, env: WorkerEnv) -> None:
    """Mark the runs of cells still running when the sweep stopped (Ctrl-C, an error) KILLED."""
    for task in tasks:
        close_cell(task, parent_id, env, "sweep interrupted", "KILLED")


def run_cell(spec_json: str, label: str, parent_id: str | None, env: WorkerEnv) -> CellStatus:
    """`execute_cell` for a worker process: a crash before the cell's run exists comes back as a status.

    `execute_cell` records every failure of a cell on its run; what can still raise is setting up
    the worker itself (loading the backbone, reaching the tracking server). Reporting that as the
    cell's failure keeps the reason, which a dead worker's exit code would lose.
    """
    from benchmark.run.worker import execute_cell

    try:
        return execute_cell(spec_json, label, parent_id, env)
    except Exception as exc:  # noqa: BLE001 - reported to the driver, which goes on with other cells
        reason = exception_line(exc)
        log.error("%s: the worker could not run the cell: %s", label, reason)
        log.debug("worker failure", exc_info=True)
        return CellStatus(RunSpec.from_json(spec_json).run_key, label, ok=False, reason=reason)
