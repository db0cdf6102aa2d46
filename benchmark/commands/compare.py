"""`python -m benchmark compare METHOD_A METHOD_B --protocol P`: is A really better than B?

It pairs the per-image predictions of matching finished runs and prints, per dataset and subset, the
accuracy difference with a 95% paired-bootstrap interval and a McNemar p-value (`benchmark.compare`).
It reads MLflow only and needs no model. This module prints; the statistics live elsewhere.
"""

from __future__ import annotations

import argparse

from benchmark.errors import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add `compare` to the CLI."""
    p = sub.add_parser(
        "compare",
        help="paired comparison of two methods (bootstrap CI and McNemar p-value per dataset and subset)",
        description="Pair the per-image predictions of matching finished runs (same dataset, seed, shots and "
        "backbone; zero-shot runs match any shots) and test the accuracy difference A - B.",
    )
    p.add_argument("method_a", metavar="METHOD_A", help="method name or leaderboard label, e.g. coop")
    p.add_argument("method_b", metavar="METHOD_B", help="method name or leaderboard label, e.g. zeroshot")
    p.add_argument("--protocol", default="b2n", help="b2n (default), xd or dg")
    p.add_argument("--profile", default="world", help="only runs of this profile (default world; 'any' for all)")
    p.add_argument("--resamples", default="2000", help="bootstrap resamples (default 2000)")
    p.add_argument("--tracking-uri", default=None, help="MLflow store (default: MLFLOW_TRACKING_URI or ./mlflow.db)")
    p.set_defaults(handler=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    """`compare`: print the paired comparison; exit 2 with one line when there is nothing to compare."""
    import os

    from benchmark.compare import compare_methods, format_report
    from benchmark.paths import default_tracking_uri
    from benchmark.registry import PROTOCOLS
    from benchmark.tracking import Tracker, check_tracking_uri

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
    report = compare_methods(Tracker(uri), args.method_a, args.method_b, protocol, profile=profile, resamples=resamples)
    print(format_report(report))
    return 0
