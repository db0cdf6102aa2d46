"""RunSpec (what determines a result), its run_key, and the Result rows a run produces.

Everything that changes a number is in the RunSpec: the method and its resolved config, the
protocol, datasets, seed, shots, profile, backbone identity, split-file digests, the harness
version and the numerics versions (the method's and the harness's). `run_key` is a stable hash of
it; resume skips run_keys that already have a FINISHED run.
Options that cannot change a number (fast-path switches, executor, progress bars) are not in it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

# val: the few-shot validation draw (tuning, never reported); run: a measurement of the whole run (its cost)
Subset = Literal["all", "base", "new", "val", "run"]
# acc: top-1 accuracy (%); ece: expected calibration error (%); nll: mean negative log-likelihood (nats);
# the rest are the run's cost (`benchmark.core.cost`), rows of subset `run`.
Metric = Literal[
    "acc", "ece", "nll", "params", "train_s", "eval_s", "train_ips", "eval_ips", "cache_fill_s", "peak_mem_mb"
]
COST_METRICS = ("params", "train_s", "eval_s", "train_ips", "eval_ips", "cache_fill_s", "peak_mem_mb")

# The numerics version of the code every method shares (sampling, training views, the training loop,
# evaluation). Part of every run_key through `RunSpec.numerics`: raise it whenever a change there alters
# numbers, so runs stored before the change stop counting on resume. 2: training views depend on the run
# seed, and zero-shot runs once per dataset instead of once per seed.
NUMERICS_VERSION = 2


@dataclass(frozen=True)
class RunSpec:
    """One cell of a sweep.

    Attributes:
        method: registry name.
        preset: the preset the config started from.
        overrides: `--set` overrides applied on top of the preset, sorted (key, value) pairs.
        method_config: the resolved method config as a plain dict.
        train_config: the resolved TrainConfig as a plain dict.
        protocol: canonical protocol name (a `benchmark.registry.PROTOCOLS` key).
        dataset: the training dataset (b2n dataset, xd/dg source).
        targets: datasets evaluated besides the training one (xd/dg), in order.
        seed: data and init seed.
        shots: training images per class (Dassl NUM_SHOTS).
        profile: "world" or "paper".
        backbone: backbone label ("world", "ViT-B-16:openai").
        backbone_identity: what identifies the weights (checkpoint digest or pretrained tag).
        split_digests: (dataset, sha256 of its split file) for every dataset the cell reads.
        captions: "captioner/encoder" when the method uses captions, else "".
        harness_version: the package version.
        numerics: "method=N;harness=M", the method's `numerics_version` and `NUMERICS_VERSION`
            (see `numerics_label`): raised when a change alters numbers, so old runs stop counting.
    """

    method: str
    preset: str
    overrides: tuple[tuple[str, str], ...]
    method_config: dict[str, Any] = field(hash=False)
    train_config: dict[str, Any] = field(hash=False)
    protocol: str
    dataset: str
    targets: tuple[str, ...]
    seed: int
    shots: int
    profile: str
    backbone: str
    backbone_identity: str
    split_digests: tuple[tuple[str, str], ...]
    captions: str
    harness_version: str
    numerics: str

    @staticmethod
    def numerics_label(method: str, method_numerics_version: int, plugin: str | None = None) -> str:
        """The `numerics` field of a cell of `method`: its own numerics version and the harness's.

        A plugin method adds its package (`plugin=name==version`), so a new plugin release gets new run_keys:
        resume never keeps runs of the old code.
        """
        label = f"{method}={method_numerics_version};harness={NUMERICS_VERSION}"
        return f"{label};plugin={plugin}" if plugin else label

    @property
    def run_key(self) -> str:
        """Stable 16-hex-digit hash of everything that determines the result."""
        payload = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"), default=list)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @property
    def variant(self) -> str:
        """Preset plus a short hash of overrides: distinguishes configurations in leaderboards."""
        if not self.overrides:
            return self.preset
        digest = hashlib.sha256(json.dumps(self.overrides).encode()).hexdigest()[:6]
        return f"{self.preset}+{digest}"

    def to_json(self) -> str:
        """Serialise (for workers and artifacts)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        """Inverse of `to_json`."""
        data = json.loads(text)
        data["overrides"] = tuple(tuple(pair) for pair in data["overrides"])
        data["targets"] = tuple(data["targets"])
        data["split_digests"] = tuple(tuple(pair) for pair in data["split_digests"])
        data.setdefault("numerics", "")  # specs written before the field existed
        return cls(**data)

    def tags(self) -> dict[str, str]:
        """The MLflow tags of the run."""
        return {
            "method": self.method,
            "preset": self.preset,
            "variant": self.variant,
            "protocol": self.protocol,
            "dataset": self.dataset,
            "targets": ",".join(self.targets),
            "eval_datasets": ",".join((self.dataset, *self.targets)),
            "seed": str(self.seed),
            "shots": str(self.shots),
            "backbone": self.backbone,
            "backbone_identity": self.backbone_identity,
            "profile": self.profile,
            "run_key": self.run_key,
            "captions": self.captions,
            "harness_version": self.harness_version,
            "numerics": self.numerics,
        }


@dataclass(frozen=True)
class Result:
    """One raw measurement of a run; leaderboards (HM, seed means, averages) are pivots of these."""

    eval_dataset: str
    subset: Subset
    metric: Metric
    value: float  # accuracy and ECE in percent (0-100), NLL in nats, cost in its unit (`benchmark.core.cost`)

    def metric_key(self, train_dataset: str) -> str:
        """MLflow metric name: `acc_base`; `acc_all/rsicd` when evaluated on another dataset.

        The metrics are a view for the MLflow UI; leaderboards read the rows of `results.json`.
        """
        if self.subset == "run":
            return self.metric
        base = f"{self.metric}_{self.subset}"
        return base if self.eval_dataset == train_dataset else f"{base}/{self.eval_dataset}"


LONG_COLUMNS = (
    "run_key",
    "run_id",
    "method",
    "protocol",
    "train_dataset",
    "eval_dataset",
    "subset",
    "seed",
    "shots",
    "backbone",
    "metric",
    "value",
)
