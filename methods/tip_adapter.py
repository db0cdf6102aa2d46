"""Tip-Adapter and Tip-Adapter-F (Zhang et al., "Tip-Adapter: Training-free Adaption of CLIP...", ECCV 2022).

A key-value cache built from the few-shot training set is added to zero-shot CLIP:
keys = L2-normalised image features of the training images (averaged over `augment_epoch` augmented passes
*before* normalising), values = one-hot labels, and

    logits = 100 * f @ W.T + alpha * exp(-beta * (1 - f @ keys.T)) @ values

for the normalised test feature f and the hand-written-prompt classifier W. The training-free model only
searches alpha and beta on validation shots; -F makes the keys a trainable linear layer initialised from the
cache (AdamW, cosine per iteration) and searches alpha and beta after training.

Checked against gaopengcuhk/Tip-Adapter @ d0e2d6f (`main.py`, `utils.py`; parity fixtures
tip_adapter_A, tip_adapter_B (7-template ensemble) and tip_adapter_F_A):
* the CLIP term uses the constant 100, not CLIP's `logit_scale` (equal for OpenAI CLIP, not for others);
* W: per class, the normalised features of every template, averaged, normalised again;
* alpha/beta grid: beta_i = i * (beta_max - 0.1) / n_beta + 0.1, i < n_beta (the maximum itself is never
  tried), alpha likewise; beta outer, alpha inner; the first strictly better accuracy wins, from (0, 0);
* -F trains with alpha/beta at their initial values; the search runs after training, with the adapter.
Its image tower is frozen, so it runs on cached features.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.backbone import FrozenClip
from benchmark.core.method import Batch, Preset, PromptMethod, Requirements, normalize
from benchmark.core.train import BatchSource, TrainConfig, view_for_epoch
from benchmark.data.transforms import TEST_VIEW
from benchmark.registry import METHODS

log = logging.getLogger(__name__)

_CHUNK = 256  # the reference's cache loader batch


@dataclass(frozen=True)
class TipAdapterConfig:
    """Tip-Adapter's `configs/<dataset>.yaml` options (EuroSAT's by default).

    Attributes:
        templates: hand-written prompts (`{}` = class name, `_` read as a space); the reference's EuroSAT
            template, its only remote-sensing dataset.
        clip_scale: multiplier of the zero-shot cosines (the reference's constant 100).
        init_alpha: residual ratio of the cache logits before (and, for -F, during) training.
        init_beta: sharpness of the affinities before (and during) training.
        search: search alpha and beta on the validation shots (`search_hp`).
        search_scale: (largest beta, largest alpha) of the grid (never reached: see the module docstring).
        search_step: (beta values, alpha values) of the grid.
        augment_epoch: augmented passes over the training set averaged into the cache keys.
        finetune: Tip-Adapter-F: the cache keys are trained (gradient training); otherwise nothing is.
    """

    templates: tuple[str, ...] = ("a centered satellite photo of {}.",)
    clip_scale: float = 100.0
    init_alpha: float = 2.0
    init_beta: float = 1.0
    search: bool = True
    search_scale: tuple[float, float] = (12.0, 10.0)
    search_step: tuple[int, int] = (200, 20)
    augment_epoch: int = 10
    finetune: bool = False

    def __post_init__(self) -> None:
        if not self.templates or self.augment_epoch < 1 or min(self.search_step) < 1:
            raise ValueError("Tip-Adapter needs a template, augment_epoch >= 1 and search_step >= 1")


_SOURCE = "Tip-Adapter ECCV'22, configs/eurosat.yaml (the reference's RS dataset) and main.py"
# -F: AdamW(lr, eps 1e-4, torch's default weight decay 0.01), CosineAnnealingLR per iteration, batch 256.
_PAPER_F = TrainConfig(
    epochs=100,
    batch_size=256,
    lr=0.001,
    weight_decay=0.01,
    optimizer="adamw",
    eps=1e-4,
    schedule="cosine_steps",
    warmup_epochs=0,
    selection="best_test_reported",
    precision="fp16",
)
_WORLD_F = replace(_PAPER_F, precision="fp32", aug_views=10)
_WORLD_NOTE = (
    "; schedule: the paper's (cache from 10 augmented views; -F 100 epochs of AdamW), the views fixed at 10 per "
    "image so the feature cache stays bounded on a 2-core CPU; alpha and beta are searched on the validation shots "
    "inside every run, and the -F schedule is not searched"
)
PRESETS = {
    "paper": Preset(
        TipAdapterConfig(), TrainConfig(epochs=1, precision="fp16"), _SOURCE + ": training-free, alpha/beta searched"
    ),
    "paper_f": Preset(
        TipAdapterConfig(finetune=True),
        _PAPER_F,
        _SOURCE + ": Tip-Adapter-F, 100 epochs (eurosat.yaml train_epoch), the epoch best on the test split "
        "loaded before alpha/beta are searched and every number is reported, as the reference does (leakage, "
        "labelled best_test)",
    ),
    "paper_f_val": Preset(
        TipAdapterConfig(finetune=True),
        replace(_PAPER_F, selection="best_val"),
        _SOURCE + ": Tip-Adapter-F corrected: the epoch is chosen on validation shots instead of the test split",
    ),
    "world": Preset(TipAdapterConfig(), TrainConfig(epochs=1, aug_views=10), "paper model" + _WORLD_NOTE),
    "world_f": Preset(TipAdapterConfig(finetune=True), _WORLD_F, "paper_f model (best_test)" + _WORLD_NOTE),
    "world_f_val": Preset(
        TipAdapterConfig(finetune=True),
        replace(_WORLD_F, selection="best_val"),
        "paper_f_val model (best_val)" + _WORLD_NOTE,
    ),
}


@METHODS.register("tip_adapter")
class TipAdapter(PromptMethod):
    """Zero-shot CLIP plus a few-shot key-value cache; -F trains the keys."""

    config_cls = TipAdapterConfig
    presets = PRESETS
    default_presets = {"paper": "paper", "world": "world"}
    requirements = Requirements(gradient_training=False)
    reference_names = {"adapter.weight": "cache_keys"}

    def __init__(self, clip: FrozenClip, cfg: TipAdapterConfig, classnames: Sequence[str]) -> None:
        super().__init__(clip, cfg, classnames)
        # Empty until `prepare_training`: the model is zero-shot CLIP with the reference's text classifier.
        self.cache_keys = nn.Parameter(torch.zeros(0, clip.embed_dim, device=clip.device), requires_grad=cfg.finetune)
        self.register_buffer("cache_values", torch.zeros(0, len(classnames), device=clip.device))
        self.alpha, self.beta = cfg.init_alpha, cfg.init_beta
        self.fitted_classes: tuple[str, ...] | None = None
        self.set_classnames(classnames)

    def fitted_parameter_count(self) -> int:
        """The cache keys, trained (Tip-Adapter-F) or not: the cache is what the method fits on the shots."""
        return self.cache_keys.numel()

    @classmethod
    def config_requirements(cls, cfg: TipAdapterConfig) -> Requirements:
        """Only -F takes gradient steps."""
        return replace(cls.requirements, gradient_training=cfg.finetune)

    @classmethod
    def from_reference(cls, trainer_config: dict, variant: str | None = None) -> TipAdapterConfig:
        """Our config for a reference yaml config (parity fixtures); variant "F" is Tip-Adapter-F."""
        if variant not in (None, "F"):
            raise ValueError(f"Tip-Adapter has no variant {variant!r}")
        return TipAdapterConfig(
            templates=tuple(trainer_config["template"]),
            init_alpha=float(trainer_config["init_alpha"]),
            init_beta=float(trainer_config["init_beta"]),
            search=bool(trainer_config["search_hp"]),
            search_scale=tuple(float(v) for v in trainer_config["search_scale"]),
            search_step=tuple(int(v) for v in trainer_config["search_step"]),
            augment_epoch=int(trainer_config["augment_epoch"]),
            finetune=variant == "F" or bool(trainer_config.get("finetune", False)),
        )

    @classmethod
    def config_transfer_error(cls, cfg: TipAdapterConfig) -> str | None:
        """The cache's values are one-hot over the training classes."""
        return "the Tip-Adapter cache is keyed by the training classes"

    # -- classes and text -------------------------------------------------------------------------
    def set_classnames(self, classnames: Sequence[str]) -> None:
        """New prompts; a fitted cache scores only the classes it was built for."""
        if self.fitted_classes is not None and tuple(classnames) != self.fitted_classes:
            raise ValueError(self.config_transfer_error(self.cfg))
        if self.fitted_classes is None:
            self.cache_values = self.cache_values.new_zeros(0, len(classnames))
        self.classnames = tuple(classnames)
        self.texts = [[t.format(name.replace("_", " ")) for t in self.cfg.templates] for name in classnames]
        self._fixed_text: Tensor | None = None

    def compute_class_text(self) -> Tensor:
        """Mean of the normalised template features per class (normalised again by the caller)."""
        fast = self.fast
        flat = [text for texts in self.texts for text in texts]
        feats = self.clip.encode_text(
            flat, truncate=fast.truncate_text, pooled_only=fast.pooled_rows_only, fused=fast.fused_blocks
        )
        return normalize(feats).view(len(self.texts), len(self.cfg.templates), -1).mean(dim=1)

    def text_weights(self) -> Tensor:
        """[C, D] classifier; image-independent and parameter-free, so computed once per class list."""
        if self._fixed_text is None:
            with torch.no_grad():
                self._fixed_text = normalize(self.compute_class_text())
        return self._fixed_text

    # -- the cache --------------------------------------------------------------------------------
    def _features(self, source: BatchSource, view: int) -> tuple[Tensor, Tensor]:
        """Unnormalised pooled features [N, D] and labels [N] of a whole source under one view, in order."""
        feats, labels = [], []
        with torch.no_grad():
            for start in range(0, len(source), _CHUNK):
                batch = source.batch(range(start, min(start + _CHUNK, len(source))), view)
                feats.append(self.image_features(batch).pooled)
                labels.append(batch.labels)
        return torch.cat(feats), torch.cat(labels).to(self.cache_keys.device)

    def cache_logits(self, image: Tensor, beta: float) -> Tensor:
        """exp(-beta * (1 - affinity)) @ values, written as the reference computes it."""
        affinity = F.linear(image, self.cache_keys)  # [B, N]
        return ((-1) * (beta - beta * affinity)).exp() @ self.cache_values

    def forward(self, batch: Batch) -> Tensor:
        """Logits [B, C]: zero-shot CLIP plus alpha times the cache logits (none before fitting)."""
        image = normalize(self.image_features(batch).pooled)
        logits = self.cfg.clip_scale * image @ self.text_weights().t()
        if self.cache_keys.shape[0] == 0:
            return logits
        return logits + self.cache_logits(image, self.beta) * self.alpha

    def prepare_training(self, train: BatchSource, val: BatchSource | None, cfg: TrainConfig, *, seed: int) -> dict:
        """Build the cache; the training-free model then searches alpha and beta on the validation shots."""
        views = [view_for_epoch(cfg, k, seed) for k in range(self.cfg.augment_epoch)]
        train.prepare(views)
        passes, labels = [], None
        for view in views:
            feats, labels = self._features(train, view)
            passes.append(feats)
        keys = normalize(torch.stack(passes).mean(dim=0))  # averaged unnormalised, then normalised
        n_cls = self.cache_values.shape[1]
        self.cache_keys = nn.Parameter(keys, requires_grad=self.cfg.finetune)
        self.cache_values = F.one_hot(labels, n_cls).to(keys.dtype)
        self.fitted_classes = self.classnames
        self.alpha, self.beta = self.cfg.init_alpha, self.cfg.init_beta
        tags = {"cache_entries": str(len(labels)), "cache_views": str(len(views))}
        if not self.cfg.finetune:
            tags.update(self._search(val))
        return tags

    def after_training(self, train: BatchSource, val: BatchSource | None, cfg: TrainConfig, *, seed: int) -> dict:
        """-F: search alpha and beta on the validation shots with the trained keys."""
        return self._search(val) if self.cfg.finetune else {}

    def _search(self, val: BatchSource | None) -> dict:
        """`search_hp` on the validation shots (never on test images); keeps the initial values without any."""
        if not self.cfg.search or val is None or len(val) == 0:
            reason = "off" if not self.cfg.search else "no validation shots"
            return {"tip_alpha": str(self.alpha), "tip_beta": str(self.beta), "tip_search": reason}
        val.prepare([TEST_VIEW])
        feats, labels = self._features(val, TEST_VIEW)
        self.alpha, self.beta = self.search_alpha_beta(normalize(feats), labels)
        return {"tip_alpha": repr(self.alpha), "tip_beta": repr(self.beta), "tip_search": "validation shots"}

    @torch.no_grad()
    def search_alpha_beta(self, image: Tensor, labels: Tensor) -> tuple[float, float]:
        """The reference grid search: first (beta, alpha) with the strictly highest accuracy, from (0, 0)."""
        (beta_max, alpha_max), (n_beta, n_alpha) = self.cfg.search_scale, self.cfg.search_step
        betas = [i * (beta_max - 0.1) / n_beta + 0.1 for i in range(n_beta)]
        alphas = [i * (alpha_max - 0.1) / n_alpha + 0.1 for i in range(n_alpha)]
        clip_logits = self.cfg.clip_scale * image @ self.text_weights().t()
        best, best_beta, best_alpha = 0, 0.0, 0.0
        for beta in betas:
            cache = self.cache_logits(image, beta)
            for alpha in alphas:
                hits = int(((clip_logits + cache * alpha).argmax(dim=-1) == labels).sum())
                if hits > best:
                    best, best_beta, best_alpha = hits, beta, alpha
        log.debug(
            "Tip-Adapter search: beta %.4f alpha %.4f, %d/%d validation shots", best_beta, best_alpha, best, len(labels)
        )
        return best_alpha, best_beta
