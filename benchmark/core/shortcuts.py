"""Switches of the exact shortcuts (methods/REFERENCES.md §5), so each can be measured against the naive path.

Every shortcut is exact: the fast and the naive path give the same logits within float rounding
(tests assert 1e-5). `NAIVE` is the reference-equivalent computation with every shortcut off.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FastPath:
    """Which exact shortcuts are on.

    Attributes:
        truncate_text: run prompts only up to the longest EOT of the batch (causal mask).
        batch_prompts: per-image prompts (CoCoOp, BiMoRS) as one B x C text-encoder call instead
            of a Python loop over images.
        cache_class_text: compute image-independent class text features once per evaluation
            instead of once per batch.
        feature_cache: serve frozen image features (and augmented views) from the on-disk cache.
        pooled_rows_only: in the last block of each tower compute only the row that is pooled (EOT
            for prompts, CLS for images); the other rows' outputs are discarded by the pooling.
        fused_blocks: run each standard residual block as one packed QKV projection and one
            scaled-dot-product-attention call instead of going through `nn.MultiheadAttention`.
    """

    truncate_text: bool = True
    batch_prompts: bool = True
    cache_class_text: bool = True
    feature_cache: bool = True
    pooled_rows_only: bool = True
    fused_blocks: bool = True


FAST = FastPath()
NAIVE = FastPath(
    truncate_text=False,
    batch_prompts=False,
    cache_class_text=False,
    feature_cache=False,
    pooled_rows_only=False,
    fused_blocks=False,
)
