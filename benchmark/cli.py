"""Command line: `python -m benchmark {run,leaderboard,list,ui,parity,world,...}`.

The only module that prints. Every handler returns an exit code: 0 success, 1 some cells failed,
2 bad input (one line on stderr, before any work starts).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from benchmark import __version__
from benchmark.errors import UsageError

log = logging.getLogger("benchmark")

EPILOG = """examples:
  python -m benchmark run --methods all --protocol b2n
  python -m benchmark run --methods coop,cocoop --datasets patternnet --seeds 1 --set epochs=5
  python -m benchmark run --protocol b2n --dry-run
  python -m benchmark leaderboard
  python -m benchmark compare coop zeroshot --protocol b2n
  python -m benchmark run --executor local --workers 2 --config sweep.yaml
  python -m benchmark list methods
  python -m benchmark parity ../shared/parity/*.pt
  python -m benchmark ui
"""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _int_list(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{flag} expects comma-separated integers, got {text!r}") from None
    if not values:
        raise UsageError(f"{flag} is empty")
    return values


def _int(text: str, flag: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{flag} expects an integer, got {text!r}") from None


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _presets(values: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        for part in _names(value):
            method, sep, preset = part.partition("=")
            if sep:
                out[method.strip()] = preset.strip()
            else:
                out["*"] = method.strip()
    return out


# -- run ----------------------------------------------------------------------------------------
_RUN_DEFAULTS: dict[str, object] = {}  # dest -> default, when neither a flag nor --config gives a value
_RUN_OPTIONS: list = []  # config_file.Option per run option (the keys a --config file may use)
_CONFIG_KINDS = {
    "methods": "names",
    "datasets": "names",
    "seeds": "ints",
    "shots": "int",
    "workers": "int",
    "preset": "presets",
    "overrides": "assignments",
}


def _add_run(sub) -> None:
    from benchmark.config_file import Option
    from benchmark.executors import EXECUTORS

    p = sub.add_parser("run", help="run methods under a protocol, log to MLflow, rewrite the leaderboard")
    p.add_argument("--config", default=None, metavar="FILE.yaml", help="run options from a YAML file; flags win")
    p.add_argument("--methods", default="all", help="'all' or a comma-separated list (default: all)")
    p.add_argument("--protocol", default="b2n", help="b2n (aliases: base2new); default b2n")
    p.add_argument("--datasets", default=None, help="comma-separated dataset names (default: the protocol's)")
    p.add_argument("--seeds", default="1,2,3", help="comma-separated seeds (default 1,2,3)")
    p.add_argument("--shots", default="16", help="training images per class (default 16)")
    p.add_argument("--profile", default="world", help="world (default) or paper")
    p.add_argument("--backbone", default=None, help="world | random-tiny[:SEED] | MODEL[:PRETRAINED or FILE]")
    p.add_argument(
        "--preset", action="append", default=[], help="PRESET for every method that has it, or METHOD=PRESET"
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="typed override of a method or train config field (coop.n_ctx=4, train.epochs=5)",
    )
    p.add_argument("--data-root", default=None, help="dataset root for the paper profile (or BENCHMARK_DATA)")
    p.add_argument(
        "--tracking-uri", default=None, help="MLflow store (default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db)"
    )
    p.add_argument("--results-dir", default=None, help="where leaderboards go (default: ./results)")
    p.add_argument("--executor", default="serial", help=f"{' | '.join(EXECUTORS)} (default serial)")
    p.add_argument("--workers", default="1", help="cells run at once by parallel executors (default 1)")
    p.add_argument("--ray-address", default=None, help="Ray cluster for --executor ray (default: start a local Ray)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, ...")
    p.add_argument("--naive", action="store_true", help="turn every exact shortcut off (reference-equivalent path)")
    p.add_argument("--force", action="store_true", help="rerun cells that already finished")
    p.add_argument("--dry-run", action="store_true", help="print the resolved cells as JSON lines; load nothing")
    p.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
    # Every default moves to _RUN_DEFAULTS and the parser's becomes None, so that cmd_run can tell a
    # flag the user gave (it overrides --config) from a default (the config file overrides it).
    _RUN_OPTIONS.clear()
    for action in p._actions:
        if action.dest in ("help", "config"):
            continue
        _RUN_DEFAULTS[action.dest] = action.default
        keys = tuple(s.lstrip("-") for s in action.option_strings if s.startswith("--")) + (action.dest,)
        kind = _CONFIG_KINDS.get(action.dest, "bool" if action.nargs == 0 else "str")
        _RUN_OPTIONS.append(Option(action.dest, keys, kind))
        action.default = None
    p.set_defaults(handler=cmd_run)


def _resolve_run_args(args: argparse.Namespace) -> argparse.Namespace:
    """The run options from flags, then the --config file, then the defaults."""
    from benchmark.config_file import load_run_config, merge

    given = {dest: getattr(args, dest) for dest in _RUN_DEFAULTS}
    config = load_run_config(args.config, _RUN_OPTIONS) if args.config else {}
    resolved = argparse.Namespace(**merge(config, given, _RUN_DEFAULTS))
    if resolved.quiet and not args.quiet:
        logging.getLogger().setLevel(logging.WARNING)  # `quiet: true` in the file
    return resolved


def _request(args):
    from benchmark.config import parse_assignments
    from benchmark.planning import SweepRequest

    return SweepRequest(
        methods=_names(args.methods),
        protocol=args.protocol,
        datasets=_names(args.datasets) if args.datasets else None,
        seeds=_int_list(args.seeds, "--seeds"),
        shots=_int(args.shots, "--shots"),
        profile=args.profile,
        backbone=args.backbone,
        presets=_presets(args.preset),
        overrides=parse_assignments(args.overrides),
        data_root=args.data_root,
    )


def cmd_run(args) -> int:
    """`run`: execute (or with --dry-run, describe) a sweep."""
    from pathlib import Path

    from benchmark.paths import default_tracking_uri, results_dir

    args = _resolve_run_args(args)
    request = _request(args)
    workers = _int(args.workers, "--workers")
    if workers < 1:
        raise UsageError(f"--workers must be a positive integer, got {workers}")
    if args.dry_run:
        from benchmark.planning import build_plan, describe

        plan = build_plan(request)
        for spec in plan.specs:
            print(json.dumps(describe(plan, spec)))
        return 0
    from benchmark.runner import RunOptions, run_sweep
    from benchmark.speed import FAST, NAIVE

    options = RunOptions(
        tracking_uri=args.tracking_uri or default_tracking_uri(),
        results_dir=Path(args.results_dir) if args.results_dir else results_dir(),
        force=args.force,
        executor=args.executor,
        workers=workers,
        device=args.device,
        fast=NAIVE if args.naive else FAST,
        progress=not args.quiet and sys.stderr.isatty(),
        ray_address=args.ray_address,
    )
    outcome = run_sweep(request, options)
    ran = len(outcome.statuses)
    print(f"{ran} cell(s) run, {outcome.skipped} skipped (already finished), {len(outcome.failures)} failed")
    print(f"leaderboard: {outcome.leaderboard}")
    if outcome.failures:
        print("failed cells:")
        for status in outcome.failures:
            print(f"  {status.label} {status.run_key} run {status.run_id}: {status.reason}")
        return 1
    return 0


# -- leaderboard --------------------------------------------------------------------------------
def _add_leaderboard(sub) -> None:
    p = sub.add_parser("leaderboard", help="rebuild leaderboard CSVs from MLflow")
    p.add_argument("--protocol", default=None, help="one protocol (default: every protocol with runs)")
    p.add_argument("--profile", default="world", help="only runs of this profile (default world)")
    p.add_argument("--tracking-uri", default=None)
    p.add_argument("--results-dir", default=None)
    p.set_defaults(handler=cmd_leaderboard)


def cmd_leaderboard(args) -> int:
    """`leaderboard`: regenerate results/ from the tracking store alone."""
    from pathlib import Path

    from benchmark.leaderboard import rebuild
    from benchmark.paths import default_tracking_uri, results_dir
    from benchmark.profiles import get_profile
    from benchmark.registry import PROTOCOLS
    from benchmark.tracking import Tracker, check_tracking_uri

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


# -- list ---------------------------------------------------------------------------------------
def _add_list(sub) -> None:
    p = sub.add_parser("list", help="list methods, protocols or datasets (no torch import)")
    p.add_argument("what", nargs="?", default="all", choices=["all", "methods", "protocols", "datasets"])
    p.add_argument("--profile", default="world")
    p.set_defaults(handler=cmd_list)


def cmd_list(args) -> int:
    """`list`: registered names with one-line summaries."""
    from benchmark.registry import METHODS, PROTOCOLS

    if args.what in ("all", "methods"):
        print("methods:")
        for name in METHODS.names():
            print(f"  {name:<10} {METHODS.summary(name)}")
    if args.what in ("all", "protocols"):
        print("protocols:")
        for name in PROTOCOLS.names():
            aliases = PROTOCOLS.aliases_of(name)
            extra = f" (aliases: {', '.join(aliases)})" if aliases else ""
            print(f"  {name:<10} {PROTOCOLS.summary(name)}{extra}")
    if args.what in ("all", "datasets"):
        from benchmark.profiles import get_profile

        profile = get_profile(args.profile)
        print(f"datasets ({profile.name} profile):")
        for name, spec in profile.datasets.items():
            count = f"{len(spec.classnames)} classes" if spec.classnames else "classes from the split file"
            print(f"  {name:<13} {spec.folder}/{spec.split_file:<20} {count}")
    return 0


# -- ui -----------------------------------------------------------------------------------------
def _add_ui(sub) -> None:
    p = sub.add_parser("ui", help="open the MLflow UI on the tracking store")
    p.add_argument("--tracking-uri", default=None)
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", default="5000")
    p.set_defaults(handler=cmd_ui)


def cmd_ui(args) -> int:
    """`ui`: `mlflow ui` bound to localhost unless told otherwise."""
    import os
    import subprocess

    from benchmark.paths import default_tracking_uri

    uri = args.tracking_uri or default_tracking_uri()
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        args.host,
        "--port",
        str(_int(args.port, "--port")),
    ]
    print(f"MLflow UI on http://{args.host}:{args.port} for {uri} (Ctrl-C to stop)")
    return subprocess.call(command, env=os.environ.copy())


# -- parity -------------------------------------------------------------------------------------
def _add_parity(sub) -> None:
    p = sub.add_parser("parity", help="check methods against reference fixtures (../shared/parity/*.pt)")
    p.add_argument("fixtures", nargs="+")
    p.add_argument("--verbose", action="store_true", help="print every quantity, not only the worst")
    p.set_defaults(handler=cmd_parity)


def cmd_parity(args) -> int:
    """`parity`: scaled errors per quantity; exit 0 only if all are within bounds."""
    from benchmark.parity import load_fixture, run_fixture

    for path in args.fixtures:
        load_fixture(path)  # every fixture is checked for readability before any work
    all_ok = True
    for path in args.fixtures:
        for case, checks in run_fixture(path):
            ok = all(c.ok for c in checks)
            all_ok &= ok
            print(f"{'PASS' if ok else 'FAIL'} {case}")
            for check in checks:
                if args.verbose or not check.ok:
                    note = f" ({check.note})" if check.note else ""
                    flag = "ok " if check.ok else "BAD"
                    print(f"    {flag} {check.name:<70} {check.error:.2e} <= {check.bound:.0e}{note}")
            worst = max((c for c in checks if c.bound > 0), key=lambda c: c.error / c.bound, default=None)
            if worst is not None and not args.verbose:
                print(f"    worst: {worst.name} {worst.error:.2e} (bound {worst.bound:.0e})")
    return 0 if all_ok else 1


# -- world --------------------------------------------------------------------------------------
def _add_world(sub) -> None:
    p = sub.add_parser("world", help="the embedded RS world: build it, or pretrain its tiny CLIP")
    p.add_argument("action", choices=["build", "pretrain"])
    p.add_argument("rest", nargs=argparse.REMAINDER, help="options of `world pretrain` (see --help there)")
    p.set_defaults(handler=cmd_world)


def cmd_world(args) -> int:
    """`world build` generates the datasets into the cache; `world pretrain` trains the tiny CLIP."""
    if args.action == "build":
        from benchmark.paths import cache_dir
        from benchmark.world import ensure_world

        print(ensure_world(cache_dir()))
        return 0
    from benchmark.world.pretrain import run_pretrain

    return int(run_pretrain(args.rest) or 0)


# -- main ---------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = _Parser(
        prog="benchmark",
        description="Prompt-learning benchmark harness for CLIP on remote sensing.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (_add_run, _add_leaderboard, _add_list, _add_ui, _add_parity, _add_world):
        add(sub)
    import importlib

    from benchmark.commands import COMMANDS

    for module in COMMANDS:
        importlib.import_module(module).add_parser(sub)
    return parser


def _configure_logging(verbose: bool, quiet: bool) -> None:
    import os

    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "DEBUG" if verbose else "WARNING")
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("mlflow", "alembic", "urllib3", "filelock", "httpx", "git"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
        _configure_logging(args.verbose, getattr(args, "quiet", False))
        return args.handler(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
