"""Run-time services a protocol uses to execute one cell, without knowing about MLflow or files.

The runner builds one `CellContext` per worker (the backbone is loaded once and shared by the
worker's cells); protocols ask it for datasets, methods and image banks.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from benchmark.backbone import FrozenClip
from benchmark.core.shortcuts import FAST, FastPath
from benchmark.core.train import EpochLog, TrainConfig
from benchmark.data.catalog import Dataset, open_dataset
from benchmark.data.feature_cache import FeatureCache
from benchmark.data.pipeline import ImageBank
from benchmark.data.splits import Item
from benchmark.data.transforms import TransformSpec
from benchmark.plan.overrides import apply_overrides
from benchmark.plan.profiles import Profile
from benchmark.plan.specs import RunSpec
from benchmark.registry import METHODS

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch, as Dassl's `set_random_seed` does."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class CellContext:
    """Services for running cells in one process.

    Attributes:
        profile: the profile (dataset table).
        data_root: folder holding the dataset folders.
        clip: the loaded backbone.
        fast: exact shortcuts in use.
        cache: on-disk feature cache (None: in-memory only).
        captions: provider of caption embeddings, `(dataset, items) -> Tensor [N, E]`.
        on_epoch: receives per-epoch training metrics.
        progress: show per-epoch progress bars.
    """

    profile: Profile
    data_root: Path
    clip: FrozenClip
    fast: FastPath = FAST
    cache: FeatureCache | None = None
    captions: Callable[[Dataset, Sequence[Item]], torch.Tensor] | None = None
    on_epoch: Callable[[EpochLog], None] | None = None
    progress: bool = False
    allow_cpu_fp16: bool = False  # tests only: run the fp16 path on a CPU instead of falling back to fp32
    _datasets: dict[str, Dataset] = field(default_factory=dict)
    _half_clip: FrozenClip | None = None
    _warned_fp16: bool = False

    def dataset(self, name: str) -> Dataset:
        """The opened dataset `name` (split read once per process)."""
        if name not in self._datasets:
            self._datasets[name] = open_dataset(self.profile.dataset(name), self.data_root)
        return self._datasets[name]

    def train_config(self, spec: RunSpec) -> TrainConfig:
        """The resolved training configuration of a cell."""
        return TrainConfig(**spec.train_config)

    def effective_precision(self, requested: str) -> str:
        """The precision a cell runs in: fp16 only where it is real (CUDA), else fp32 with one log line."""
        if requested != "fp16" or self.clip.device.type == "cuda" or self.allow_cpu_fp16:
            return requested
        if not self._warned_fp16:
            log.warning("fp16 (the references' precision) needs CUDA; running fp32 on %s", self.clip.device)
            self._warned_fp16 = True
        return "fp32"

    def clip_for(self, precision: str) -> FrozenClip:
        """The backbone a cell of `precision` runs on: a float16 copy for fp16 (made once), else the loaded one."""
        if self.effective_precision(precision) != "fp16":
            return self.clip
        if self._half_clip is None:
            self._half_clip = self.clip.half_copy()
        return self._half_clip

    def build_method(self, spec: RunSpec, classnames: Sequence[str]):
        """Instantiate the cell's method for `classnames`, seeded like Dassl before construction.

        An fp16 cell gets the float16 backbone and float16 learnable tensors, as the references convert
        their prompt learners (and meta-nets) with `PREC: fp16`.
        """
        cls = METHODS.get(spec.method)
        cfg = apply_overrides(cls.presets[spec.preset].method, spec.method_config, where=spec.method)
        precision = self.train_config(spec).precision if cls.requirements.trainable else "fp32"
        clip = self.clip_for(precision)
        seed_everything(spec.seed)
        method = cls(clip, cfg, classnames)
        method.fast = self.fast
        method = method.to(clip.device)
        return method.half() if clip.dtype == torch.float16 else method

    def transform(self) -> TransformSpec:
        """Dassl transforms at the backbone's input size."""
        return TransformSpec(size=self.clip.image_size)

    def bank(self, dataset: Dataset, items: Sequence[Item], method) -> ImageBank:
        """An image bank serving `items` the way `method` needs them."""
        needs = type(method).config_requirements(method.cfg)
        captions = None
        if needs.captions:
            if self.captions is None:
                raise RuntimeError(f"{type(method).__name__} needs captions but no caption provider is set")
            captions = self.captions(dataset, items).to(method.clip.device, method.clip.dtype)
        return ImageBank(
            dataset,
            items,
            clip=method.clip,
            transform=self.transform(),
            use_features=self.fast.feature_cache and needs.frozen_image_path,
            need_tokens=needs.image_tokens,
            cache=self.cache,
            captions=captions,
        )
