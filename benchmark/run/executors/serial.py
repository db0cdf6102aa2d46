"""The default executor: cells one after another in this process (the backbone is loaded once)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from benchmark.run.worker import CellStatus, WorkerEnv, execute_cell

IN_PROCESS = True  # cells run inside the driver: a SQLite store needs no server


def run_cells(
    tasks: Sequence[tuple[str, str]],
    parent_id: str | None,
    env: WorkerEnv,
    *,
    workers: int = 1,
    address: str | None = None,
) -> Iterator[CellStatus]:
    """Run every (spec JSON, label) task in order, on `env.threads` torch threads (restored afterwards)."""
    import torch

    previous = torch.get_num_threads()
    try:
        for spec_json, label in tasks:
            if env.threads:
                torch.set_num_threads(env.threads)
            yield execute_cell(spec_json, label, parent_id, env)
    finally:
        torch.set_num_threads(previous)
