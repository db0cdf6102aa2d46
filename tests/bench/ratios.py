"""Print the fast/naive speed-up table from a pytest-benchmark JSON file.

Usage: `python tests/bench/ratios.py bench.json` -> a Markdown table of median times and ratios.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict


def ratios(path: str) -> str:
    """Markdown table: per benchmark and method, naive and fast medians and naive/fast."""
    data = json.load(open(path))
    medians: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for bench in data["benchmarks"]:
        match = re.fullmatch(r"(\w+)\[(\w+)-(fast|naive)\]", bench["name"])
        if match:
            test, method, kind = match.groups()
            medians[(test, method)][kind] = bench["stats"]["median"]
    cells: dict[str, float] = {}
    for bench in data["benchmarks"]:
        match = re.fullmatch(r"test_default_cell\[(\w+)\]", bench["name"])
        if match:
            cells[match.group(1)] = bench["stats"]["median"]
    lines = ["| benchmark | method | naive median (ms) | fast median (ms) | speed-up |", "|---|---|---|---|---|"]
    for (test, method), m in sorted(medians.items()):
        if {"fast", "naive"} <= set(m):
            ratio = m["naive"] / m["fast"]
            lines.append(f"| {test} | {method} | {m['naive'] * 1e3:.2f} | {m['fast'] * 1e3:.2f} | {ratio:.1f}x |")
    if cells:
        lines += ["", "| method | one default b2n cell (s) |", "|---|---|"]
        lines += [f"| {method} | {seconds:.2f} |" for method, seconds in sorted(cells.items())]
    return "\n".join(lines)


if __name__ == "__main__":
    print(ratios(sys.argv[1]))
