"""Profiles: which backbone, datasets and caption models a run uses by default.

* `world` (default): the tiny CLIP pretrained on the embedded RS world and the world's datasets,
  generated on first use under the cache; runs on any CPU, offline.
* `paper`: open_clip ViT-B/16 (OpenAI weights), PatternNet, RSICD, RESISC45, MLRSNet and their v2
  sets from a user data root with the public split files, BLIP-2 captions encoded by BERT.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from benchmark.data.catalog import DatasetSpec
from benchmark.errors import UsageError
from benchmark.registry import unknown_name_message


@dataclass(frozen=True)
class ProtocolDatasets:
    """Datasets a protocol runs on by default: b2n lists datasets, xd/dg a source and targets."""

    b2n: tuple[str, ...]
    xd_source: str
    xd_targets: tuple[str, ...]
    dg_source: str
    dg_targets: tuple[str, ...]


@dataclass(frozen=True)
class Profile:
    """A named bundle of defaults (DESIGN section 2)."""

    name: str
    backbone: str
    datasets: dict[str, DatasetSpec]
    protocols: ProtocolDatasets
    captioner: str
    caption_encoder: str
    generated: bool = False  # the data is generated on first use (world), not read from a user's root
    seeds: tuple[int, ...] = (1, 2, 3)  # default seeds of a sweep: the field's 1,2,3; more where runs are cheap

    def leaderboard_order(self, protocol: str) -> tuple[str, ...]:
        """Dataset order of a protocol's leaderboard rows (b2n datasets, or the targets)."""
        p = self.protocols
        return {"b2n": p.b2n, "xd": p.xd_targets, "dg": p.dg_targets}.get(protocol, ())

    def dataset(self, name: str) -> DatasetSpec:
        """The spec of dataset `name` (UsageError with suggestions when unknown)."""
        if name not in self.datasets:
            raise UsageError(unknown_name_message(f"{self.name} dataset", name, self.datasets))
        return self.datasets[name]

    def data_root(self, override: str | Path | None = None) -> Path:
        """The folder holding the dataset folders."""
        if self.generated:
            from benchmark.paths import cache_dir
            from benchmark.world import ensure_world

            return Path(override) if override else ensure_world(cache_dir())
        root = override or os.environ.get("BENCHMARK_DATA")
        if not root:
            raise UsageError("the paper profile needs a data root: pass --data-root DIR or set BENCHMARK_DATA")
        root = Path(root).expanduser()
        if not root.is_dir():
            raise UsageError(f"data root not found: {root}")
        return root


def _world() -> Profile:
    from benchmark.world import WORLD_DATASETS, WORLD_PROTOCOLS

    specs = {
        key: DatasetSpec(
            name=key,
            folder=w.folder,
            split_file=w.split_file,
            captions_file=w.captions_file,
            classnames=tuple(w.classnames),
            source="embedded world (benchmark.world)",
        )
        for key, w in WORLD_DATASETS.items()
    }
    xd, dg = WORLD_PROTOCOLS["xd"], WORLD_PROTOCOLS["dg"]
    return Profile(
        name="world",
        backbone="world",
        datasets=specs,
        protocols=ProtocolDatasets(
            b2n=tuple(WORLD_PROTOCOLS["b2n"]),
            xd_source=xd["source"],
            xd_targets=tuple(xd["targets"]),
            dg_source=dg["source"],
            dg_targets=tuple(dg["targets"]),
        ),
        captioner="dataset",
        caption_encoder="all-minilm-l6-v2",
        generated=True,
        seeds=(1, 2, 3, 4, 5),
    )


def _paper() -> Profile:
    from benchmark.data.rs_datasets import PAPER_DATASETS

    return Profile(
        name="paper",
        backbone="ViT-B-16:openai",
        datasets=dict(PAPER_DATASETS),
        protocols=ProtocolDatasets(
            b2n=("patternnet", "rsicd", "resisc45", "mlrsnet"),
            xd_source="patternnet",
            xd_targets=("rsicd", "resisc45", "mlrsnet"),
            dg_source="patternnetv2",
            dg_targets=("rsicdv2", "resisc45v2", "mlrsnetv2"),
        ),
        captioner="blip2",
        caption_encoder="bert-base-uncased",
    )


PROFILES = {"world": _world, "paper": _paper}


def get_profile(name: str) -> Profile:
    """Build the named profile (UsageError with suggestions when unknown)."""
    if name not in PROFILES:
        raise UsageError(unknown_name_message("profile", name, PROFILES))
    return PROFILES[name]()
