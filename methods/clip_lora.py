"""CLIP-LoRA (Zanella & Ben Ayed, "Low-Rank Few-Shot Adaptation of Vision-Language Models", CVPRW 2024).

Low-rank updates of the query, key and value input projections of every attention layer of both towers:
`q = W_q h + b_q + s * B_q A_q drop(h)` (likewise k, v), rank r, scale s = alpha / sqrt(r), dropout on the
LoRA branch's input only. The class text is "a photo of a {}." through the adapted text encoder, so the
method scores unseen classes as they come. The frozen backbone is shared, so the updates never touch its
weights: they enter through `FrozenClip`'s `qkv_delta` path, added to each block's q|k|v projection.

Checked against MaxZanella/CLIP-LoRA (`loralib/layers.py`, `loralib/utils.py`, `lora.py`, `main.py`)
@ 358f0d7 (parity fixtures clip_lora_A and _B, faithful and `dropout_path`):
* scale alpha / sqrt(r), not LoRA's alpha / r; A ~ kaiming_uniform(a=sqrt(5)), B = 0;
* logits = 100 * cos(image, text) in training (main.py fixes logit_scale = 100; evaluation takes the
  argmax of the unscaled cosine, so 100 changes nothing there);
* every dataset's template list ends as ["a photo of a {}."] and the first entry is used;
* with dropout 0 the reference takes another code path: B A is merged into the weight for the forward
  and subtracted from the weight's *data* right after it, so the backward multiplies by the frozen
  weight alone. Its gradients then equal a LoRA branch fed a detached input (`detach_merged_input`);
  the dropout path (the paper's 0.25) computes the exact gradient.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.backbone import FrozenClip
from benchmark.backbone.clip import QkvDelta
from benchmark.core.method import Batch, Preset, PromptMethod, Requirements, normalize
from benchmark.core.train import TrainConfig
from benchmark.registry import METHODS

TARGETS = ("q", "k", "v")
# Block indices of a 12-layer tower by the reference's position names (loralib/utils.py); "all" is every block.
POSITIONS = {
    "bottom": range(0, 4),
    "mid": range(4, 8),
    "up": range(8, 12),
    "half-up": range(6, 12),
    "half-bottom": range(0, 6),
    "top": (11,),
    "top1": (11,),
    "top2": (10, 11),
    "top3": (9, 10, 11),
}


@dataclass(frozen=True)
class CLIPLoRAConfig:
    """CLIP-LoRA's command-line options (run_utils.py defaults) and the constants of its training loop.

    Attributes:
        rank: r, the rank of each update.
        alpha: the update is scaled by alpha / sqrt(rank).
        dropout: dropout on the input of each LoRA branch (training only).
        encoder: the towers that get updates: "text", "vision" or "both".
        params: which input projections get updates, a subset of ("q", "k", "v").
        position: "all" blocks, or a reference position name (12-layer block indices, `POSITIONS`).
        template: the prompt, `{}` is replaced by the class name (`_` read as a space).
        logit_scale: multiplier of the cosine similarities; the reference fixes 100, which is OpenAI CLIP's own
            exp(logit_scale). None takes the backbone's exp(logit_scale) (a backbone trained at another
            temperature, e.g. the world CLIP at about 15.5).
        detach_merged_input: with dropout 0, reproduce the reference's gradient (the LoRA branch sees a
            detached input, see the module docstring); False gives the exact gradient. No effect when
            dropout > 0.
    """

    rank: int = 2
    alpha: float = 1.0
    dropout: float = 0.25
    encoder: Literal["text", "vision", "both"] = "both"
    params: tuple[str, ...] = TARGETS
    position: str = "all"
    template: str = "a photo of a {}."
    logit_scale: float | None = 100.0
    detach_merged_input: bool = True

    def __post_init__(self) -> None:
        if self.rank < 1 or not 0.0 <= self.dropout < 1.0 or self.encoder not in ("text", "vision", "both"):
            raise ValueError(f"need rank >= 1, dropout in [0, 1) and encoder text/vision/both, got {self}")
        if not self.params or not set(self.params) <= set(TARGETS) or len(set(self.params)) != len(self.params):
            raise ValueError(f"params must be distinct names among {TARGETS}, got {self.params}")
        if self.position != "all" and self.position not in POSITIONS:
            raise ValueError(f"unknown position {self.position!r}: 'all' or one of {sorted(POSITIONS)}")


# n_iters = 500 * shots (run_utils.py), AdamW(wd 1e-2, betas (0.9, 0.999)), lr 2e-4, CosineAnnealingLR over all
# iterations to eta_min 1e-6, batch 32 (lora.py, run_utils.py). The loop counts epochs, not iterations: 1000 epochs
# give 8000 = 500 x 16 iterations at 8 steps per epoch (16 shots of 16 classes); the exact count needs an iteration
# budget in TrainConfig. The reference trains under fp16 autocast with fp32 LoRA tensors and a GradScaler: "amp"
# (bf16 autocast, fp32 tensors) is the harness's nearest; "fp16" would make the LoRA tensors and AdamW's state fp16.
_PAPER_TRAIN = TrainConfig(
    epochs=1000, batch_size=32, lr=2e-4, weight_decay=1e-2, warmup_epochs=0, precision="amp",
    optimizer="adamw", schedule="cosine_steps", min_lr=1e-6,
)  # fmt: skip
# World: every step runs the image tower forward and backward (about 0.4 s at batch 32 on one busy core), so
# 5 epochs (25 steps for 10 classes x 16 shots); lr 2e-3 because 25 steps at 2e-4 barely move the updates.
_WORLD_TRAIN = TrainConfig(
    epochs=5, batch_size=32, lr=2e-3, weight_decay=1e-2, warmup_epochs=0, aug_views=10,
    optimizer="adamw", schedule="cosine_steps", min_lr=1e-6,
)  # fmt: skip
PRESETS = {
    "paper": Preset(
        CLIPLoRAConfig(),
        _PAPER_TRAIN,
        "CLIP-LoRA CVPRW'24, MaxZanella/CLIP-LoRA run_utils.py defaults (r 2, alpha 1, dropout 0.25, both towers, "
        "q/k/v, all layers, lr 2e-4, batch 32, 500 x shots iterations) and lora.py (AdamW wd 1e-2, per-iteration "
        "cosine to 1e-6); 1000 epochs stand for 8000 iterations (16 shots, 8 steps per epoch); bf16 autocast for "
        "the reference's fp16 autocast",
    ),
    "world": Preset(
        CLIPLoRAConfig(logit_scale=None),
        _WORLD_TRAIN,
        "paper model (r 2, alpha 1, dropout 0.25, q/k/v of every layer of both towers) with the world CLIP's own "
        "logit scale (the reference's 100 is OpenAI CLIP's exp(logit_scale)); schedule: 5 epochs at lr 2e-3 (AdamW "
        "wd 1e-2, per-iteration cosine to 1e-6, batch 32, 10 fixed RRC+flip views) because every step runs the "
        "image tower on a 2-core CPU; kept by the validation search over tuning seeds 101-103 "
        "(results/tuning/clip_lora.csv: 'python -m benchmark tune clip_lora', {0.001, 0.002} x {2, 5} epochs)",
    ),
}


class _QKVLoRA(nn.Module):
    """The rank-r updates of one attention layer's q, k and v input projections."""

    def __init__(self, width: int, rank: int, targets: Sequence[str], device: torch.device) -> None:
        super().__init__()
        self.A = nn.ParameterDict()  # [r, W] each
        self.B = nn.ParameterDict()  # [W, r] each
        for target in targets:
            a = torch.empty(rank, width, device=device)
            nn.init.kaiming_uniform_(a, a=math.sqrt(5))  # the reference's init: A like nn.Linear, B zero
            self.A[target] = nn.Parameter(a)
            self.B[target] = nn.Parameter(torch.zeros(width, rank, device=device))

    def forward(self, h: Tensor, scale: float, dropout: float, detach: bool) -> Tensor:
        """The term [N, L, 3W] added to the packed q|k|v projection of h [N, L, W]."""
        x = h.detach() if detach else h
        parts = []
        for target in TARGETS:
            if target not in self.A:
                parts.append(h.new_zeros(h.shape))
                continue
            branch = F.dropout(x, dropout, training=True) if dropout > 0 else x  # one mask per projection
            a, b = self.A[target], self.B[target]
            parts.append((branch.to(a.dtype) @ a.t() @ b.t() * scale).to(h.dtype))
        return torch.cat(parts, dim=-1)


