"""`python -m benchmark leaderboard`: rebuild leaderboards from the tracking store, or from a runs CSV alone."""

from __future__ import annotations

from benchmark.errors import UsageError


def add_parser(sub) -> None:
    """Add `leaderboard` to the CLI."""
    p = sub.add_parser(
        "leaderboard",
        help="rebuild leaderboard CSV/MD/PNG files from the runs' result rows",
        description="Rebuild results/leaderboard_<protocol>.{csv,md,png} and runs_<protocol>.csv from the result "
        "rows (results.json) of every finished run in the tracking store, or with --from-runs from a runs CSV "
        "written earlier (no tracking store needed); with --matrix also the backbone x method matrix.",
    )
    p.add_argument("--protocol", default=None, help="one protocol (default: every protocol with runs)")
    p.add_argument("--profile", default="world", help="only runs of this profile (default world)")
    p.add_argument("--tracking-uri", default=None, help="MLflow store (default: ./mlflow.db or MLFLOW_TRACKING_URI)")
    p.add_argument("--results-dir", default=None, help="where to write (default ./results)")
    p.add_argument(
        "--from-runs",
        default=None,
        metavar="CSV",
        help="rebuild from this runs_<protocol>.csv instead of the tracking store (needs --protocol); the "
        "configs_<protocol>.csv beside it, when present, gives the Markdown's configuration legend",
    )
    p.add_argument(
        "--matrix",
        action="store_true",
        help="also write matrix_<protocol>.{csv,md,png}: the headline number per method (rows) and backbone "
        "(columns) with its 95%% interval and the gain over zero-shot on the same backbone",
    )
    p.set_defaults(handler=cmd_leaderboard)


def cmd_leaderboard(args) -> int:
    """`leaderboard`: regenerate results/ from the tracking store alone, or from a runs CSV."""
    from pathlib import Path

    from benchmark.cli.summary import print_averages
    from benchmark.paths import default_tracking_uri, results_dir
    from benchmark.plan.profiles import get_profile
    from benchmark.registry import PROTOCOLS
    from benchmark.results.matrix import matrix_paths

    out = Path(args.results_dir) if args.results_dir else results_dir()
    profile = get_profile(args.profile)
    if args.from_runs:
        from benchmark.results.configs import read_configs
        from benchmark.results.leaderboard import read_long_rows, write_leaderboard

        if not args.protocol:
            raise UsageError("--from-runs needs --protocol (the protocol whose runs the CSV holds)")
        protocol = PROTOCOLS.get(args.protocol)
        source = Path(args.from_runs)
        if not source.is_file():
            raise UsageError(f"--from-runs: {source} does not exist")
        beside = source.with_name(source.name.replace("runs_", "configs_", 1))  # written with it
        try:
            long = read_long_rows(source)
            configs = read_configs(beside) if beside != source and beside.is_file() else None
        except (ValueError, KeyError) as exc:
            raise UsageError(f"--from-runs: {exc}") from None
        order = protocol.leaderboard_order(profile)
        path, _ = write_leaderboard(
            protocol.name, long, out, profile=profile.name, order=order, matrix=args.matrix, configs=configs
        )
        print_averages(path)
        if args.matrix:
            print(matrix_paths(out, protocol.name)[0])
        return 0

    from benchmark.results.leaderboard import rebuild
    from benchmark.run.tracking import Tracker, check_tracking_uri

    uri = args.tracking_uri or default_tracking_uri()
    check_tracking_uri(uri)
    tracker = Tracker(uri)
    protocols = [PROTOCOLS.get(args.protocol)] if args.protocol else [PROTOCOLS.get(n) for n in PROTOCOLS.names()]
    written = 0
    for protocol in protocols:
        if not args.protocol and tracker.experiment_id(protocol.name, create=False) is None:
            continue
        order = protocol.leaderboard_order(profile)
        print_averages(rebuild(tracker, protocol.name, out, profile=profile.name, order=order, matrix=args.matrix))
        if args.matrix:
            print(matrix_paths(out, protocol.name)[0])
        written += 1
    if not written:
        print("no runs found in", uri)
    return 0
