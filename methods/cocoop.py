"""CoCoOp (Zhou et al., "Conditional Prompt Learning for Vision-Language Models", CVPR 2022).

CoOp's context vectors, shifted per image: a small meta-net maps the L2-normalised image feature to
one bias that is added to every context token, so each image gets its own prompts for all classes
and the text encoder runs on B x C prompts per batch.

Checked against KaiyangZhou/CoOp `trainers/cocoop.py` @ ff61507 (parity fixture cocoop_A: logits,
loss and every gradient within 1e-5 scaled):
* `ctx_init` ("a photo of a"): M = its word count, ctx = the words' token embeddings; else
  N(0, 0.02) with the prefix "X X ... X";
* meta_net = Linear(embed_dim -> embed_dim // 16), ReLU, Linear(-> text width) on the *normalised*
  image feature; logits row b = scale * f_b @ normalize(T_b).T with T_b built from image b.
The reference loops over images; `FastPath.batch_prompts` runs one text-encoder call instead.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from benchmark.backbone import FrozenClip
from benchmark.core.method import Batch, Preset, PromptMethod, initial_context, normalize, splice_per_image
from benchmark.core.train import TrainConfig
from benchmark.registry import METHODS


@dataclass(frozen=True)
class CoCoOpConfig:
    """CoCoOp's TRAINER.COCOOP options.

    Attributes:
        n_ctx: number of context vectors (ignored when `ctx_init` is given).
        ctx_init: words to initialise the context from; empty for random N(0, 0.02).
    """

    n_ctx: int = 4
    ctx_init: str = "a photo of a"

    def __post_init__(self) -> None:
        if self.n_ctx < 1 and not self.ctx_init:
            raise ValueError(f"n_ctx must be >= 1, got {self.n_ctx}")


PRESETS = {
    "paper": Preset(
        CoCoOpConfig(n_ctx=4, ctx_init="a photo of a"),
        TrainConfig(epochs=10, batch_size=1, lr=0.002, eval_batch_size=100, precision="fp16"),
        "CoCoOp CVPR'22, configs/trainers/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1.yaml",
    ),
    "world": Preset(
        CoCoOpConfig(n_ctx=4, ctx_init="a photo of a"),
        TrainConfig(epochs=20, batch_size=4, lr=0.002, aug_views=10, eval_batch_size=100),
        "paper model; world schedule for a 2-core CPU sweep: batch 4 instead of 1, 20 epochs at lr 0.002 (chosen "
        "on validation shots over tuning seeds: results/tuning/cocoop.csv, grid {0.001, 0.002} x {10, 20} "
        "epochs), over 10 fixed RRC+flip views per image",
    ),
}


@METHODS.register("cocoop")
class CoCoOp(PromptMethod):
    """Conditional context: logits[b] = scale * cos(f_b, text([SOT][ctx + meta_net(f_b)][class][.]))."""

    config_cls = CoCoOpConfig
    presets = PRESETS
    default_presets = {"paper": "paper", "world": "world"}

    def __init__(self, clip: FrozenClip, cfg: CoCoOpConfig, classnames: Sequence[str]) -> None:
        super().__init__(clip, cfg, classnames)
        ctx, self.prefix = initial_context(clip, cfg.n_ctx, cfg.ctx_init)
        self.ctx = nn.Parameter(ctx)  # [M, W]
        hidden = clip.embed_dim // 16
        self.meta_net = nn.Sequential(
            OrderedDict(
                [
                    ("linear1", nn.Linear(clip.embed_dim, hidden)),
                    ("relu", nn.ReLU(inplace=True)),
                    ("linear2", nn.Linear(hidden, clip.text_width)),
                ]
            )
        ).to(clip.device)
        self.set_classnames(classnames)

    @classmethod
    def from_reference(cls, trainer_config: dict, variant: str | None = None) -> CoCoOpConfig:
        """Our config for a reference `TRAINER.COCOOP` node (parity fixtures)."""
        if variant is not None:
            raise ValueError(f"CoCoOp has no variant {variant!r}")
        return CoCoOpConfig(n_ctx=int(trainer_config["N_CTX"]), ctx_init=trainer_config.get("CTX_INIT", ""))

    def forward(self, batch: Batch) -> Tensor:
        """Logits [B, C]; every image has its own prompts for all classes."""
        image = normalize(self.image_features(batch).pooled)  # [B, D]
        bias = self.meta_net(image)  # [B, W]
        ctx = self.ctx.unsqueeze(0) + bias.unsqueeze(1)  # [B, M, W]
        prompts = splice_per_image(self.prompts, ctx, self.text_length(self.prompts))  # [B, C, L, W]
        scale, eot = self.clip.logit_scale, self.prompts.eot
        if self.fast.batch_prompts:
            n_img, n_cls = prompts.shape[:2]
            text = self.encode_prompts(prompts.flatten(0, 1), eot.repeat(n_img))  # [B*C, D]
            text = normalize(text.view(n_img, n_cls, -1))  # [B, C, D]
            return scale * torch.bmm(text, image.unsqueeze(-1)).squeeze(-1)
        rows = []
        for prompts_i, image_i in zip(prompts, image):
            text_i = normalize(self.encode_prompts(prompts_i, eot))  # [C, D]
            rows.append(scale * image_i @ text_i.t())
        return torch.stack(rows)
