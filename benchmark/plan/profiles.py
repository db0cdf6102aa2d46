"""Profiles: which backbone, datasets and caption models a run uses by default.

* `world` (default): the tiny CLIP pretrained on the embedded RS world and the world's datasets,
  generated on first use under the cache; runs on any CPU, offline.
* `paper`: open_clip ViT-B/16 (OpenAI weights), PatternNet, RSICD, RESISC45, MLRSNet and their v2
  sets from a user data root with the public split files, plus the RS scene datasets peer few-shot
  benchmarks use (EuroSAT, UC Merced, AID, WHU-RS19, RSSCN7, OPTIMAL-31, RSI-CB256); BLIP-2 captions
  encoded by BERT.

A profile is data: which datasets a protocol runs on by default is an entry of `protocol_datasets`
keyed by the protocol's name (a protocol without one runs on `default_datasets`), so adding a protocol
never edits this file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from benchmark.data.catalog import DatasetSpec
from benchmark.errors import UsageError
from benchmark.registry import unknown_name_message


@dataclass(frozen=True)
class Profile:
    """A named bundle of defaults, as data: backbone, datasets, caption models and per-protocol datasets.

    Attributes:
        name: the profile's name (`--profile`).
        backbone: the default backbone label.
        datasets: every dataset the profile knows, by key.
        default_datasets: what a protocol without its own entry in `protocol_datasets` runs on.
        protocol_datasets: protocol name -> its default `--datasets` (for a source-to-targets protocol,
            the source first, then the targets, exactly as `--datasets` takes them).
        captioner: caption model of methods that use captions.
        caption_encoder: the text encoder of those captions.
        generated: the data is generated on first use (world), not read from a user's root.
        seeds: default seeds of a sweep.
    """

    name: str
    backbone: str
    datasets: dict[str, DatasetSpec]
    default_datasets: tuple[str, ...]
    protocol_datasets: dict[str, tuple[str, ...]]
    captioner: str
    caption_encoder: str
    generated: bool = False  # the data is generated on first use (world), not read from a user's root
    seeds: tuple[int, ...] = (1, 2, 3)  # default seeds of a sweep: the field's 1,2,3; more where runs are cheap

    def datasets_for(self, protocol: str) -> tuple[str, ...]:
        """The default `--datasets` of a protocol on this profile."""
        return self.protocol_datasets.get(protocol, self.default_datasets)

    def dataset_name(self, name: str) -> str:
        """The dataset's key as the profile spells it (`RSICD` -> `rsicd`); UsageError with suggestions when unknown."""
        if name in self.datasets:
            return name
        if name.lower() in self.datasets:
            return name.lower()
        raise UsageError(unknown_name_message(f"{self.name} dataset", name, self.datasets))

    def dataset(self, name: str) -> DatasetSpec:
        """The spec of dataset `name`, any case (UsageError with suggestions when unknown)."""
        return self.datasets[self.dataset_name(name)]

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


MAIN_PAPER_DATASETS = ("patternnet", "rsicd", "resisc45", "mlrsnet")
# The RS scene datasets the few-shot benchmarks of the field report besides the main four.
PEER_DATASETS = ("eurosat", "ucmerced", "aid", "whurs19", "rsscn7", "optimal31", "rsicb256")


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
    # The world declares each protocol's datasets as a list, or as {"source", "targets"}.
    per_protocol = {
        name: (entry["source"], *entry["targets"]) if isinstance(entry, dict) else tuple(entry)
        for name, entry in WORLD_PROTOCOLS.items()
    }
    main = ("patternnet", "rsicd", "resisc45", "mlrsnet")
    return Profile(
        name="world",
        backbone="world",
        datasets=specs,
        default_datasets=main,
        protocol_datasets=per_protocol,
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
        default_datasets=MAIN_PAPER_DATASETS,
        protocol_datasets={
            "xd": ("patternnet", "rsicd", "resisc45", "mlrsnet"),
            "dg": ("patternnetv2", "rsicdv2", "resisc45v2", "mlrsnetv2"),
            "fewshot": (*MAIN_PAPER_DATASETS, *PEER_DATASETS),
        },
        captioner="blip2",
        caption_encoder="bert-base-uncased",
    )


PROFILES = {"world": _world, "paper": _paper}


def get_profile(name: str) -> Profile:
    """Build the named profile (UsageError with suggestions when unknown)."""
    if name not in PROFILES and name.lower() in PROFILES:
        name = name.lower()
    if name not in PROFILES:
        raise UsageError(unknown_name_message("profile", name, PROFILES))
    return PROFILES[name]()
