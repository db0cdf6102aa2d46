"""The `local` executor: a pool of worker processes on this machine, one device per worker.

Each worker is a spawned process that keeps its backbone and caches across the cells it runs
(`benchmark.run.worker`), gets one cell at a time over its own pipe, and uses GPU `index mod n_gpus`
when there are GPUs. Unlike `concurrent.futures.ProcessPoolExecutor`, whose pool breaks as a whole
when one worker dies, a dead worker costs only the cell it was running: that cell's run is marked
FAILED with the cause, a fresh worker takes its place, and the sweep goes on. Workers exit when the
driver dies, so a killed sweep leaves no process behind.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait

from benchmark.run.executors._common import Task, bounded_run, close_interrupted, exit_reason, fail_cell, run_cell
from benchmark.run.worker import CellStatus, WorkerEnv

log = logging.getLogger(__name__)

IN_PROCESS = False


def _watch_parent(parent_pid: int) -> None:
    """Exit this worker as soon as the driver is gone (killed sweeps leave no busy orphans)."""

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="watch-driver", daemon=True).start()


def _worker_main(index: int, env: WorkerEnv, conn: Connection, parent_pid: int, log_level: int) -> None:
    """A worker process: run the cells the driver sends until it sends None or goes away."""
    from benchmark.run.worker import worker_device

    _watch_parent(parent_pid)
    logging.basicConfig(
        level=log_level, format=f"%(asctime)s %(levelname)s worker{index} %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    env = replace(env, device=worker_device(env.device, index))
    try:
        while True:
            try:
                message = conn.recv()
            except EOFError:
                return
            if message is None:
                return
            spec_json, label, parent_id = message
            conn.send(run_cell(spec_json, label, parent_id, env))
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the cell's run is already KILLED
        return


@dataclass
class _Worker:
    index: int
    process: mp.process.BaseProcess
    conn: Connection
    task: Task | None = None


class _Pool:
    def __init__(self, env: WorkerEnv, size: int) -> None:
        self.ctx = mp.get_context("spawn")  # no fork after torch/MLflow threads exist in the driver
        self.env = env
        self.workers = [self._start(i) for i in range(size)]

    def _start(self, index: int) -> _Worker:
        ours, theirs = self.ctx.Pipe()
        level = logging.getLogger().getEffectiveLevel()
        process = self.ctx.Process(
            target=_worker_main,
            args=(index, self.env, theirs, os.getpid(), level),
            name=f"benchmark-worker-{index}",
            daemon=False,  # a cell may start processes of its own; cleanup is shutdown() + _watch_parent
        )
        process.start()
        theirs.close()
        return _Worker(index, process, ours)

    def replace(self, worker: _Worker) -> _Worker:
        """A fresh worker in the slot (same device) of a dead one."""
        worker.conn.close()
        fresh = self._start(worker.index)
        self.workers[self.workers.index(worker)] = fresh
        return fresh

    def shutdown(self) -> None:
        """Ask idle workers to exit, terminate busy ones, reap all."""
        for worker in self.workers:
            try:
                if worker.task is None and worker.process.is_alive():
                    worker.conn.send(None)
                else:
                    worker.process.terminate()
            except OSError:
                worker.process.terminate()
        for worker in self.workers:
            worker.process.join(10)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5)
            worker.conn.close()


def run_cells(
    tasks: Sequence[Task],
    parent_id: str | None,
    env: WorkerEnv,
    *,
    workers: int = 1,
    address: str | None = None,
) -> Iterator[CellStatus]:
    """Run the tasks on `workers` processes; yield statuses as cells end."""
    if not tasks:
        return
    pool = _Pool(env, min(workers, len(tasks)))
    ended: dict[int, CellStatus] = {}  # slot -> status of the cell its worker just finished

    def start(task: Task, slot: int) -> int:
        worker = pool.workers[slot]
        if not worker.process.is_alive():
            worker = pool.replace(worker)  # a dead worker's slot gets a fresh process
        worker.task = task
        try:
            worker.conn.send((*task, parent_id))
        except OSError:
            pass  # the worker just died: `_collect` reports the cell when the sentinel fires
        return slot

    def wait_ended(slots: list[int]) -> list[int]:
        busy = [pool.workers[slot] for slot in slots]
        wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
        for slot, worker in zip(slots, busy):
            status = _collect(worker, parent_id, env)
            if status is not None:
                ended[slot] = status
        return [slot for slot in slots if slot in ended]

    finished = False
    try:
        yield from bounded_run(
            tasks, len(pool.workers), {}, start=start, wait_ended=wait_ended, status=lambda slot, _: ended.pop(slot)
        )
        finished = True
    finally:
        in_flight = [w.task for w in pool.workers if w.task is not None]
        pool.shutdown()
        if not finished:
            close_interrupted(in_flight, parent_id, env)


def _collect(worker: _Worker, parent_id: str | None, env: WorkerEnv) -> CellStatus | None:
    """The status of a worker's cell if it ended (reported, or the worker died), else None."""
    task = worker.task
    assert task is not None
    try:
        if worker.conn.poll():
            status = worker.conn.recv()
            worker.task = None
            return status
    except (EOFError, OSError):
        pass  # the worker died mid-message
    if worker.process.is_alive():
        return None
    worker.process.join()
    worker.task = None
    reason = f"worker process died ({exit_reason(worker.process.exitcode)}) while running the cell"
    return fail_cell(task, parent_id, env, reason)
