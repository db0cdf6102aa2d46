"""`Batch`: one batch as a method sees it, built by the image pipeline (`benchmark.data.pipeline`).

It lives in the data layer because the pipeline makes it; methods (`benchmark.core.method`) consume it.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from benchmark.backbone import ImageFeatures


@dataclass
class Batch:
    """One batch as a method sees it."""

    labels: Tensor | None = None  # [B]
    images: Tensor | None = None  # [B, 3, H, W] normalised pixels
    features: ImageFeatures | None = None  # cached frozen image features
    captions: Tensor | None = None  # [B, E] caption embeddings
