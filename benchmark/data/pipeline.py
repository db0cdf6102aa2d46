"""The data side of a cell: a list of items served as batches of pixels or of cached features.

`ImageBank` is what the trainer and the evaluator iterate over. On the fast path, and for methods
whose image path is frozen, it computes the features of every (item, view) it will be asked for in
large batches up front, reading and filling the on-disk `FeatureCache`; otherwise it decodes and
transforms images batch by batch and the method runs the image tower itself (the reference path).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from benchmark.backbone import FrozenClip, ImageFeatures
from benchmark.data.catalog import Dataset
from benchmark.data.splits import Item
from benchmark.data.transforms import TransformSpec, apply_view, load_rgb
from benchmark.errors import UsageError
from benchmark.features import FeatureCache, feature_space

log = logging.getLogger(__name__)

ENCODE_CHUNK = 256  # images per image-tower call when filling the feature cache

_DIGESTS: dict[Path, str] = {}


def image_digest(path: Path) -> str:
    """sha256 of an image file's bytes (memoised per process)."""
    digest = _DIGESTS.get(path)
    if digest is None:
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            raise UsageError(f"cannot read image {path}: {exc.strerror or exc}") from None
        _DIGESTS[path] = digest
    return digest


class ImageBank:
    """Items of one dataset, labelled in the current label space, served as `Batch`es.

    Args:
        dataset: where the images live.
        items: the items (labels already relabelled to the label space in use).
        clip: the frozen backbone (for computing features).
        transform: the transform spec (size, augmentation, normalisation).
        use_features: serve cached features instead of pixels (frozen image path + fast path).
        need_tokens: the features must include the last block's tokens (BiMoRS).
        cache: the on-disk cache, or None to keep features in memory only.
        captions: caption embeddings [N, E] aligned with `items`, or None.
    """

    def __init__(
        self,
        dataset: Dataset,
        items: Sequence[Item],
        *,
        clip: FrozenClip,
        transform: TransformSpec,
        use_features: bool,
        need_tokens: bool = False,
        cache: FeatureCache | None = None,
        captions: Tensor | None = None,
    ) -> None:
        self.dataset = dataset
        self.items = list(items)
        self.clip = clip
        self.transform = transform
        self.use_features = use_features
        self.need_tokens = need_tokens
        self.cache = cache
        self.captions = captions
        self.labels = torch.tensor([item.label for item in self.items], dtype=torch.long)
        self._features: dict[int, ImageFeatures] = {}  # view -> features of all items

    def __len__(self) -> int:
        return len(self.items)

    def path(self, index: int) -> Path:
        """Image file of item `index`."""
        return self.dataset.image_path(self.items[index])

    def digest(self, index: int) -> str:
        """Content digest of item `index`."""
        return image_digest(self.path(index))

    def _open(self, index: int):
        path = self.path(index)
        try:
            return load_rgb(path)
        except OSError as exc:
            raise UsageError(f"cannot open image {path}: {exc}") from None

    def pixels(self, indices: Sequence[int], view: int) -> Tensor:
        """Normalised pixels [B, 3, S, S] of `view` of the items."""
        images = [apply_view(self._open(i), self.digest(i), view, self.transform) for i in indices]
        return torch.stack(images).to(self.clip.device)

    # -- features ---------------------------------------------------------------------------------
    def prepare(self, views: Sequence[int]) -> None:
        """Make the features of every item under each of `views` available (no-op for pixels).

        Everything missing from the cache is computed in large image-tower batches, decoding each
        image once for all its views, and stored chunk by chunk (a killed run keeps what it stored).
        """
        views = [v for v in dict.fromkeys(views) if v not in self._features]
        if not self.use_features or not views:
            return
        space = feature_space(self.clip.identity, self.transform.digest())
        digests = [self.digest(i) for i in range(len(self.items))]
        keys = [(digests[i], v) for v in views for i in range(len(self.items))]
        found = self.cache.get(space, keys, need_tokens=self.need_tokens) if self.cache else {}
        missing = sorted({(i, v) for v in views for i in range(len(self.items)) if (digests[i], v) not in found})
        for start in range(0, len(missing), ENCODE_CHUNK):
            chunk = missing[start : start + ENCODE_CHUNK]
            decoded: dict[int, object] = {}
            pixels = []
            for i, v in chunk:
                if i not in decoded:
                    decoded[i] = self._open(i)
                pixels.append(apply_view(decoded[i], digests[i], v, self.transform))
            with torch.no_grad():
                feats = self.clip.encode_image(
                    torch.stack(pixels).to(self.clip.device),
                    return_tokens=self.need_tokens,
                    pooled_only=True,
                    fused=True,
                )
            pooled = feats.pooled.float().cpu().numpy()
            tokens = None if feats.tokens is None else feats.tokens.float().cpu().numpy()
            entries = []
            for row, (i, v) in enumerate(chunk):
                value = (pooled[row], None if tokens is None else tokens[row])
                found[(digests[i], v)] = value
                entries.append((digests[i], v, *value))
            if self.cache is not None:
                self.cache.put(space, entries)
        if missing:
            log.debug("%d view(s) of %d images: %d computed", len(views), len(self.items), len(missing))
        for v in views:
            rows = [found[(digests[i], v)] for i in range(len(self.items))]
            pooled = torch.from_numpy(np.stack([r[0] for r in rows])).to(self.clip.device)
            tokens = None
            if self.need_tokens:
                tokens = torch.from_numpy(np.stack([r[1] for r in rows])).to(self.clip.device)
            self._features[v] = ImageFeatures(pooled, tokens)

    def features(self, indices: Sequence[int], view: int) -> ImageFeatures:
        """Cached features of the items under `view`."""
        self.prepare([view])
        feats = self._features[view]
        index = torch.as_tensor(list(indices), dtype=torch.long, device=feats.pooled.device)
        tokens = None if feats.tokens is None else feats.tokens[index]
        return ImageFeatures(feats.pooled[index], tokens)

    # -- batches ----------------------------------------------------------------------------------
    def batch(self, indices: Sequence[int], view: int):
        """The `Batch` of items `indices` under `view`."""
        from methods.base import Batch

        indices = list(indices)
        captions = None if self.captions is None else self.captions[indices]
        labels = self.labels[indices].to(self.clip.device)
        if self.use_features:
            return Batch(labels=labels, features=self.features(indices, view), captions=captions)
        return Batch(labels=labels, images=self.pixels(indices, view), captions=captions)
