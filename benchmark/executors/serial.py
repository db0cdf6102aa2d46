"""The default executor: cells one after another in this process (the backbone is loaded once)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from benchmark.worker import CellStatus, WorkerEnv, execute_cell


def run_cells(
    tasks: Sequence[tuple[str, str]], parent_id: str | None, env: WorkerEnv, *, workers: int = 1
) -> Iterator[CellStatus]:
    """Run every (spec JSON, label) task in order."""
    for spec_json, label in tasks:
        yield execute_cell(spec_json, label, parent_id, env)
