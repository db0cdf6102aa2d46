"""`python -m benchmark leaderboard`: rebuild every leaderboard from the tracking store alone."""

from __future__ import annotations


def add_parser(sub) -> None:
    """Add `leaderboard` to the CLI."""
    p = sub.add_parser("leaderboard", help="rebuild leaderboard CSVs from MLflow")
    p.add_argument("--protocol", default=None, help="one protocol (default: every protocol with runs)")
    p.add_argument("--profile", default="world", help="only runs of this profile (default world)")
    p.add_argument("--tracking-uri", default=None)
    p.add_argument("--results-dir", default=None)
    p.set_defaults(handler=cmd_leaderboard)


def cmd_leaderboard(args) -> int:
    """`leaderboard`: regenerate results/ from the tracking store alone."""
    from pathlib import Path

    from benchmark.paths import default_tracking_uri, results_dir
    from benchmark.plan.profiles import get_profile
    from benchmark.registry import PROTOCOLS
    from benchmark.results.leaderboard import rebuild
    from benchmark.run.tracking import Tracker, check_tracking_uri

    uri = args.tracking_uri or default_tracking_uri()
    check_tracking_uri(uri)
    tracker = Tracker(uri)
    out = Path(args.results_dir) if args.results_dir else results_dir()
    profile = get_profile(args.profile)
    protocols = [PROTOCOLS.canonical(args.protocol)] if args.protocol else PROTOCOLS.names()
    written = 0
    for protocol in protocols:
        if not args.protocol and tracker.experiment_id(protocol, create=False) is None:
            continue
        print(rebuild(tracker, protocol, out, profile=profile.name, order=profile.leaderboard_order(protocol)))
        written += 1
    if not written:
        print("no runs found in", uri)
    return 0
