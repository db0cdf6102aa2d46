"""MLflow as the system of record.

One experiment per protocol, a parent run per invocation, a child run per cell with tags, params, final
metrics, per-epoch curves and artifacts.

Everything goes through `MlflowClient` with explicit run ids (no fluent global state), so workers
can log concurrently to a tracking server. A cell's run is FINISHED only after its metrics and
artifacts are logged; a run left RUNNING by a killed worker is found stale (its lock file is no
longer held, or its heartbeat is old) and marked KILLED, never counted.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.plan.specs import RunSpec
from benchmark.run.claims import CellClaim, release_quietly, take_claim, touch_claim
from benchmark.run.liveness import STALE_HEARTBEAT_S, WorkerLock, now_ms, worker_alive, worker_tags
from benchmark.run.store import artifacts_root, check_tracking_uri, ensure_store

__all__ = ["FinishedRun", "Tracker", "check_tracking_uri", "ensure_store"]

log = logging.getLogger(__name__)


@dataclass
class FinishedRun:
    """What the leaderboard needs of a finished cell run."""

    run_id: str
    tags: dict[str, str]
    metrics: dict[str, float]
    end_time: int
    results: list[dict[str, Any]] | None = None  # the rows of its `results.json` (None: not read)
    params: dict[str, str] = field(default_factory=dict)  # its resolved configuration (`open_run`)


class Tracker:
    """Thin typed facade over `MlflowClient`."""

    def __init__(self, uri: str, *, lock_dir: Path | None = None) -> None:
        from mlflow import MlflowClient

        # MLflow prints a "View run at <url>" line to stdout for every run closed through a server.
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        ensure_store(uri)
        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)  # claims live in this store's registry
        self._lock: WorkerLock | None = None
        self._lock_dir = lock_dir
        self._experiments: dict[str, str] = {}  # protocol -> id, once found (a worker asks per cell)
        self._claims: dict[str, CellClaim] = {}  # run id -> the claim it runs under, released when it closes

    # -- experiments ------------------------------------------------------------------------------
    def _artifact_location(self, name: str) -> str | None:
        if self.uri.startswith("sqlite:///"):
            return f"{artifacts_root(Path(self.uri.removeprefix('sqlite:///')))}/{name}"
        return None

    def experiment_id(self, protocol: str, *, create: bool = True) -> str | None:
        """The experiment of a protocol (created on first use unless `create` is False)."""
        if protocol not in self._experiments:
            found = self._find_or_create(protocol, create)
            if found is None:
                return None
            self._experiments[protocol] = found
        return self._experiments[protocol]

    def _find_or_create(self, protocol: str, create: bool) -> str | None:
        experiment = self.client.get_experiment_by_name(protocol)
        if experiment is not None:
            return experiment.experiment_id
        if not create:
            return None
        try:
            return self.client.create_experiment(protocol, artifact_location=self._artifact_location(protocol))
        except Exception:  # noqa: BLE001 - another process created it first
            experiment = self.client.get_experiment_by_name(protocol)
            if experiment is None:
                raise
            return experiment.experiment_id

    def _search(self, experiment_id: str, filter_string: str) -> Iterator[Any]:
        token = None
        while True:
            page = self.client.search_runs(
                [experiment_id], filter_string=filter_string, max_results=5000, page_token=token
            )
            yield from page
            token = page.token
            if not token:
                return

    # -- reading ----------------------------------------------------------------------------------
    def finished_runs(
        self, protocol: str, *, profile: str | None = None, with_results: bool = False
    ) -> list[FinishedRun]:
        """FINISHED cell runs of a protocol (of one profile, if given), latest per run_key.

        A run_key is never counted twice. `with_results` reads each run's result rows from its
        `results.json` artifact (what leaderboards are built from); a run without one is skipped with a
        warning.
        """
        experiment_id = self.experiment_id(protocol, create=False)
        if experiment_id is None:
            return []
        latest: dict[str, FinishedRun] = {}
        for run in self._search(experiment_id, "attributes.status = 'FINISHED' and tags.kind = 'cell'"):
            if profile is not None and run.data.tags.get("profile") != profile:
                continue
            key = run.data.tags.get("run_key")
            entry = FinishedRun(
                run.info.run_id,
                dict(run.data.tags),
                dict(run.data.metrics),
                run.info.end_time or 0,
                params=dict(run.data.params),
            )
            if key and (key not in latest or entry.end_time > latest[key].end_time):
                latest[key] = entry
        runs = list(latest.values())
        if with_results:
            runs = [run for run in runs if self._load_results(run)]
        return runs

    def _load_results(self, run: FinishedRun) -> bool:
        """Fill `run.results` from its `results.json`; False (with a warning) when it cannot be read."""
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per run is noise
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = self.client.download_artifacts(run.run_id, "results.json", tmp)
                run.results = json.loads(Path(path).read_text())["results"]
            except Exception as exc:  # noqa: BLE001 - a run without readable rows cannot be counted
                log.warning("run %s has no readable results.json (%s); it is left out", run.run_id, exc)
                return False
        return True

    def finished_keys(self, protocol: str) -> set[str]:
        """run_keys that already have a FINISHED run."""
        return {run.tags["run_key"] for run in self.finished_runs(protocol)}

    # -- writing ----------------------------------------------------------------------------------
    def _lock_folder(self) -> Path:
        from benchmark.paths import cache_dir

        return self._lock_dir or cache_dir() / "locks"

    def _worker_tags(self) -> dict[str, str]:
        if self._lock is None:
            self._lock = WorkerLock(self._lock_folder())
        return worker_tags(self._lock)

    def start_parent(self, protocol: str, tags: dict[str, str]) -> str:
        """Open the parent run of a `benchmark run` invocation."""
        experiment_id = self.experiment_id(protocol)
        run = self.client.create_run(
            experiment_id, tags={**tags, "kind": "sweep", **self._worker_tags()}, run_name=f"sweep {protocol}"
        )
        return run.info.run_id

    def start_cell(
        self,
        spec: RunSpec,
        parent_id: str | None,
        *,
        label: str,
        claim: CellClaim | None = None,
        tags: dict[str, str] | None = None,
    ) -> str:
        """Open a cell's run with its tags and resolved config as params.

        With a `claim` (`claim_cell`), the claim is kept alive by the run's heartbeats and released when
        the run is closed (`finish`, `fail`). `tags` adds tags of the worker's state (the loaded weights').
        """
        from mlflow.entities import Param

        experiment_id = self.experiment_id(spec.protocol)
        from benchmark.results.artifacts import git_sha

        tags = {**spec.tags(), **(tags or {}), "label": label, "kind": "cell", "git_sha": git_sha()}
        tags.update(self._worker_tags())
        if parent_id:
            tags["mlflow.parentRunId"] = parent_id
        if claim is not None:
            tags["claim"] = f"{claim.model} v{claim.version}"
        name = f"{label} {spec.dataset} seed{spec.seed}"
        run = self.client.create_run(experiment_id, tags=tags, run_name=name)
        if claim is not None:
            self._claims[run.info.run_id] = claim
        params = [Param("preset", spec.preset)]
        params += [Param(f"method.{k}", _param(v)) for k, v in sorted(spec.method_config.items())]
        params += [Param(f"train.{k}", _param(v)) for k, v in sorted(spec.train_config.items())]
        params += [Param(f"override.{k}", str(v)) for k, v in spec.overrides]
        self.client.log_batch(run.info.run_id, params=params)
        return run.info.run_id

    def log_epochs(self, run_id: str, epochs: list[tuple[int, dict[str, float], int]]) -> None:
        """Several epochs' metrics, each (epoch = step, values, timestamp in ms), plus a heartbeat tag.

        Sent in as few requests as MLflow allows (at most 1000 metrics per `log_batch`).
        """
        from mlflow.entities import Metric, RunTag

        metrics = [Metric(k, float(v), stamp, epoch) for epoch, values, stamp in epochs for k, v in values.items()]
        heartbeat = [RunTag("heartbeat", str(now_ms()))]
        if run_id in self._claims:
            touch_claim(self.client, self._claims[run_id], heartbeat[0].value)
        for start in range(0, max(len(metrics), 1), 1000):
            self.client.log_batch(run_id, metrics=metrics[start : start + 1000], tags=heartbeat)
            heartbeat = []

    def log_results(self, run_id: str, metrics: dict[str, float], tags: dict[str, str]) -> None:
        """Final metrics and extra tags of a cell."""
        from mlflow.entities import Metric, RunTag

        now = now_ms()
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
            tags=[RunTag(k, str(v)[:5000]) for k, v in tags.items()],
        )

    def log_artifacts(self, run_id: str, folder: Path) -> None:
        """Upload every file of `folder` as the run's artifacts."""
        self.client.log_artifacts(run_id, str(folder))

    def finish(self, run_id: str) -> None:
        """Mark a run FINISHED (only after everything is logged), then release its claim."""
        self.client.set_terminated(run_id, "FINISHED")
        self._release(run_id)

    def fail(self, run_id: str, reason: str, status: str = "FAILED") -> None:
        """Mark a run FAILED (or KILLED) with the reason as a tag, then release its claim."""
        try:
            try:
                self.client.set_tag(run_id, "failure_reason", reason[:5000])
            finally:
                self.client.set_terminated(run_id, status)
        finally:
            self._release(run_id)

    def _release(self, run_id: str) -> None:
        claim = self._claims.pop(run_id, None)
        if claim is not None:
            release_quietly(self.client, claim)

    def heartbeat(self, run_id: str) -> None:
        """Tell workers on other hosts that this run (and its claim) is alive."""
        stamp = str(now_ms())
        self.client.set_tag(run_id, "heartbeat", stamp)
        if run_id in self._claims:
            touch_claim(self.client, self._claims[run_id], stamp)

    def _release_dead_claim(self, tags: dict[str, str]) -> None:
        """Release the claim a dead worker's run was opened under (its `claim` tag), if it is still there.

        A worker that still lives (a cancelled Ray task or SLURM job may go on) keeps its claim.
        """
        model, _, version = tags.get("claim", "").rpartition(" v")
        if model and version and not worker_alive(tags):
            release_quietly(self.client, CellClaim(model, version, tags.get("run_key", "")))

    def claim_cell(self, protocol: str, run_key: str, *, stale_after_s: float = STALE_HEARTBEAT_S) -> CellClaim | str:
        """Take the cell's claim (`benchmark.run.claims`) or say why not: "finished" or "running".

        A live RUNNING run without a claim (opened by a harness without claims) also counts as running.
        """
        conflict = self.claim_conflict(protocol, run_key, stale_after_s=stale_after_s)
        if conflict:
            return conflict
        self.experiment_id(protocol)
        return take_claim(
            self.client,
            protocol,
            run_key,
            self._worker_tags(),
            alive=lambda tags: worker_alive(tags, stale_after_s),
            finished=lambda: self.claim_conflict(protocol, run_key, stale_after_s=stale_after_s) == "finished",
        )

    def mark_stale(self, protocol: str, *, stale_after_s: float = STALE_HEARTBEAT_S) -> set[str]:
        """Mark RUNNING runs whose worker is gone as KILLED.

        Returns:
            The run_keys of cells that live workers (of this or another sweep) are running right now.
        """
        experiment_id = self.experiment_id(protocol, create=False)
        if experiment_id is None:
            return set()
        stale, live = 0, set()
        for run in self._search(experiment_id, "attributes.status = 'RUNNING'"):
            tags = run.data.tags
            if not worker_alive(tags, stale_after_s):
                self.fail(run.info.run_id, "worker died (killed or crashed) before the run finished", "KILLED")
                self._release_dead_claim(tags)
                stale += 1
            elif tags.get("kind") == "cell":
                live.add(tags["run_key"])
        if stale:
            log.warning("marked %d stale run(s) of %s as KILLED", stale, protocol)
        WorkerLock.prune(self._lock_folder())
        return live

    def claim_conflict(self, protocol: str, run_key: str, *, stale_after_s: float = STALE_HEARTBEAT_S) -> str:
        """What the cell's runs say: "finished", "running" (by a live worker), or "" (no run in the way).

        A look, not a claim: `claim_cell` is the atomic step.
        """
        experiment_id = self.experiment_id(protocol, create=False)
        if experiment_id is None:
            return ""
        query = f"tags.run_key = '{run_key}' and tags.kind = 'cell'"
        running = False
        for run in self._search(experiment_id, query):
            if run.info.status == "FINISHED":
                return "finished"
            running |= run.info.status == "RUNNING" and worker_alive(run.data.tags, stale_after_s)
        return "running" if running else ""

    def fail_open_cells(self, parent_id: str, run_key: str, reason: str, status: str = "FAILED") -> list[str]:
        """Mark the still-RUNNING runs of cell `run_key` under sweep `parent_id` as failed.

        Executors call this when a worker died while running the cell (killed, segfault, lost node):
        the worker could not close its own run, and the driver knows which cell it was running.
        """
        experiment_id = self.client.get_run(parent_id).info.experiment_id
        query = f"attributes.status = 'RUNNING' and tags.run_key = '{run_key}'"
        failed = []
        for run in self._search(experiment_id, query):
            if run.data.tags.get("mlflow.parentRunId") == parent_id:
                self.fail(run.info.run_id, reason, status)
                self._release_dead_claim(run.data.tags)
                failed.append(run.info.run_id)
        return failed


def _param(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (list, tuple, dict)) else str(value)
