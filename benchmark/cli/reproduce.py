"""`python -m benchmark reproduce`: rerun the cells behind the committed leaderboards and test the rerun.

Every committed leaderboard row (or the `--methods/--datasets/--seeds` part of it) is rerun in a scratch
MLflow store and cache; the command prints, per row, the committed mean, the rerun mean and whether the
rerun lies inside the row's Bonferroni-corrected prediction interval (`benchmark.run.reproduce`). Exit 0
when every decisive (average) row does, 1 otherwise, 2 for bad input (before any work).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

from benchmark.errors import UsageError

METHOD_WIDTH = 28  # longer labels are cut (the JSON output has them whole); keeps lines <= 120 characters


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add `reproduce` to the CLI."""
    p = sub.add_parser(
        "reproduce",
        help="rerun the cells of the committed leaderboards in a scratch store and test the rerun against them",
        description="Rerun the cells behind the committed leaderboards (runs_<protocol>.csv) in a scratch MLflow "
        "store and cache, and test each average row's rerun mean against the prediction interval for a new mean "
        "of as many seeds (Student-t from the committed seeds, Bonferroni over the average rows). Exit 0 when "
        "every average row is inside, 1 otherwise.",
    )
    p.add_argument(
        "--protocol", default="all", help="a registered protocol, or all (default: every committed runs csv)"
    )
    p.add_argument("--methods", default=None, help="comma-separated labels or method names (default: all committed)")
    p.add_argument("--datasets", default=None, help="comma-separated training datasets (default: all committed)")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default: all committed)")
    p.add_argument("--results-dir", default=None, help="the committed leaderboards (default: ./results)")
    p.add_argument("--workdir", default=None, help="scratch folder, kept and resumed (default: a temporary one)")
    p.add_argument("--keep", action="store_true", help="keep the temporary scratch folder and print its path")
    p.add_argument("--profile", default="world", help="world (default) or paper")
    p.add_argument("--data-root", default=None, help="dataset root for the paper profile (or BENCHMARK_DATA)")
    p.add_argument("--executor", default="auto", help="executor of the rerun (default auto, as `run`)")
    p.add_argument("--workers", default="auto", help="cells run at once (default auto, as `run`)")
    p.add_argument("--json", action="store_true", help="one JSON object per row, then a summary object")
    p.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
    p.set_defaults(handler=cmd_reproduce)


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [v.strip() for v in text.split(",") if v.strip()]
    return names or None


def _seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        seeds = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--seeds expects comma-separated integers, got {text!r}") from None
    return seeds or None


def _protocols(text: str) -> list[str] | None:
    if text == "all":
        return None
    from benchmark.registry import PROTOCOLS

    return [PROTOCOLS.canonical(text)]  # aliases; unknown names get a "did you mean"


def _number(value: float, digits: int = 2) -> str:
    return "-" if not math.isfinite(value) else f"{value:.{digits}f}"


def _inside(row) -> str:
    word = "yes" if row.inside else "NO"
    return word if row.decisive else f"({word.lower()})"


def format_table(rows: list) -> list[str]:
    """One protocol's rows as aligned text lines."""
    header = ("method", "source", "dataset", "subset", "n", "committed", "rerun", "diff", "±PI", "inside")
    body = []
    for row in rows:
        method = row.method if len(row.method) <= METHOD_WIDTH else row.method[: METHOD_WIDTH - 1] + "~"
        n = str(row.n) if row.m == row.n else f"{row.n}/{row.m}"
        pi = _number(row.halfwidth) + ("*" if row.test == "tolerance" else "")
        body.append(
            (
                method,
                row.source or "-",
                row.dataset,
                row.subset,
                n,
                _number(row.committed),
                _number(row.rerun),
                _number(row.diff, 3),
                pi,
                _inside(row),
            )
        )
    widths = [max(len(cells[i]) for cells in [header, *body]) for i in range(len(header))]
    left = {0, 1, 2, 3}

    def line(cells) -> str:
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return [line(header), *(line(cells) for cells in body)]


def format_report(report) -> str:
    """The text output: a table per protocol, then the notes and the summary line."""
    lines: list[str] = []
    for protocol in dict.fromkeys(row.protocol for row in report.rows):
        lines += [f"== {protocol}", *format_table([r for r in report.rows if r.protocol == protocol]), ""]
    from benchmark.results.reproduce_check import TOLERANCE

    lines += [
        f"n: committed seeds (n/m: m rerun seeds). ±PI: prediction half-width at alpha = 0.05/k = {report.alpha:.4g}.",
        f"*: no spread over the committed seeds (deterministic): inside when |diff| <= {TOLERANCE:g} point.",
        "(parenthesised): shown for information; the other rows decide the exit code.",
    ]
    for protocol, skipped in report.skipped.items():
        for label, reason in skipped.items():
            lines.append(f"skipped {protocol} {label}: not rebuilt from the defaults ({reason})")
    for protocol, failed in report.failed_cells.items():
        if failed:
            lines.append(f"{protocol}: {failed} rerun cell(s) failed")
    decisive = report.decisive
    inside = sum(row.inside for row in decisive)
    lines.append(
        f"k = {report.k}, level 1-0.05/k = {1 - report.alpha:.4f}; {inside} of {len(decisive)} average rows inside"
        f" -> exit {report.exit_code}"
    )
    return "\n".join(lines)


def _plain(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_lines(report) -> list[str]:
    """One JSON object per row (`"kind": "row"`), then one summary object (`"kind": "summary"`)."""
    from dataclasses import asdict

    lines = [
        json.dumps({"kind": "row", **{k: _plain(v) for k, v in asdict(row).items()}, "alpha": report.alpha})
        for row in report.rows
    ]
    decisive = report.decisive
    summary = {
        "kind": "summary",
        "k": report.k,
        "alpha": report.alpha,
        "decisive": len(decisive),
        "inside": sum(row.inside for row in decisive),
        "skipped": report.skipped,
        "failed_cells": report.failed_cells,
        "exit_code": report.exit_code,
    }
    lines.append(json.dumps(summary))
    return lines


def cmd_reproduce(args: argparse.Namespace) -> int:
    """`reproduce`: rerun, print the comparison, exit 0 when every average row is inside its interval."""
    import logging
    import os

    from benchmark.paths import results_dir
    from benchmark.plan.sweep import SweepRequest
    from benchmark.run.reproduce import reproduce

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if args.quiet:
        logging.getLogger().setLevel(logging.WARNING)
    from benchmark.cli.run import parse_workers

    workers = parse_workers(args.workers)
    protocols = _protocols(args.protocol)
    committed = Path(args.results_dir) if args.results_dir else results_dir()
    temporary = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="benchmark-reproduce-")) if temporary else Path(args.workdir)
    try:
        report = reproduce(
            committed,
            workdir,
            protocols,
            methods=_names(args.methods),
            datasets=_names(args.datasets),
            seeds=_seeds(args.seeds),
            base=SweepRequest(profile=args.profile, data_root=args.data_root),
            executor=args.executor,
            workers=workers,
            progress=not args.quiet and sys.stderr.isatty(),
        )
    finally:
        if temporary and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        elif temporary:
            print(f"scratch folder kept: {workdir}", file=sys.stderr)
    print("\n".join(json_lines(report)) if args.json else format_report(report))
    return report.exit_code
