"""`python -m benchmark tune METHOD`: a declared search on validation shots over tuning seeds.

The search logic lives in `benchmark.run.tune`; this module parses flags and prints the table.
"""

from __future__ import annotations

import argparse

from benchmark.errors import UsageError
from benchmark.registry import DEFAULT_PROTOCOL

EXAMPLES = """examples:
  python -m benchmark tune coop
  python -m benchmark tune bimors --grid train.lr=0.0025,0.005 --grid train.epochs=5,10 --seeds 101,102,103
"""


def add_parser(sub) -> None:
    """Add `tune` to the CLI."""
    p = sub.add_parser(
        "tune",
        help="search a method's schedule on validation shots over tuning seeds; writes results/tuning/METHOD.csv",
        description="Run a grid of --set overrides on tuning seeds disjoint from the reported ones, score each "
        "point by validation accuracy (the run's own few-shot val draw), and write the search and its choice.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("method", metavar="METHOD", help="a trained method, e.g. coop")
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="override values to search (repeatable); default: {lr/2, lr} x {epochs/2, epochs} of the preset",
    )
    p.add_argument(
        "--protocol",
        default=DEFAULT_PROTOCOL,
        help=f"protocol whose validation shots score the grid (default {DEFAULT_PROTOCOL})",
    )
    p.add_argument("--profile", default="world", help="world (default) or paper")
    p.add_argument("--preset", default=None, help="the preset to tune (default: the profile's for the protocol)")
    p.add_argument("--datasets", default=None, help="comma-separated datasets (default: the protocol's)")
    p.add_argument("--seeds", default="101,102,103", help="tuning seeds, disjoint from the reported ones")
    p.add_argument("--tracking-uri", default=None, help="MLflow store of the search (default sqlite:///tuning.db)")
    p.add_argument("--results-dir", default=None, help="where METHOD.csv goes (default ./results/tuning)")
    p.add_argument("--executor", default="auto", help="auto (default, as `run`), serial, local, submitit or ray")
    p.add_argument("--workers", default="auto", help="cells run at once (default auto, as `run`)")
    p.set_defaults(handler=cmd_tune)


def _grid(items: list[str]) -> dict[str, list[str]]:
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise UsageError(f"--grid expects KEY=V1,V2, got {item!r}")
        grid[key.strip()] = [v.strip() for v in values.split(",") if v.strip()]
    return grid


def cmd_tune(args: argparse.Namespace) -> int:
    """`tune`: run the search, print the table and the choice."""
    import tempfile
    from pathlib import Path

    import pandas as pd

    from benchmark.cli.run import parse_workers
    from benchmark.run.runner import RunOptions
    from benchmark.run.tune import TuneRequest, run_search

    workers = parse_workers(args.workers)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise UsageError(f"--seeds expects integers, got {args.seeds!r}") from None
    request = TuneRequest(
        method=args.method,
        grid=_grid(args.grid),
        protocol=args.protocol,
        profile=args.profile,
        preset=args.preset,
        datasets=[d.strip() for d in args.datasets.split(",")] if args.datasets else None,
        seeds=seeds,
    )
    out = Path(args.results_dir) if args.results_dir else Path.cwd() / "results" / "tuning"
    with tempfile.TemporaryDirectory(prefix="tune-boards-") as scratch:
        options = RunOptions(
            tracking_uri=args.tracking_uri or f"sqlite:///{Path.cwd() / 'tuning.db'}",
            results_dir=Path(scratch),
            executor=args.executor,
            workers=workers,
            progress=False,
        )
        table, chosen = run_search(request, options, out)
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        print(table[table.dataset == "average"].to_string(index=False))
    print(f"chosen: {' '.join(f'{k}={v}' for k, v in chosen.items())}  (written to {out / table.method.iloc[0]}.csv)")
    return 0
