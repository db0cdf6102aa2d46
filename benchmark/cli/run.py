"""`python -m benchmark run`: flags (or a YAML `--config`) -> a validated sweep -> the runner.

Flags the user types win over the config file, which wins over the defaults; everything is checked
before any work (one line, exit code 2).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from benchmark.errors import UsageError
from benchmark.registry import DEFAULT_PROTOCOL

if TYPE_CHECKING:
    from benchmark.plan.sweep import Plan


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


def parse_workers(text: str) -> int:
    """`--workers`: a positive integer, or `auto` (0: the layout `benchmark.run.runner.resolve_layout` picks)."""
    if str(text) == "auto":
        return 0
    workers = _int(text, "--workers")
    if workers < 1:
        raise UsageError(f"--workers must be a positive integer or auto, got {text}")
    return workers


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


_RUN_DEFAULTS: dict[str, object] = {}  # dest -> default, when neither a flag nor --config gives a value
_RUN_OPTIONS: list = []  # config_file.Option per run option (the keys a --config file may use)
_CONFIG_KINDS = {
    "methods": "names",
    "datasets": "names",
    "backbones": "names",
    "seeds": "ints",
    "shots": "ints",
    "workers": "int",
    "preset": "presets",
    "overrides": "assignments",
}


def add_parser(sub) -> None:
    """Add `run` to the CLI."""
    from benchmark.cli.config_file import Option
    from benchmark.run.executors import EXECUTORS

    p = sub.add_parser("run", help="run methods under a protocol, log to MLflow, rewrite the leaderboard")
    p.add_argument("--config", default=None, metavar="FILE.yaml", help="run options from a YAML file; flags win")
    p.add_argument("--methods", default="all", help="'all' or a comma-separated list (default: all)")
    p.add_argument(
        "--protocol",
        default=DEFAULT_PROTOCOL,
        help="b2n | xd | dg | fewshot, or any registered protocol (aliases base2new, cross-dataset, "
        f"domain-generalization, few-shot; default {DEFAULT_PROTOCOL})",
    )
    p.add_argument("--datasets", default=None, help="comma-separated dataset names (default: the protocol's)")
    p.add_argument(
        "--seeds", default=None, help="comma-separated seeds (default: the profile's, world 1,2,3,4,5; paper 1,2,3)"
    )
    p.add_argument(
        "--shots",
        default=None,
        help="training images per class, comma-separated for several (default: the protocol's, 16; fewshot 1,2,4,8,16)",
    )
    p.add_argument("--profile", default="world", help="world (default) or paper")
    p.add_argument(
        "--backbone",
        default=None,
        help="world | random-tiny[:SEED] | NAME[:FILE] (list backbones) | tiny:FILE | MODEL[:PRETRAINED or FILE]"
        " (paper default ViT-B-16:openai)",
    )
    p.add_argument(
        "--backbones",
        default=None,
        help="comma-separated backbones (each as --backbone), one more axis of the sweep; not with --backbone",
    )
    p.add_argument(
        "--allow-partial-weights",
        action="store_true",
        help="load a backbone checkpoint that leaves weights at their initialisation or holds extra keys"
        " (refused otherwise); runs are tagged partial_weights=<n missing>",
    )
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
    p.add_argument(
        "--executor",
        default="auto",
        help=f"auto | {' | '.join(EXECUTORS)} (default auto: one-thread workers, one per core up to 4, or per GPU)",
    )
    p.add_argument("--workers", default="auto", help="cells run at once (default auto: see --executor)")
    p.add_argument("--ray-address", default=None, help="Ray cluster for --executor ray (default: start a local Ray)")
    p.add_argument(
        "--server-host",
        default="127.0.0.1",
        help="where a parallel sweep's MLflow server listens (default 127.0.0.1; 0.0.0.0 for SLURM/Ray nodes,"
        " then with credentials made for the sweep)",
    )
    p.add_argument(
        "--insecure-server",
        action="store_true",
        help="serve beyond 127.0.0.1 without authentication (only on a trusted network)",
    )
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, ...")
    p.add_argument("--naive", action="store_true", help="turn every exact shortcut off (reference-equivalent path)")
    p.add_argument("--force", action="store_true", help="rerun cells that already finished")
    p.add_argument("--dry-run", action="store_true", help="print the resolved cells as JSON lines; load nothing")
    p.add_argument(
        "--quiet", action="store_true", help="no progress bar or per-cell lines, warnings only (the summary stays)"
    )
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
    from benchmark.cli.config_file import load_run_config, merge

    given = {dest: getattr(args, dest) for dest in _RUN_DEFAULTS}
    config = load_run_config(args.config, _RUN_OPTIONS) if args.config else {}
    resolved = argparse.Namespace(**merge(config, given, _RUN_DEFAULTS))
    if resolved.backbone is not None and resolved.backbones is not None:
        flags = [dest for dest in ("backbone", "backbones") if given[dest] is not None]
        if len(flags) != 1:
            raise UsageError("--backbone and --backbones are mutually exclusive: give one backbone or a list")
        # a flag wins over the config file's other spelling, as any flag wins over the file
        setattr(resolved, "backbones" if flags[0] == "backbone" else "backbone", None)
    if resolved.quiet and not args.quiet:
        logging.getLogger().setLevel(logging.WARNING)  # `quiet: true` in the file
    return resolved


def _request(args):
    from benchmark.plan.overrides import parse_assignments
    from benchmark.plan.sweep import SweepRequest

    return SweepRequest(
        methods=_names(args.methods),
        protocol=args.protocol,
        datasets=_names(args.datasets) if args.datasets else None,
        seeds=_int_list(args.seeds, "--seeds") if args.seeds is not None else None,
        shots=_int_list(args.shots, "--shots") if args.shots is not None else None,
        profile=args.profile,
        backbone=args.backbone,
        backbones=_names(args.backbones) if args.backbones is not None else None,
        allow_partial_weights=args.allow_partial_weights,
        presets=_presets(args.preset),
        overrides=parse_assignments(args.overrides),
        data_root=args.data_root,
    )


def _results_folder(plan: Plan, tracking_uri: str) -> Path:
    """`./results`, unless the leaderboards this sweep writes would drop runs that `./results` holds.

    A smoke run on a fresh clone (empty store, committed `results/`) would otherwise replace the committed
    leaderboards with its own two rows. Such a sweep writes to `results/partial/` and says so; `--results-dir
    results` overwrites on purpose. The rule: every run_key of `results/runs_<protocol>.csv` must be finished in
    the store or planned by this sweep.
    """
    import csv

    from benchmark.paths import results_dir
    from benchmark.run.tracking import Tracker, check_tracking_uri

    folder = results_dir()
    runs_csv = folder / f"runs_{plan.protocol.leaderboard_name}.csv"
    if not runs_csv.is_file():
        return folder
    with open(runs_csv, newline="") as handle:
        held = {row["run_key"] for row in csv.DictReader(handle)}
    check_tracking_uri(tracking_uri)
    covered = {spec.run_key for spec in plan.specs}
    if not held <= covered:
        covered |= Tracker(tracking_uri).finished_keys(plan.protocol.name)
    if held <= covered:
        return folder
    partial = folder / "partial"
    print(
        f"note: {runs_csv} holds {len(held - covered)} run(s) this sweep and the store do not; its leaderboards go"
        f" to {partial}/ (pass --results-dir {folder.name} to replace {folder.name}/)"
    )
    return partial


def _finished_keys(tracking_uri: str, protocol: str) -> set[str]:
    """run_keys with a FINISHED run (for `--dry-run`), without creating a store that does not exist."""
    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri.removeprefix("sqlite:///")).is_file():
        return set()
    from benchmark.run.tracking import Tracker

    return Tracker(tracking_uri).finished_keys(protocol)


def cmd_run(args) -> int:
    """`run`: execute (or with --dry-run, describe) a sweep."""
    from benchmark.paths import default_tracking_uri

    args = _resolve_run_args(args)
    request = _request(args)
    workers = parse_workers(args.workers)
    tracking_uri = args.tracking_uri or default_tracking_uri()
    if args.dry_run:
        from benchmark.plan.sweep import build_plan, describe
        from benchmark.run.runner import RunOptions, resolve_layout, validate_options

        # Everything a real run checks before work, except what needs loading (models: warnings only).
        layout = RunOptions(
            tracking_uri=tracking_uri,
            results_dir=Path("."),
            executor=args.executor,
            workers=workers,
            ray_address=args.ray_address,
            server_host=args.server_host,
            insecure_server=args.insecure_server,
        )
        validate_options(resolve_layout(layout))
        plan = build_plan(request, require_models=False)  # loads nothing: a model missing here is a warning
        done = _finished_keys(tracking_uri, plan.protocol.name)
        for spec in plan.specs:
            print(json.dumps({**describe(plan, spec), "finished": spec.run_key in done}))
        return 0
    from benchmark.core.shortcuts import FAST, NAIVE
    from benchmark.plan.sweep import build_plan
    from benchmark.run.runner import RunOptions, resolve_layout, run_sweep, validate_options

    options = RunOptions(
        tracking_uri=tracking_uri,
        results_dir=Path(args.results_dir) if args.results_dir else Path("."),
        force=args.force,
        allow_partial_weights=args.allow_partial_weights,
        executor=args.executor,
        workers=workers,
        device=args.device,
        fast=NAIVE if args.naive else FAST,
        progress=not args.quiet and sys.stderr.isatty(),
        # stdout not a terminal (SLURM, nohup, CI, `> log`): one line per finished cell there
        report=None if args.quiet or sys.stdout.isatty() else lambda line: print(line, flush=True),
        ray_address=args.ray_address,
        server_host=args.server_host,
        insecure_server=args.insecure_server,
    )
    validate_options(resolve_layout(options))  # the cheap checks before the plan (which may fetch weights)
    plan = build_plan(request)
    if not args.results_dir:
        options = dataclasses.replace(options, results_dir=_results_folder(plan, tracking_uri))
    outcome = run_sweep(request, options, plan=plan)
    ran = len(outcome.statuses)
    summary = f"{ran} cell(s) run, {outcome.skipped} skipped (already finished), {len(outcome.failures)} failed"
    if outcome.busy:
        summary += f", {outcome.busy} left to another sweep running them"
    print(summary)
    if outcome.leaderboard is not None:
        from benchmark.cli.summary import print_averages

        print_averages(outcome.leaderboard)
    if outcome.failures:
        print("failed cells:")
        for status in outcome.failures:
            print(f"  {status.label} {status.run_key} run {status.run_id}: {status.reason}")
        return 1
    return 0
