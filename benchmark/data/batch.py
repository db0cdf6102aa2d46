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


class TensorSource:
    """An in-memory batch source over fixed tensors (one view): tests and parity fixtures.

    It serves what the training loop and the methods' `prepare_training` hooks read from an image
    bank (`len`, `prepare`, `batch(indices, view)`); every view is the same pixels.
    """

    def __init__(self, images: Tensor, labels: Tensor, captions: Tensor | None = None) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels, self.captions = images, labels, captions

    def __len__(self) -> int:
        return len(self.labels)

    def prepare(self, views) -> None:
        """Nothing to precompute."""

    def batch(self, indices, view: int) -> Batch:
        """The items `indices`; `view` is ignored (one view)."""
        index = list(indices)
        captions = None if self.captions is None else self.captions[index]
        return Batch(labels=self.labels[index], images=self.images[index], captions=captions)
