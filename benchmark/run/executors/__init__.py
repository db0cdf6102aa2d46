"""Executors: how the cells of a sweep are spread over processes and machines.

* `serial` (default): cells one after another in the driver process.
* `local`: a pool of `--workers` processes on this machine, one GPU each where there are GPUs.
* `submitit`: SLURM job arrays through submitit (its local executor when there is no SLURM).
* `ray`: one Ray task per cell, on `--ray-address` or a local Ray started for the sweep.

An executor is a module with

    run_cells(tasks, parent_id, env, *, workers, address=None) -> Iterator[CellStatus]

taking (cell spec JSON, label) tasks and yielding one `CellStatus` per task as cells end, in any
order. `workers` caps the cells in flight; `address` is the cluster to use (Ray). A module may also
define `check(*, workers, address, tracking_uri)` that raises `UsageError` before any work (missing
package, unreachable cluster). Every executor but `serial` runs cells outside the driver process, so
the runner puts an MLflow server in front of a SQLite store for them (`IN_PROCESS` is False).
"""

from __future__ import annotations

EXECUTORS = {
    "serial": "benchmark.run.executors.serial",
    "local": "benchmark.run.executors.local",
    "submitit": "benchmark.run.executors.submitit_exec",
    "ray": "benchmark.run.executors.ray_exec",
}
