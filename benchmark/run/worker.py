"""Running one cell inside a worker process: build services once, run the protocol, log to MLflow.

A worker keeps its backbone, datasets and caches across the cells it runs. Every failure of a cell
is recorded on its MLflow run (FAILED with the reason as a tag) and reported back; the sweep goes on.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.core.cost import PeakMemory
from benchmark.core.shortcuts import FAST, FastPath
from benchmark.errors import RunFailure, UsageError
from benchmark.plan.specs import RunSpec
from benchmark.results.artifacts import FIGURE_MIN_CELL_S
from benchmark.run.live import EpochBuffer, Heartbeat

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerEnv:
    """Everything a worker needs besides the cell itself (picklable for process pools and clusters)."""

    tracking_uri: str
    profile: str
    data_root: str
    device: str = "auto"
    fast: FastPath = FAST
    cache_dir: str | None = None
    progress: bool = False
    threads: int = 0  # torch threads in this worker; 0 keeps torch's default
    force: bool = False  # run cells even when another sweep finished or is running them
    allow_partial_weights: bool = False  # load a backbone checkpoint the weight audit finds incomplete


@dataclass
class CellStatus:
    """What a worker reports back for one cell."""

    run_key: str
    label: str
    ok: bool
    run_id: str | None = None
    reason: str = ""
    seconds: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    claimed: str = ""  # "finished" / "running": another sweep got there first, this cell did not run


_SERVICES: dict[tuple, Any] = {}


def resolve_device(device: str) -> str:
    """`auto` -> cuda when available, else cpu."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def worker_device(device: str, index: int) -> str:
    """The device of the `index`-th worker of a pool: one GPU each, round-robin over visible GPUs.

    `auto` and a bare `cuda` are spread over the GPUs; an explicit device (`cuda:1`, `cpu`) is kept.
    """
    if device not in ("auto", "cuda"):
        return device
    import torch

    if not torch.cuda.is_available():
        return resolve_device(device)
    return f"cuda:{index % torch.cuda.device_count()}"


def _cache_root(env: WorkerEnv) -> Path:
    """The worker's cache folder: the one the sweep passed, else BENCHMARK_CACHE's default."""
    from benchmark.paths import cache_dir

    return Path(env.cache_dir) if env.cache_dir else cache_dir()


def build_context(env: WorkerEnv, backbone: str):
    """The cell context of a worker: the backbone loaded once, the feature cache, the caption provider."""
    import torch

    from benchmark.backbone.load import load_backbone, parse_backbone
    from benchmark.captions import caption_provider
    from benchmark.core.context import CellContext
    from benchmark.data.feature_cache import FeatureCache
    from benchmark.plan.profiles import get_profile

    if env.threads:
        torch.set_num_threads(env.threads)
    device = resolve_device(env.device)
    root = _cache_root(env)
    profile = get_profile(env.profile)
    clip = load_backbone(parse_backbone(backbone), device=device, allow_partial=env.allow_partial_weights)
    cache = FeatureCache(root / "features" / "features.sqlite") if env.fast.feature_cache else None
    return CellContext(
        profile=profile,
        data_root=Path(env.data_root),
        clip=clip,
        fast=env.fast,
        cache=cache,
        captions=caption_provider(profile, cache_root=root, device=device),
        progress=env.progress,
    )


def _services(env: WorkerEnv, backbone: str):
    """The per-process tracker and cell context (built on first use, then reused)."""
    if (env, None) not in _SERVICES:  # one tracker (one worker lock) per worker, whatever the backbone
        from benchmark.run.tracking import Tracker

        _SERVICES[(env, None)] = Tracker(env.tracking_uri, lock_dir=_cache_root(env) / "locks")
    key = (env, backbone)
    if key not in _SERVICES:
        # Cells come ordered by backbone (`build_plan`): a worker moving on to the next frees the previous model.
        for old in [k for k in _SERVICES if k[0] == env and k[1] not in (None, backbone)]:
            del _SERVICES[old]
        _SERVICES[key] = build_context(env, backbone)
    return _SERVICES[(env, None)], _SERVICES[key]