def _layers(position: str, depth: int) -> list[int]:
    return list(range(depth)) if position == "all" else [i for i in POSITIONS[position] if i < depth]


@METHODS.register("clip_lora")
class CLIPLoRA(PromptMethod):
    """LoRA on q, k, v of both towers: logits = 100 * cos(image_LoRA(x), text_LoRA("a photo of a {c}."))."""

    config_cls = CLIPLoRAConfig
    presets = PRESETS
    default_presets = {"paper": "paper", "world": "world"}
    requirements = Requirements(frozen_image_path=False)
    reference_names = {
        f"{tower}transformer.resblocks.{i}.attn.{t}_proj.w_lora_{m}": f"{ours}_lora.{i}.{m}.{t}"
        for tower, ours in (("", "text"), ("visual.", "vision"))
        for i in range(64)
        for t in TARGETS
        for m in ("A", "B")
    }

    def __init__(self, clip: FrozenClip, cfg: CLIPLoRAConfig, classnames: Sequence[str]) -> None:
        super().__init__(clip, cfg, classnames)
        self.scale = cfg.alpha / math.sqrt(cfg.rank)
        towers = {"text": clip.model.transformer, "vision": clip.model.visual.transformer}
        for tower, blocks in towers.items():
            used = cfg.encoder in (tower, "both")
            layers = _layers(cfg.position, len(blocks.resblocks)) if used else []
            if used and not layers:
                raise ValueError(f"position {cfg.position!r} selects no block of the {tower} tower")
            widths = [blocks.resblocks[i].attn.embed_dim for i in layers]
            loras = {str(i): _QKVLoRA(w, cfg.rank, cfg.params, clip.device) for i, w in zip(layers, widths)}
            setattr(self, f"{tower}_lora", nn.ModuleDict(loras))
        self.set_classnames(classnames)

    @classmethod
    def from_reference(cls, trainer_config: dict, variant: str | None = None) -> CLIPLoRAConfig:
        """Our config for the reference's arguments; variant `dropout_path`: its dropout code path, mask off."""
        if variant not in (None, "dropout_path"):
            raise ValueError(f"CLIP-LoRA has no variant {variant!r}")
        return CLIPLoRAConfig(
            rank=int(trainer_config["r"]),
            alpha=float(trainer_config["alpha"]),
            dropout=0.0,  # both cases run without a dropout mask (a fixture cannot hold a random mask)
            encoder=trainer_config["encoder"],
            params=tuple(trainer_config["params"]),
            position=trainer_config["position"],
            template=trainer_config["template"],
            logit_scale=float(trainer_config["logit_scale"]),
            detach_merged_input=variant is None and float(trainer_config["dropout_rate"]) == 0.0,
        )

    @classmethod
    def config_requirements(cls, cfg: CLIPLoRAConfig) -> Requirements:
        """With updates in the text tower only, the image path is frozen and its features can be cached."""
        return Requirements(frozen_image_path=cfg.encoder == "text")

    def _delta(self, loras: nn.ModuleDict) -> QkvDelta | None:
        if len(loras) == 0:
            return None
        dropout = self.cfg.dropout if self.training else 0.0
        detach = self.cfg.detach_merged_input and self.cfg.dropout == 0.0

        def delta(index: int, h: Tensor) -> Tensor | None:
            key = str(index)
            return loras[key](h, self.scale, dropout, detach) if key in loras else None

        return delta

    def set_classnames(self, classnames: Sequence[str]) -> None:
        """Tokenise the filled-in template of every class."""
        texts = [self.cfg.template.format(name.replace("_", " ")) for name in classnames]
        self.tokens = self.clip.tokenize(texts)
        self.eot = self.tokens.argmax(dim=-1)
        self._text_cache = None

    def compute_class_text(self) -> Tensor:
        """Text features [C, D] of the template through the text tower with its updates."""
        length = int(self.eot.max()) + 1 if self.fast.truncate_text else self.tokens.shape[1]
        embeddings = self.clip.embed_tokens(self.tokens[:, :length])
        return self.encode_prompts(embeddings, self.eot, qkv_delta=self._delta(self.text_lora))

    def forward(self, batch: Batch) -> Tensor:
        """Logits [B, C]; the image tower runs with its updates (no feature cache) unless it has none."""
        vision = self._delta(self.vision_lora)
        if vision is None:
            pooled = self.image_features(batch).pooled
        elif batch.images is None:
            raise ValueError("CLIP-LoRA needs pixels: its image path depends on learned updates")
        else:
            pooled = self.encode_image(batch.images, qkv_delta=vision).pooled
        scale = self.clip.logit_scale if self.cfg.logit_scale is None else self.cfg.logit_scale
        return scale * normalize(pooled) @ self.class_text_features().t()
