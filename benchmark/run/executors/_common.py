"""What every out-of-process executor shares: one bounded submit-and-wait loop, and closing dead cells.

`bounded_run` keeps at most `workers` cells in flight, each in a numbered slot (a device), and yields
each cell's status as it ends; an executor supplies only how to start a cell, how to wait for some to
end, and how to read an ended cell's status.

A worker that is killed (SIGKILL, segfault, out-of-memory killer, a lost node, a cancelled job)
cannot mark its own MLflow run. The driver knows which cell each worker was running, so it marks
that cell's RUNNING run under this sweep FAILED (or KILLED when the sweep itself is stopped) with
the reason as a tag, and reports the cell as failed; the other cells go on.
"""

from __future__ import annotations

import logging
import signal
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator, MutableMapping, Sequence

from benchmark.plan.specs import RunSpec
from benchmark.run.worker import CellStatus, WorkerEnv, exception_line

log = logging.getLogger(__name__)

Task = tuple[str, str]  # (cell spec JSON, label)


def bounded_run(
    tasks: Sequence[Task],
    workers: int,
    running: MutableMapping[Hashable, Task],
    *,
    start: Callable[[Task, int], Hashable],
    wait_ended: Callable[[list[Hashable]], list[Hashable]],
    status: Callable[[Hashable, Task], CellStatus],
) -> Iterator[CellStatus]:
    """Run `tasks` with at most `workers` in flight; yield each one's status as it ends, in any order.

    Args:
        tasks: the cells to run.
        workers: the most cells in flight; slots are numbered 0..workers-1 (a slot is a device).
        running: handle -> task of the cells in flight, kept up to date here so that the caller's
            cleanup (cancel, close the runs as KILLED) sees exactly what is still running.
        start: starts a task in a free slot and returns its handle (a job, a future, a worker).
        wait_ended: blocks until at least one of the handles has ended; returns the ended ones.
        status: the CellStatus of an ended handle (a failure with its reason when the cell died).
    """
    queue: deque[Task] = deque(tasks)
    slots: dict[Hashable, int] = {}
    while queue or running:
        while queue and len(running) < workers:
            slot = min(set(range(workers)) - set(slots.values()))
            task = queue.popleft()
            handle = start(task, slot)
            running[handle], slots[handle] = task, slot
        for handle in wait_ended(list(running)):
            task = running.pop(handle)
            slots.pop(handle)
            yield status(handle, task)


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
