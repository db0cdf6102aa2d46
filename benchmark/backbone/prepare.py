"""A backbone checked before a sweep's first cell: its file fetched, its digest trusted, its keys audited.

Why a step of its own: a missing file, an untrusted digest or a checkpoint that leaves a tower at its random
initialisation must stop the sweep with one line before any cell, not fail every cell in every worker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from benchmark.backbone.audit import WeightReport
from benchmark.backbone.load import NAMED, BackboneSpec, backbone_identity, file_identity, weights_file
from benchmark.backbone.weights import audit_file
from benchmark.errors import UsageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedBackbone:
    """What a sweep knows of a backbone before any cell: its identity and the checks of its weights file.

    Attributes:
        identity: `backbone_identity` (the run keys' part).
        sha256: the digest of the weights file ('' for tags, embedded and random weights, or a file not fetched).
        report: the audit of the file's keys (None without a file).
        tags: the run tags the load will add (`backbone_sha256`, and `partial_weights` for an allowed partial file).
    """

    identity: str
    sha256: str = ""
    report: WeightReport | None = None
    tags: dict[str, str] = field(default_factory=dict)


def prepare_backbone(spec: BackboneSpec, *, require: bool = True, allow_partial: bool = False) -> PreparedBackbone:
    """Everything about a backbone that can fail, checked before a sweep's first cell, without loading weights.

    Fetches a named backbone's hub file (`require=False`, a dry run: only a cached one), checks its digest
    against the trusted one and audits the file's keys against the architecture (names and shapes only).

    Args:
        spec: a parsed, validated backbone.
        require: raise for a problem; False (a dry run) logs it as a warning instead and fetches nothing.
        allow_partial: `--allow-partial-weights`: a file with missing or unexpected keys passes the audit.

    Raises:
        UsageError: the file cannot be had, its digest is not the trusted one, or it does not fill the architecture.
    """
    try:
        found = weights_file(spec, fetch=require)
    except UsageError as exc:
        if require:
            raise
        log.warning("a run would stop here: %s", exc)
        return PreparedBackbone(file_identity(spec, None) if spec.kind == NAMED else spec.label)
    if found is None:
        identity = backbone_identity(spec, fetch=False)
        if not require and spec.kind == NAMED:
            log.warning(
                "backbone %s is not cached and a dry run downloads nothing: its cells' run_keys are provisional "
                "(identity %s); a real run fetches the file and keys them by its digest",
                spec.label,
                identity,
            )
        return PreparedBackbone(identity)
    entry = spec.entry
    try:
        report = audit_file(
            spec.model,
            found.path,
            quick_gelu=bool(entry and entry.quick_gelu),
            label=spec.label,
            allow_partial=allow_partial,
        )
    except UsageError as exc:
        if require:
            raise
        log.warning("a run would stop here: %s", exc)
        report = None
    tags = {"backbone_sha256": found.sha256, **(report.tags() if report else {})}
    return PreparedBackbone(file_identity(spec, found), found.sha256, report, tags)
