"""BiMoRS: bi-modal textual prompt learning for CLIP in remote sensing.

Kashyap, Singha, Banerjee, "Bi-Modal Textual Prompt Learning for Vision-Language Models in Remote
Sensing", ICASSP 2026, arXiv 2601.20675.

CoCoOp-style instance-conditional prompts: the M context vectors are shifted by a 4-head cross-attention
whose queries are the context and whose keys/values are two tokens per image, a visual token (a small MLP
applied to every last-block token of the image tower, before `ln_post` and CLS included, then averaged)
and a caption token (a linear map of the image caption's sentence embedding):

    kv    = [mean_tokens(meta_net(tokens)), caption_proj(caption)]          [B, 2, W]
    ctx_b = ctx + MHA(norm(ctx), norm_context(kv), norm_context(kv))       [B, M, W]
    logits[b] = scale * cos(image_b, text([SOT][ctx_b][class][.][EOT]))    for every class

Checked against ipankhi/BiMoRS @ c345cd8 (`trainers/bimors.py` PromptLearner/CustomCLIP/PreNorm/
CrossAttention, `trainers/utils.py` cls_token_gen) through the parity fixture `bimors_A.pt` (faithful:
fp16 cross-attention, and the `fp32_cross_attn` variant); the caption side (BLIP-2 + BERT mean pooling,
`gen_caption/gen_caption.py`) lives in `benchmark.captions`. Reading of the reference (also
methods/REFERENCES.md §4):

* ctx from the CTX_INIT words ("a photo of a", M = 4); meta_net = Linear(W_v -> W_v // 16), ReLU,
  Linear(-> W); the reference's `AdaptiveAvgPool2d((1, 512))` on [B, N, 512] is a mean over the N tokens.
  We write the mean, which also holds for text widths other than 512 (where the reference's pool would
  resample the channels), and take W_v from the backbone (the reference hard-codes 768).
* The reference's caption projection `token_gen` sits outside `prompt_learner`, so its freeze loop leaves
  it at PyTorch's random initialisation: it is never trained and never saved (methods/REFERENCES.md §4).
* The whole cross-attention block is forced to fp16 whatever the run's precision: LayerNorms and
  attention weights (and hence their gradients) are fp16, query and keys are cast to fp16 on entry, the
  residual is added in fp16, and `torch.cat` with the fp32 prompt rows promotes the result back
  (methods/REFERENCES.md §4). `nn.MultiheadAttention` is called with its default `need_weights=True`.
* Key/value order [visual, caption]; residual on the un-normalised ctx; one text-encoder pass per image.

Seed sensitivity (measured on the world CLIP; a property of the reference recipe, not a defect of ours):
the cross-attention's residual shift starts at PyTorch's default init, about 14x the norm of the context
token embeddings, so from step 0 it drowns "a photo of a". Some init draws (seed 2 on every world dataset,
since the init does not depend on the data) give epoch-1 gradients 10-20x the usual; the first full-lr step,
carrying the warm-up momentum, throws the shift to a plateau near chance training loss, and whether a run
escapes it within the schedule is decided by last-bit noise, so the same cell ends above or below zero-shot
on different CPUs. Swapping only the init seed moves the plateau to other seeds; fp32 cross-attention, a
trained caption projection, lr/2 and the `world_corrected` preset each leave it in place. The harness
tags such runs `collapsed=yes` and keeps them in the means.

Presets (`paper` and `faithful` are the same computation; two names so that leaderboards can say
"paper hyper-parameters" while parity and ablations say "the reference's numerics"):

| preset | caption projection | cross-attention | schedule | checkpoint |
|---|---|---|---|---|
| paper, faithful | frozen at random init | fp16 | batch 4, lr 0.009, 10 epochs, fp16 run | best on test (leakage) |
| corrected | trained | run's precision | as paper, fp32 run | last epoch |
| world | frozen, caption_dim 384 | fp16 | CPU schedule (`_WORLD_TRAIN`) | last epoch |
| world_corrected | trained, caption_dim 384 | run's precision | as world | last epoch |

`faithful` reproduces what the reference computes (the numbers its repository would report);
`corrected` is what the paper describes (a learned caption projection, one precision, no test-set model
selection). The world presets keep the last epoch so that the default leaderboard does not select on
test.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from benchmark.backbone import FrozenClip
from benchmark.core.method import (
    Batch,
    Preset,
    PromptMethod,
    Requirements,
    initial_context,
    normalize,
    splice_per_image,
)
from benchmark.core.train import TrainConfig
from benchmark.registry import METHODS


@dataclass(frozen=True)
class BiMoRSConfig:
    """BiMoRS's options (the reference reads N_CTX, CTX_INIT and PREC from `TRAINER.COCOOP`).

    Attributes:
        n_ctx: number of context vectors (ignored when `ctx_init` is given).
        ctx_init: words to initialise the context from; empty for random N(0, 0.02).
        caption_dim: width of the caption embeddings (the caption encoder's hidden size: 768 for
            BERT-base as in the paper, 384 for all-MiniLM-L6-v2). The runner sets it from the profile.
        heads: attention heads of the cross-attention (must divide the text width).
        fp16_cross_attn: run the cross-attention block (LayerNorms, attention, residual) in fp16
            with fp16 parameters, as the reference does whatever PREC is.
        train_caption_proj: train the caption projection; the reference leaves it frozen at its
            random initialisation (it is outside `prompt_learner`).
    """

    n_ctx: int = 4
    ctx_init: str = "a photo of a"
    caption_dim: int = 768
    heads: int = 4
    fp16_cross_attn: bool = True
    train_caption_proj: bool = False

    def __post_init__(self) -> None:
        if self.n_ctx < 1 and not self.ctx_init:
            raise ValueError(f"n_ctx must be >= 1, got {self.n_ctx}")
        if self.caption_dim < 1 or self.heads < 1:
            raise ValueError(f"caption_dim and heads must be >= 1, got {self.caption_dim}, {self.heads}")


_FAITHFUL = BiMoRSConfig()
_CORRECTED = BiMoRSConfig(fp16_cross_attn=False, train_caption_proj=True)
_PAPER_TRAIN = TrainConfig(epochs=10, batch_size=4, lr=0.009, selection="best_test", precision="fp16")
_PAPER_SOURCE = (
    "BiMoRS ICASSP'26, configs/trainers/BiMoRS/vit_b16_c4_ep10_batch1_ctxv1.yaml (batch 4 despite the name, "
    "SGD lr 0.009, 10 epochs, cosine, 1 warm-up epoch at 1e-5); captions BLIP-2 flan-t5-xl + BERT-base mean"
)
# A world b2n cell trains on 16 shots x 7-10 base classes (112-160 images); every step runs the text encoder
# on batch x classes prompts, so the training cost is epochs x images x classes whatever the batch. Batch 8 and
# 4 fixed augmented views per image keep a cell to seconds on a CPU (the image tokens come from the feature
# cache). The learning rate and epochs were chosen on validation shots over tuning seeds 101-103, never on
# reported test numbers: results/tuning/bimors.csv (`python -m benchmark tune bimors`, grid {0.0025, 0.005} x
# {5, 10} epochs). The world presets report the last epoch: best-on-test selection would leak the test split.
_WORLD_TRAIN = TrainConfig(epochs=10, batch_size=8, lr=0.0025, aug_views=4, selection="last")
WORLD_SOURCE = (
    "paper model on the world: caption_dim 384 (all-MiniLM-L6-v2); batch 8, 10 epochs at lr 0.0025 chosen on "
    "validation shots (results/tuning/bimors.csv); last epoch; fp32"
)

PRESETS = {
    "paper": Preset(_FAITHFUL, _PAPER_TRAIN, _PAPER_SOURCE + "; reference numerics (same as faithful)"),
    "faithful": Preset(
        _FAITHFUL,
        _PAPER_TRAIN,
        "ipankhi/BiMoRS @ c345cd8 as written: frozen random caption projection, fp16 cross-attention, "
        "best-on-test checkpoint (identical to paper)",
    ),
    "corrected": Preset(
        _CORRECTED,
        TrainConfig(epochs=10, batch_size=4, lr=0.009, selection="last"),
        _PAPER_SOURCE + "; defects fixed: caption projection trained, cross-attention in the run's "
        "precision (fp32), last-epoch checkpoint (methods/REFERENCES.md §4)",
    ),
    "world": Preset(BiMoRSConfig(caption_dim=384), _WORLD_TRAIN, WORLD_SOURCE + " (faithful model)"),
    "world_corrected": Preset(
        BiMoRSConfig(caption_dim=384, fp16_cross_attn=False, train_caption_proj=True),
        _WORLD_TRAIN,
        WORLD_SOURCE + " (corrected model)",
    ),
}

_REF_ATTN = "prompt_learner.cross_attn.cross_attend_blocks."
_ATTN_NAMES = {  # reference PreNorm names -> ours
    "norm.weight": "norm.weight",
    "norm.bias": "norm.bias",
    "norm_context.weight": "norm_context.weight",
    "norm_context.bias": "norm_context.bias",
    "fn.in_proj_weight": "attn.in_proj_weight",
    "fn.in_proj_bias": "attn.in_proj_bias",
    "fn.out_proj.weight": "attn.out_proj.weight",
    "fn.out_proj.bias": "attn.out_proj.bias",
}


class CrossAttention(nn.Module):
    """ctx + MHA(norm(ctx), norm_context(kv), norm_context(kv)): the reference's PreNorm + CrossAttention.

    Args:
        width: token width (queries, keys and values alike).
        heads: attention heads.
        fp16: keep parameters in fp16 and compute the block in fp16 (the reference).
    """

    def __init__(self, width: int, heads: int, *, fp16: bool) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, dropout=0.0, batch_first=True)
        self.norm = nn.LayerNorm(width)
        self.norm_context = nn.LayerNorm(width)
        self.fp16 = fp16
        if fp16:
            self.half()

    def forward(self, ctx: Tensor, kv: Tensor) -> Tensor:
        """Shifted context [B, M, W] from queries `ctx` [B, M, W] and keys/values `kv` [B, K, W]."""
        if not self.fp16:
            return self._block(ctx, kv)
        # Autocast would recast the fp16 block to bf16; the reference block is fp16 throughout.
        with torch.autocast(ctx.device.type, enabled=False):
            return self._block(ctx.to(torch.float16), kv.to(torch.float16))

    def _block(self, ctx: Tensor, kv: Tensor) -> Tensor:
        context = self.norm_context(kv)
        shift, _ = self.attn(self.norm(ctx), context, context)
        return ctx + shift


@METHODS.register("bimors")
class BiMoRS(PromptMethod):
    """Bi-modal (image tokens + caption) conditioned context: per-image prompts for every class."""

    config_cls = BiMoRSConfig
    presets = PRESETS
    default_presets = {"paper": "paper", "world": "world"}
    requirements = Requirements(image_tokens=True, captions=True)
    reference_names = {
        **{_REF_ATTN + ref: "cross_attn." + ours for ref, ours in _ATTN_NAMES.items()},
        "token_gen.linear.weight": "caption_proj.weight",
        "token_gen.linear.bias": "caption_proj.bias",
    }

    def __init__(self, clip: FrozenClip, cfg: BiMoRSConfig, classnames: Sequence[str]) -> None:
        super().__init__(clip, cfg, classnames)
        width, vision_width = clip.text_width, clip.vision_width
        if width % cfg.heads:
            raise ValueError(f"heads ({cfg.heads}) must divide the text width ({width})")
        ctx, self.prefix = initial_context(clip, cfg.n_ctx, cfg.ctx_init)
        self.ctx = nn.Parameter(ctx)  # [M, W]
        hidden = vision_width // 16
        layers = [
            ("linear1", nn.Linear(vision_width, hidden)),
            ("relu", nn.ReLU()),
            ("linear2", nn.Linear(hidden, width)),
        ]
        self.meta_net = nn.Sequential(OrderedDict(layers))
        self.cross_attn = CrossAttention(width, cfg.heads, fp16=cfg.fp16_cross_attn)
        self.caption_proj = nn.Linear(cfg.caption_dim, width)
        self.caption_proj.requires_grad_(cfg.train_caption_proj)
        self.to(clip.device)
        self.set_classnames(classnames)

    @classmethod
    def from_reference(cls, trainer_config: dict, variant: str | None = None) -> BiMoRSConfig:
        """Our config for a reference `TRAINER.COCOOP` node (parity fixtures; BERT-base captions)."""
        if variant not in (None, "fp32_cross_attn"):
            raise ValueError(f"BiMoRS has no variant {variant!r}")
        return BiMoRSConfig(
            n_ctx=int(trainer_config["N_CTX"]),
            ctx_init=trainer_config.get("CTX_INIT", ""),
            caption_dim=768,
            fp16_cross_attn=variant is None,
            train_caption_proj=False,
        )

    @classmethod
    def adapt_config(cls, cfg: BiMoRSConfig, profile) -> BiMoRSConfig:
        """`cfg` with `caption_dim` set to the width of the profile's caption encoder."""
        from benchmark.captions import caption_dim

        return replace(cfg, caption_dim=caption_dim(profile.caption_encoder))

    def shifted_context(self, tokens: Tensor, captions: Tensor) -> Tensor:
        """Per-image context [B, M, W] (fp16 when the cross-attention is) from image tokens and captions.

        Args:
            tokens: [B, N, W_v] last-block tokens before ln_post, CLS included.
            captions: [B, E] caption embeddings.
        """
        if captions.shape[-1] != self.cfg.caption_dim:
            raise ValueError(
                f"caption embeddings are {captions.shape[-1]}-d but caption_dim is {self.cfg.caption_dim}; "
                "set caption_dim to the caption encoder's width"
            )
        visual = self.meta_net(tokens.to(self.ctx.dtype)).mean(dim=1, keepdim=True)  # [B, 1, W]
        caption = self.caption_proj(captions.to(self.caption_proj.weight.dtype)).unsqueeze(1)  # [B, 1, W]
        kv = torch.cat([visual, caption.to(visual.dtype)], dim=1)  # [B, 2, W]
        return self.cross_attn(self.ctx.unsqueeze(0).expand(kv.shape[0], -1, -1), kv)

    def forward(self, batch: Batch) -> Tensor:
        """Logits [B, C]; the text encoder sees B x C prompts (one batched call, or one call per image)."""
        features = self.image_features(batch)
        if features.tokens is None:
            raise ValueError("BiMoRS needs the image tower's last-block tokens (ImageFeatures.tokens)")
        if batch.captions is None:
            raise ValueError("BiMoRS needs caption embeddings (Batch.captions)")
        image = normalize(features.pooled)  # [B, D]
        ctx = self.shifted_context(features.tokens, batch.captions)
        prompts = splice_per_image(self.prompts, ctx, self.text_length(self.prompts))  # [B, C, L, W]
        n_img, n_cls = prompts.shape[:2]
        scale = self.clip.logit_scale
        if self.fast.batch_prompts:
            eot = self.prompts.eot.repeat(n_img)
            text = self.encode_prompts(prompts.flatten(0, 1), eot).unflatten(0, (n_img, n_cls))
            return scale * (image.unsqueeze(1) @ normalize(text).transpose(1, 2)).squeeze(1)
        logits = []
        for prompts_i, image_i in zip(prompts, image):
            text = normalize(self.encode_prompts(prompts_i, self.prompts.eot))
            logits.append(scale * image_i @ text.t())
        return torch.stack(logits)
