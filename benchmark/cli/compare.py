"""`python -m benchmark compare METHOD_A METHOD_B --protocol P`: is A really better than B?

It pairs the per-image predictions of matching finished runs and prints, per dataset and subset and for
the average, the accuracy difference with a seed-level 95% interval (hierarchical bootstrap), a paired
t-test over seeds and a verdict in words; a McNemar p-value on the pooled images (same trained models)
is a secondary column (`benchmark.results.compare`). The seed is the unit of replication: training variance
decides whether a gap holds on another machine or seed. `--json` prints one JSON object per row instead.
It reads MLflow only and needs no model. This module prints; the statistics live elsewhere.
"""

from __future__ import annotations

import argparse
import json

from benchmark.errors import UsageError
from benchmark.registry import DEFAULT_PROTOCOL


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add `compare` to the CLI."""
    p = sub.add_parser(
        "compare",
        help="seed-level comparison of two methods (interval, p-value and verdict per dataset, subset and average)",
        description="Pair the per-image predictions of matching finished runs (same dataset, seed, shots and "
        "backbone; a zero-shot run matches every seed and shots) and test the accuracy difference A - B over "
        "seeds: hierarchical bootstrap (seeds, then images) and paired t-test. McNemar on the pooled images "
        "(same trained models) is shown as a secondary column.",
    )
    p.add_argument("method_a", metavar="METHOD_A", help="method name or leaderboard label, e.g. coop")
    p.add_argument("method_b", metavar="METHOD_B", help="method name or leaderboard label, e.g. zeroshot")
    p.add_argument("--protocol", default=DEFAULT_PROTOCOL, help=f"a registered protocol (default {DEFAULT_PROTOCOL})")
    p.add_argument("--profile", default="world", help="only runs of this profile (default world; 'any' for all)")
    p.add_argument("--resamples", default="2000", help="bootstrap resamples (default 2000)")
    p.add_argument(
        "--allow-mixed-selection",
        action="store_true",
        help="compare methods whose checkpoints were chosen differently (e.g. best_test against last)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object per row instead of the table")
    p.add_argument("--tracking-uri", default=None, help="MLflow store (default: MLFLOW_TRACKING_URI or ./mlflow.db)")
    p.set_defaults(handler=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    """`compare`: print the paired comparison; exit 2 with one line when there is nothing to compare."""
    import os

    from benchmark.paths import default_tracking_uri
    from benchmark.registry import PROTOCOLS
    from benchmark.results.compare import compare_methods
    from benchmark.results.compare_format import format_report, report_records
    from benchmark.run.tracking import Tracker, check_tracking_uri

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # keep the output a clean table

    try:
        resamples = int(args.resamples)
    except ValueError:
        raise UsageError(f"--resamples expects an integer, got {args.resamples!r}") from None
    if resamples < 100:
        raise UsageError(f"--resamples must be >= 100, got {resamples}")
    protocol = PROTOCOLS.canonical(args.protocol)
    uri = args.tracking_uri or default_tracking_uri()
    check_tracking_uri(uri)
    profile = None if args.profile == "any" else args.profile
    report = compare_methods(
        Tracker(uri),
        args.method_a,
        args.method_b,
        protocol,
        profile=profile,
        resamples=resamples,
        allow_mixed_selection=args.allow_mixed_selection,
    )
    if args.json:
        for record in report_records(report):
            print(json.dumps(record, allow_nan=False))
    else:
        print(format_report(report))
    return 0
