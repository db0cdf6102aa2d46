"""Executors: how the cells of a sweep are spread over processes and machines.

Each executor takes (cell spec JSON, label) tasks and yields `CellStatus`es as cells end.
"""

from __future__ import annotations

EXECUTORS = {
    "serial": "benchmark.executors.serial",
}
