"""Atomic cell claims: at most one live worker runs a cell, across sweeps, processes and hosts.

Why: a worker that checks for a running or finished run and then creates its own leaves a gap; two
workers that reach one cell in the same instant both pass the check and both train it. On a cluster
with hundreds of array tasks that is not rare.

How: a claim is a version of the registered model `cell-claims.<protocol>` in the tracking store's
own model registry, tagged with the cell's run_key and its worker's liveness (host, lock file,
heartbeat). The store numbers the versions of a model inside one transaction (max + 1 under the
(name, version) primary key) and never reuses a number (a deleted version stays as a soft-deleted
row), so a claim created after another one was committed always has the higher version. A worker
that has created its claim lists the cell's claims again and holds the cell only when no live claim
has a lower version; otherwise it withdraws. Of two claims created in the same instant, the later
one always sees the earlier (lower) one, so exactly one of them keeps the cell, whoever sees whom.
It then checks that the cell has no FINISHED run (another worker may have finished and released it
between the first look and the claim) and withdraws if it has.

A released claim is deleted (the registry then lists exactly the cells in flight). A claim whose
worker is gone (its lock file no longer held on this host, or no heartbeat for `STALE_HEARTBEAT_S`
from another host) is deleted by the next worker that looks. Everything goes through the MLflow
client, so it works on a SQLite store, through the sweep's own server and through any MLflow server
with a SQL backend.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

CLAIMS_MODEL = "cell-claims.{protocol}"
LOCKED_RETRIES = 20  # "database is locked" answers from a SQLite store under contention, retried


@dataclass(frozen=True)
class CellClaim:
    """A claim held on one cell: the registry model version that stands for it."""

    model: str
    version: str
    run_key: str


def claims_model(protocol: str) -> str:
    """The registered model whose versions are the claims of a protocol's cells."""
    return CLAIMS_MODEL.format(protocol=protocol)


def _retry_locked(call: Callable[[], Any]) -> Any:
    """`call()`, retried while a SQLite store answers "database is locked" (several writers at once)."""
    for attempt in range(LOCKED_RETRIES):
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - only the lock error is retried
            if "database is locked" not in str(exc) or attempt == LOCKED_RETRIES - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def _ensure_model(client, model: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        _retry_locked(lambda: client.get_registered_model(model))
        return
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
    try:
        _retry_locked(
            lambda: client.create_registered_model(
                model, description="Cells benchmark workers are running right now: one version per claimed cell."
            )
        )
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":  # another worker created it first
            raise


def _claims(client, model: str, run_key: str) -> list[Any]:
    """The cell's current (not deleted) claims, lowest version first."""
    found = _retry_locked(
        lambda: client.search_model_versions(f"name = '{model}' and tags.run_key = '{run_key}'", max_results=1000)
    )
    return sorted(found, key=lambda version: int(version.version))


def _release(client, model: str, version: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        _retry_locked(lambda: client.delete_model_version(model, version))
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":  # already removed as stale by another worker
            raise


def take_claim(
    client,
    protocol: str,
    run_key: str,
    holder: dict[str, str],
    *,
    alive: Callable[[dict[str, str]], bool],
    finished: Callable[[], bool],
) -> CellClaim | str:
    """Claim a cell for this worker, or say why not.

    Args:
        client: an `MlflowClient` on the tracking store.
        protocol: the cell's protocol (one claims model per protocol).
        run_key: the cell.
        holder: this worker's liveness tags (`worker_host`, `worker_lock`, `heartbeat`).
        alive: whether the worker of a claim (given its tags) still lives.
        finished: whether the cell has a FINISHED run now.

    Returns:
        The claim, or "running" (a live worker holds the cell) or "finished".
    """
    model = claims_model(protocol)
    _ensure_model(client, model)
    for claim in _claims(client, model, run_key):
        if alive(claim.tags):
            return "running"
        log.info("removing the claim of a dead worker on %s (version %s)", run_key, claim.version)
        _release(client, model, claim.version)
    tags = {"run_key": run_key, **holder}
    mine = _retry_locked(
        lambda: client.create_model_version(model, source=f"claim:/{protocol}/{run_key}", tags=tags)
    ).version
    try:
        for claim in _claims(client, model, run_key):
            if int(claim.version) >= int(mine):
                continue
            if claim.tags.get("worker_lock") == holder.get("worker_lock"):
                _release(client, model, claim.version)  # our own, from a create the client retried
            elif alive(claim.tags):
                _release(client, model, mine)  # an earlier claim is live: it keeps the cell
                return "running"
        if finished():
            _release(client, model, mine)
            return "finished"
    except BaseException:
        release_quietly(client, CellClaim(model, str(mine), run_key))  # never leave a claim nobody will release
        raise
    return CellClaim(model, str(mine), run_key)


def release_claim(client, claim: CellClaim) -> None:
    """Give a cell back (after its run is closed, FINISHED or not)."""
    _release(client, claim.model, claim.version)


def release_quietly(client, claim: CellClaim) -> None:
    """`release_claim`, logging instead of raising: a claim left behind expires with its worker."""
    try:
        release_claim(client, claim)
    except Exception as exc:  # noqa: BLE001 - the run's own outcome matters more than its claim
        log.warning("could not release the claim on %s (version %s): %s", claim.run_key, claim.version, exc)


def touch_claim(client, claim: CellClaim, heartbeat: str) -> None:
    """Refresh a claim's heartbeat, so workers on other hosts keep seeing it live."""
    _retry_locked(lambda: client.set_model_version_tag(claim.model, claim.version, "heartbeat", heartbeat))