def execute_cell(spec_json: str, label: str, parent_id: str | None, env: WorkerEnv) -> CellStatus:
    """Run one cell and log it; never raises for a cell's own failure."""
    from benchmark.registry import PROTOCOLS

    spec = RunSpec.from_json(spec_json)
    start = time.perf_counter()
    tracker, ctx = _services(env, spec.backbone)
    run_id, conflict = open_claimed_cell(tracker, spec, parent_id, label, force=env.force, tags=ctx.clip.tags)
    if run_id is None:
        log.info("%s %s seed %d: %s by another sweep; not run here", label, spec.dataset, spec.seed, conflict)
        return CellStatus(spec.run_key, label, ok=True, claimed=conflict)
    epochs = EpochBuffer(tracker, run_id)
    ctx.on_epoch = epochs.add
    status = CellStatus(spec.run_key, label, ok=False, run_id=run_id)
    began = time.perf_counter()  # the cell itself, without this worker's one-time set-up
    closed = False  # the run is FINISHED: nothing below may mark it otherwise
    heartbeat = Heartbeat(tracker, run_id)
    try:
        if ctx.clip.identity != spec.backbone_identity:
            raise RunFailure(
                f"this worker loaded backbone weights {ctx.clip.identity}, the cell was planned with"
                f" {spec.backbone_identity} (another file or revision on this host)"
            )
        memory = PeakMemory(str(ctx.clip.device))
        output = PROTOCOLS.get(spec.protocol).run(spec, ctx)
        add_cost_rows(output, spec.dataset, memory.peak_mb())
        epochs.flush()
        # A NaN row is an evaluation the method cannot make (shown n/a); MLflow gets no metric for it.
        metrics = {r.metric_key(spec.dataset): r.value for r in output.results if not math.isnan(r.value)}
        tracker.log_results(run_id, metrics, {**output.tags, "device": str(ctx.clip.device)})
        with tempfile.TemporaryDirectory() as tmp:
            figures = time.perf_counter() - began >= FIGURE_MIN_CELL_S
            write_artifacts(Path(tmp), spec, output, device=str(ctx.clip.device), figures=figures)
            tracker.log_artifacts(run_id, Path(tmp))
        tracker.finish(run_id)
        closed = True
        status.ok, status.metrics = True, metrics
    except KeyboardInterrupt:
        if not closed:
            try:
                tracker.fail(run_id, "interrupted", "KILLED")
            finally:
                epochs.flush(quietly=True)
        raise
    except (RunFailure, UsageError) as exc:
        status.reason = str(exc)
    except Exception as exc:  # noqa: BLE001 - any crash of a cell is recorded, the sweep goes on
        status.reason = _describe_crash(exc)
        log.debug("cell %s crashed:\n%s", spec.run_key, traceback.format_exc())
    finally:
        heartbeat.stop()
        ctx.on_epoch = None
        status.seconds = time.perf_counter() - start
    if not status.ok:
        try:
            tracker.fail(run_id, status.reason)
        finally:
            epochs.flush(quietly=True)
        log.error("%s %s seed %d FAILED: %s", label, spec.dataset, spec.seed, status.reason)
    return status


def open_claimed_cell(
    tracker,
    spec: RunSpec,
    parent_id: str | None,
    label: str,
    *,
    force: bool = False,
    tags: dict[str, str] | None = None,
) -> tuple[str | None, str]:
    """Claim the cell and open its run: `(run_id, "")`, or `(None, "finished" | "running")`.

    The cell is not opened when another worker finished it or holds its claim (`benchmark.run.claims`).
    `force` (re-run finished cells) skips the claim: such a sweep runs every cell it was given.
    """
    claim = None
    if not force:
        claim = tracker.claim_cell(spec.protocol, spec.run_key)
        if isinstance(claim, str):
            return None, claim
    try:
        return tracker.start_cell(spec, parent_id, label=label, claim=claim, tags=tags), ""
    except BaseException:
        if claim is not None:
            from benchmark.run.claims import release_quietly

            release_quietly(tracker.client, claim)
        raise


def add_cost_rows(output, dataset: str, peak_mem_mb: float) -> None:
    """Append the cell's cost (`benchmark.core.cost`) to its result rows (subset `run`)."""
    from benchmark.plan.specs import Result

    for metric, value in {**output.cost.metrics(), "peak_mem_mb": peak_mem_mb}.items():
        output.results.append(Result(dataset, "run", metric, float(value)))  # type: ignore[arg-type]


def _describe_crash(exc: BaseException) -> str:
    import torch

    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower():
        return f"out of memory: {str(exc).splitlines()[0][:300]}"
    return exception_line(exc)


def exception_line(exc: BaseException) -> str:
    """`TypeName: first line of the message` (at most 300 characters of it): a failure reason tag."""
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"


def write_artifacts(folder: Path, spec: RunSpec, output, *, device: str = "unknown", figures: bool = True) -> None:
    """Write the per-run files a finished run carries; see `benchmark.results.artifacts` for the list."""
    from benchmark.results.artifacts import write_run_artifacts

    write_run_artifacts(folder, spec, output, device=device, figures=figures)
