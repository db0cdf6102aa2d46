"""`python -m benchmark data {check,shots}`: look at a data root before (and independently of) any run.

Why: on the paper profile the data is the user's. `data check` verifies every listed image, the class
order and whether the split files are the published ones, and lists every problem in one pass before a
sweep; `data shots` prints the exact few-shot images a run of (dataset, seed, shots) trains on (Dassl's
draw over all classes, before the base/new split), so they can be compared with the reference's pickles
without opening an image. This is the only module of the data commands that prints.
"""

from __future__ import annotations

import argparse
import json
import sys

from benchmark.cli.run import _names
from benchmark.errors import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add `data check` and `data shots` to the CLI."""
    p = sub.add_parser("data", help="check a data root, or list the few-shot images a run uses")
    actions = p.add_subparsers(dest="data_command", required=True)

    check = actions.add_parser("check", help="verify split files, class names and every listed image")
    _common(check)
    check.add_argument("--datasets", default=None, help="comma-separated (default: every dataset found in the root)")
    check.add_argument("--no-images", action="store_true", help="check split files only, not the images")
    check.add_argument(
        "--quick", action="store_true", help="only verify image headers/structure (faster; misses truncated files)"
    )
    check.add_argument("--workers", default="8", help="threads opening images (default 8)")
    check.add_argument(
        "--strict", action="store_true", help="count notes (departures from the published split) as errors"
    )
    check.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    check.set_defaults(handler=cmd_check)

    shots = actions.add_parser("shots", help="print Dassl's few-shot draw (train and val paths) as JSON lines")
    _common(shots)
    shots.add_argument("--datasets", required=True, help="comma-separated dataset names")
    shots.add_argument("--seed", required=True, help="seed(s), comma-separated")
    shots.add_argument("--shots", required=True, help="shots per class, comma-separated")
    shots.set_defaults(handler=cmd_shots)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--profile",
        default=None,
        help="world or paper (default: paper when a dataset root is given by --data-root or BENCHMARK_DATA,"
        " else world, like every other command)",
    )
    p.add_argument("--data-root", default=None, help="dataset root (default: BENCHMARK_DATA)")


def _profile(args: argparse.Namespace):
    """The profile a `data` command reads: a dataset root given means the user's (paper) datasets."""
    import os

    from benchmark.plan.profiles import get_profile

    if args.profile is not None:
        return get_profile(args.profile)
    return get_profile("paper" if args.data_root or os.environ.get("BENCHMARK_DATA") else "world")


def _ints(text: str, flag: str, minimum: int) -> list[int]:
    try:
        values = [int(v) for v in _names(text)]
    except ValueError:
        raise UsageError(f"{flag} expects comma-separated integers, got {text!r}") from None
    if not values or any(v < minimum for v in values):
        raise UsageError(f"{flag} expects integers >= {minimum}, got {text!r}")
    return values


def cmd_check(args: argparse.Namespace) -> int:
    """`data check`: a table and every problem and note per dataset (or `--json`); exit 2 on any problem.

    Problems are what `run` refuses; notes are what it proceeds with, tagging its runs non-canonical
    (`--strict` counts them as problems). stderr gets one line per dataset with a problem.
    """
    from benchmark.data.check import check_dataset
    from benchmark.data.check_render import error_lines, render_json, render_text
    from benchmark.data.facts import load_facts

    profile = _profile(args)
    workers = _ints(args.workers, "--workers", 1)[0]
    root = profile.data_root(args.data_root)
    if args.datasets:
        names = _names(args.datasets)
        for name in names:
            profile.dataset(name)
    else:
        names = [name for name, spec in profile.datasets.items() if (root / spec.folder).is_dir()]
        if not names:
            folders = ", ".join(spec.folder for spec in profile.datasets.values())
            raise UsageError(f"no dataset of the {profile.name} profile under {root} (expected folders: {folders})")
    facts = load_facts() if profile.name == "paper" else {}
    options = {"images": not args.no_images, "quick": args.quick, "workers": workers}
    reports = [check_dataset(profile.dataset(name), root, facts.get(name), **options) for name in names]
    if args.strict:
        reports = [report.strict() for report in reports]
    if args.json:
        print(render_json(reports, profile=profile.name, data_root=str(root), strict=args.strict))
    else:
        print("\n".join(render_text(reports)))
    errors = error_lines(reports)
    for line in errors:
        print(line, file=sys.stderr)
    return 2 if errors else 0


def cmd_shots(args: argparse.Namespace) -> int:
    """`data shots`: one JSON object per (dataset, seed, shots) with the drawn train and val paths."""
    from benchmark.data.catalog import open_dataset
    from benchmark.data.fewshot import dassl_few_shot

    profile = _profile(args)
    names = _names(args.datasets)
    if not names:
        raise UsageError("--datasets is empty")
    specs = [profile.dataset(name) for name in names]
    seeds = _ints(args.seed, "--seed", 0)
    shot_counts = _ints(args.shots, "--shots", 1)
    root = profile.data_root(args.data_root)
    datasets = [open_dataset(spec, root) for spec in specs]  # every split validated before any output
    for dataset in datasets:
        for seed in seeds:
            for shots in shot_counts:
                draw = dassl_few_shot(dataset.split, shots, seed)
                record = {
                    "dataset": dataset.name,
                    "seed": seed,
                    "shots": shots,
                    "train": [item.path for item in draw.train],
                    "val": [item.path for item in draw.val],
                }
                print(json.dumps(record))
    return 0
