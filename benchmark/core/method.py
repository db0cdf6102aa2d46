"""What every method shares: the `PromptMethod` interface, presets, and prompt splicing.

A method is an `nn.Module` holding a frozen `FrozenClip` and its own learnable parameters. It maps a
`Batch` (pixels or cached image features, optional caption embeddings) to logits over the current
class names, which `set_classnames` can change at any time (base -> new, source -> target).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.backbone import ClassPrompts, FrozenClip, ImageFeatures
from benchmark.core.shortcuts import FAST, FastPath
from benchmark.core.train import BatchSource, TrainConfig
from benchmark.data.batch import Batch


@dataclass(frozen=True)
class Requirements:
    """What a method needs from the data pipeline, so the runner can precompute it.

    Attributes:
        trainable: whether the method has parameters to fit (zero-shot CLIP does not).
        frozen_image_path: image features do not depend on learned parameters, so they can be
            cached across methods, seeds and runs.
        image_tokens: needs the last block's tokens before ln_post, not only the pooled feature.
        captions: needs a caption embedding per image.
        gradient_training: fits its parameters with the shared SGD/AdamW loop. False for methods that
            fit everything in `prepare_training` (a key-value cache, a closed-form probe): they still
            use the shots and seeds (`trainable`) but take no gradient step.
    """

    trainable: bool = True
    frozen_image_path: bool = True
    image_tokens: bool = False
    captions: bool = False
    gradient_training: bool = True


@dataclass(frozen=True)
class Preset:
    """A named, cited configuration: method hyper-parameters plus the training schedule."""

    method: Any  # the method's frozen config dataclass
    train: TrainConfig
    source: str  # where the values come from (paper, config file of the reference)


def normalize(x: Tensor) -> Tensor:
    """L2 normalisation along the last dimension, as the references write it."""
    return x / x.norm(dim=-1, keepdim=True)


def initial_context(clip: FrozenClip, n_ctx: int, ctx_init: str, *, classes: int | None = None) -> tuple[Tensor, str]:
    """CoOp-family context initialisation, and the template prefix it implies.

    With init words: their token embeddings (one shared context, no RNG draw, even for class-specific
    CoOp, as in the reference). Otherwise N(0, 0.02) of shape [M, W], or [C, M, W] when `classes` asks
    for class-specific context, behind a prefix of M "X" placeholders.
    """
    if ctx_init:
        words = ctx_init.replace("_", " ")
        return clip.context_init(words), words
    shape = (n_ctx, clip.text_width) if classes is None else (classes, n_ctx, clip.text_width)
    ctx = nn.init.normal_(torch.empty(shape, device=clip.device), std=0.02)
    return ctx, " ".join(["X"] * n_ctx)


def class_specific_transfer_error(csc: bool, ctx_init: str) -> str | None:
    """Why CoOp-family class-specific context cannot score unseen classes (None when it is not in use).

    CSC gives each trained class its own vectors, so no vectors exist for another class; with `ctx_init`
    the references ignore CSC and share one context.
    """
    if csc and not ctx_init:
        return "class-specific context (csc) cannot be applied to unseen classes"
    return None


def splice_context(prompts: ClassPrompts, ctx: Tensor, length: int) -> Tensor:
    """[SOT | ctx | rest of the template] for every class, cut to `length` tokens.

    Args:
        prompts: class templates whose positions 1..n_ctx hold placeholder words.
        ctx: [n_ctx, W] shared or [C, n_ctx, W] per class.
        length: tokens to keep (the EOT-truncated length or the full context).
    """
    n_ctx = ctx.shape[-2]
    emb = prompts.embeddings[:, :length]  # [C, L, W]
    prefix, suffix = emb[:, :1], emb[:, 1 + n_ctx :]
    n_cls = emb.shape[0]
    if ctx.dim() == 2:
        return torch.cat([prefix, ctx.unsqueeze(0).expand(n_cls, -1, -1), suffix], dim=1)
    if ctx.dim() == 3 and ctx.shape[0] == n_cls:
        return torch.cat([prefix, ctx, suffix], dim=1)
    raise ValueError(f"unsupported context shape {tuple(ctx.shape)} for {n_cls} classes")


def splice_per_image(prompts: ClassPrompts, ctx: Tensor, length: int) -> Tensor:
    """Prompts [B, C, length, W] from per-image context [B, n_ctx, W] (CoCoOp, BiMoRS)."""
    n_img, n_ctx, _ = ctx.shape
    emb = prompts.embeddings[:, :length]
    n_cls = emb.shape[0]
    prefix = emb[:, :1].unsqueeze(0).expand(n_img, -1, -1, -1)
    suffix = emb[:, 1 + n_ctx :].unsqueeze(0).expand(n_img, -1, -1, -1)
    ctx = ctx.unsqueeze(1).expand(-1, n_cls, -1, -1)
    # A half-precision ctx (BiMoRS's fp16 cross-attention) is promoted by cat, as in the reference.
    return torch.cat([prefix, ctx, suffix], dim=2)


class PromptMethod(nn.Module):
    """Base class of registered methods.

    Subclasses set `config_cls`, `presets`, `default_presets` and `requirements`, set the template
    `prefix` their context occupies (or override `set_classnames`), and implement `forward`.
    Parity fixtures name parameters as the reference `CustomCLIP` does; `reference_names` maps
    those names to ours where they differ.
    """

    name: ClassVar[str] = ""
    config_cls: ClassVar[type]
    presets: ClassVar[dict[str, Preset]] = {}
    default_presets: ClassVar[dict[str, str]] = {}  # "profile" or "profile/protocol" -> preset
    requirements: ClassVar[Requirements] = Requirements()
    reference_names: ClassVar[dict[str, str]] = {}
    numerics_version: ClassVar[int] = 1
    """Part of every run_key. Raise it whenever a change alters the method's numbers (init, forward, loss),
    so runs stored before the change stop counting on resume; tests/test_numerics_golden.py tells you when."""

    def __init__(self, clip: FrozenClip, cfg: Any, classnames: Sequence[str]) -> None:
        super().__init__()
        self.clip = clip
        self.cfg = cfg
        self.fast: FastPath = FAST
        self._text_cache: Tensor | None = None
        self._caching_text = False

    # -- presets --------------------------------------------------------------------------------
    @classmethod
    def default_preset(cls, profile: str, protocol: str) -> str:
        """The preset a run uses when none is named: most specific of profile/protocol, profile."""
        for key in (f"{profile}/{protocol}", profile, "paper"):
            if key in cls.default_presets:
                return cls.default_presets[key]
        return next(iter(cls.presets))

    @classmethod
    def adapt_config(cls, cfg: Any, profile: Any) -> Any:
        """`cfg` fitted to what `profile` provides (BiMoRS: the caption encoder's width); unchanged here."""
        return cfg

    @classmethod
    def config_transfer_error(cls, cfg: Any) -> str | None:
        """Why `cfg` cannot score classes it was not fitted on, or None if it can.

        Protocols then report `n/a` for those evaluations (b2n new classes, xd/dg targets) instead of
        a number from a silent fallback.
        """
        return None

    @classmethod
    def config_requirements(cls, cfg: Any) -> Requirements:
        """Requirements of one configuration.

        The class's `requirements` unless a config changes them (Tip-Adapter trains its cache keys only
        in its -F presets).
        """
        return cls.requirements

    # -- classes and text -------------------------------------------------------------------------
    def set_classnames(self, classnames: Sequence[str]) -> None:
        """Point the method at a new label space: the frozen template tokens around `self.prefix`."""
        self.prompts = self.clip.class_prompts(self.prefix, classnames)
        self._text_cache = None

    def class_text_features(self) -> Tensor:
        """Normalised text features [C, D] of image-independent prompts (cached while evaluating)."""
        if self._caching_text and self._text_cache is not None:
            return self._text_cache
        features = normalize(self.compute_class_text())
        if self._caching_text:
            self._text_cache = features
        return features

    def compute_class_text(self) -> Tensor:
        """Unnormalised class text features [C, D]; methods with image-independent prompts implement it."""
        raise NotImplementedError

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        """Eval mode, no grad, and (on the fast path) class text computed once for the whole pass."""
        was_training = self.training
        self.eval()
        self._caching_text, self._text_cache = self.fast.cache_class_text, None
        try:
            with torch.no_grad():
                yield
        finally:
            self._caching_text, self._text_cache = False, None
            self.train(was_training)

    # -- images -----------------------------------------------------------------------------------
    def image_features(self, batch: Batch) -> ImageFeatures:
        """Cached features when the batch carries them, else the frozen image tower's output."""
        if batch.features is not None:
            return batch.features
        return self.encode_image(batch.images, return_tokens=self.requirements.image_tokens)

    def encode_prompts(self, prompts: Tensor, eot: Tensor, **kwargs: Any) -> Tensor:
        """The backbone's prompt encoder under this method's fast-path switches."""
        fast = self.fast
        return self.clip.encode_prompts(
            prompts, eot, pooled_only=fast.pooled_rows_only, fused=fast.fused_blocks, **kwargs
        )

    def encode_image(self, images: Tensor, **kwargs: Any) -> ImageFeatures:
        """The backbone's image encoder under this method's fast-path switches."""
        fast = self.fast
        return self.clip.encode_image(images, pooled_only=fast.pooled_rows_only, fused=fast.fused_blocks, **kwargs)

    def text_length(self, prompts: ClassPrompts) -> int:
        """Prompt length to encode under the current fast-path switches."""
        return prompts.length(self.fast.truncate_text)

    # -- training ---------------------------------------------------------------------------------
    def prepare_training(self, train: BatchSource, val: BatchSource | None, cfg: TrainConfig, *, seed: int) -> dict:
        """Fit what needs no gradient, before the training loop, from the run's few-shot draw.

        A key-value cache is built here, a closed-form probe fitted, a blend weight chosen on the
        validation shots (never on test images). Returns tags for the run. Default: nothing to fit.
        """
        return {}

    def end_epoch(self, epoch: int, cfg: TrainConfig) -> None:
        """Called by the training loop after every epoch (0-based epoch).

        For what accumulates over epochs, e.g. an average of the prompts. Default: nothing.
        """

    def after_training(self, train: BatchSource, val: BatchSource | None, cfg: TrainConfig, *, seed: int) -> dict:
        """Called once after the loop and after checkpoint selection.

        Settles what depends on the trained parameters, e.g. a blend searched on validation shots.
        Returns tags for the run.
        """
        return {}

    def forward(self, batch: Batch) -> Tensor:
        """Logits [B, C] over the current class names."""
        raise NotImplementedError

    def loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Mean cross-entropy, as every reference trainer computes it."""
        return F.cross_entropy(logits, labels)

    def fitted_parameter_count(self) -> int:
        """How many values the method fits on the training shots (the `params` cost column).

        The trainable tensors by default; a method fitted without gradients overrides it with the size
        of what it fits (a linear probe's weights, a cache's keys).
        """
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def learned_state(self) -> dict[str, Tensor]:
        """The trainable parameters (what a checkpoint of this method holds)."""
        return {n: p.detach().clone() for n, p in self.named_parameters() if p.requires_grad}

    def load_learned_state(self, state: dict[str, Tensor]) -> None:
        """Restore parameters saved by `learned_state`."""
        params = dict(self.named_parameters())
        with torch.no_grad():
            for name, value in state.items():
                params[name].copy_(value)
