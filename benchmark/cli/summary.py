"""The numbers on screen: the `average` rows of a leaderboard `run` or `leaderboard` just wrote.

Why: a user who ran a sweep wants its result without opening a file. The rows are read back from the
leaderboard CSV (the single source of the numbers), so the screen and `results/` never disagree. Only means,
intervals and the headline columns are shown; spreads and cost stay in the files.
"""

from __future__ import annotations

import csv
from pathlib import Path

SHOWN_SUFFIXES = ("_mean", "_ci95")
SHOWN = ("hm", "n_seeds")
KEYS = ("method", "source", "shots")  # whichever the protocol's table has
AVERAGE_COLUMNS = ("dataset", "target")


def average_rows(leaderboard_csv: Path) -> list[str]:
    """The leaderboard's `average` rows (or every row when it has none) as aligned text lines, header first."""
    with open(leaderboard_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return []
    columns = list(rows[0])
    where = next((c for c in AVERAGE_COLUMNS if c in columns), None)
    chosen = [r for r in rows if where and r[where] == "average"] or rows
    keep = [c for c in columns if c in KEYS or c in SHOWN or c.endswith(SHOWN_SUFFIXES)]
    if not any(r[where] == "average" for r in chosen) and where:
        keep.insert(1, where)  # no average row: the per-dataset rows, named
    table = [keep] + [[r[c] or "n/a" for c in keep] for r in chosen]
    widths = [max(len(row[i]) for row in table) for i in range(len(keep))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]


def print_averages(leaderboard_csv: Path) -> None:
    """Print `average_rows` under a line naming the file."""
    lines = average_rows(Path(leaderboard_csv))
    if lines:
        print(f"{leaderboard_csv} (average rows; *_ci95: 95% Student-t half-widths over seeds):")
        for line in lines:
            print(f"  {line}")
