"""The data side of a cell: a list of items served as batches of pixels or of cached features.

`ImageBank` is what the trainer and the evaluator iterate over. On the fast path, and for methods
whose image path is frozen, it computes the features of every (item, view) it will be asked for in
large batches up front, reading and filling the on-disk `FeatureCache`; otherwise it decodes and
transforms images batch by batch and the method runs the image tower itself (the reference path).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from benchmark.backbone import FrozenClip, ImageFeatures
from benchmark.data.catalog import Dataset
from benchmark.data.feature_cache import FeatureCache, feature_space
from benchmark.data.splits import Item
from benchmark.data.transforms import TransformSpec, apply_view, load_rgb
from benchmark.errors import UsageError

log = logging.getLogger(__name__)

ENCODE_CHUNK = 256  # images per image-tower call when filling the feature cache
TOKEN_MEMORY_BUDGET = 1 << 30  # bytes of last-block tokens a bank may hold; larger banks stream from disk

_DIGESTS: dict[Path, str] = {}
_ENCODE_SECONDS = [0.0]  # wall time this process spent computing frozen features for the shared cache


def encode_seconds() -> float:
    """Seconds this process has spent computing missing frozen features (filling the shared cache).

    Cost accounting subtracts it from a cell's train and eval times: whichever cell first asks for a
    dataset's features pays for every later method, so it is reported on its own (`cache_fill_s`).
    """
    return _ENCODE_SECONDS[0]


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
        self._features: dict[int, ImageFeatures] = {}  # view -> features of all items (CPU)
        self._on_disk: set[int] = set()  # streaming banks: views whose features the disk cache holds
        self._streaming: bool | None = None  # decided on first use (see `_streams`)

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
    def _space(self) -> str:
        return feature_space(self.clip.identity, self.transform.digest())

    def _streams(self, n_views: int) -> bool:
        """Whether features are too large to hold for every item (last-block tokens of big towers).

        Streaming banks keep nothing in memory: each batch reads its rows from the on-disk cache.
        """
        if not (self.need_tokens and self.cache is not None):
            return False
        grid = self.clip.image_size // self.clip.model.visual.conv1.kernel_size[0]
        entry_bytes = (grid * grid + 1) * self.clip.vision_width * 4
        return len(self.items) * n_views * entry_bytes > TOKEN_MEMORY_BUDGET

    def _lookup(self, pairs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray | None]]:
        """Features of (item, view) pairs: from the cache, the rest computed and stored chunk by chunk.

        Missing entries are computed in large image-tower batches, decoding each image once for all
        its views; each chunk is stored before the next starts, so a killed run keeps what it did.
        """
        space = self._space()
        keys = {(i, v): (self.digest(i), v) for i, v in pairs}
        found = self.cache.get(space, list(keys.values()), need_tokens=self.need_tokens) if self.cache else {}
        out = {pair: found[key] for pair, key in keys.items() if key in found}
        missing = sorted(pair for pair in keys if pair not in out)
        began = time.perf_counter()
        for start in range(0, len(missing), ENCODE_CHUNK):
            chunk = missing[start : start + ENCODE_CHUNK]
            decoded: dict[int, object] = {}
            pixels = []
            for i, v in chunk:
                if i not in decoded:
                    decoded[i] = self._open(i)
                pixels.append(apply_view(decoded[i], keys[(i, v)][0], v, self.transform))
            with torch.no_grad():
                feats = self.clip.encode_image(
                    torch.stack(pixels).to(self.clip.device),
                    return_tokens=self.need_tokens,
                    pooled_only=True,
                    fused=True,
                )
            pooled = feats.pooled.float().cpu().numpy()
            tokens = None if feats.tokens is None else feats.tokens.float().cpu().numpy()
            for row, pair in enumerate(chunk):
                out[pair] = (pooled[row], None if tokens is None else tokens[row])
            if self.cache is not None:
                self.cache.put(space, [(keys[pair][0], pair[1], *out[pair]) for pair in chunk])
        if missing:
            _ENCODE_SECONDS[0] += time.perf_counter() - began
            log.debug("%d of %d (image, view) features computed", len(missing), len(keys))
        return out

    def _stack(self, rows: Sequence[tuple[np.ndarray, np.ndarray | None]]) -> ImageFeatures:
        pooled = torch.from_numpy(np.stack([r[0] for r in rows]))
        tokens = torch.from_numpy(np.stack([r[1] for r in rows])) if self.need_tokens else None
        return ImageFeatures(pooled, tokens)

    def prepare(self, views: Sequence[int]) -> None:
        """Make the features of every item under each of `views` available (no-op for pixels).

        Features are held on the CPU and moved to the device batch by batch; banks whose last-block
        tokens would exceed `TOKEN_MEMORY_BUDGET` only fill the disk cache here.
        """
        views = [v for v in dict.fromkeys(views) if v not in self._features and v not in self._on_disk]
        if not self.use_features or not views:
            return
        n = len(self.items)
        if self._streaming is None:
            self._streaming = self._streams(len(views))
        if self._streaming:
            pairs = [(i, v) for v in views for i in range(n)]
            for start in range(0, len(pairs), ENCODE_CHUNK):
                self._lookup(pairs[start : start + ENCODE_CHUNK])
            self._on_disk.update(views)
            return
        found = self._lookup([(i, v) for v in views for i in range(n)])
        for v in views:
            self._features[v] = self._stack([found[(i, v)] for i in range(n)])

    def features(self, indices: Sequence[int], view: int) -> ImageFeatures:
        """Features of the items under `view`, on the backbone's device."""
        indices = list(indices)
        if self._streaming is None:
            self._streaming = self._streams(1)
        if view not in self._features and not self._streaming:
            self.prepare([view])
        if view in self._features:
            feats = self._features[view]
            index = torch.as_tensor(indices, dtype=torch.long)
            tokens = None if feats.tokens is None else feats.tokens[index]
            feats = ImageFeatures(feats.pooled[index], tokens)
        else:
            found = self._lookup([(i, view) for i in indices])
            feats = self._stack([found[(i, view)] for i in indices])
        return feats.to(self.clip.device, self.clip.dtype)

    # -- batches ----------------------------------------------------------------------------------
    def batch(self, indices: Sequence[int], view: int):
        """The `Batch` of items `indices` under `view`."""
        from benchmark.data.batch import Batch

        indices = list(indices)
        captions = None if self.captions is None else self.captions[indices]
        labels = self.labels[indices].to(self.clip.device)
        if self.use_features:
            return Batch(labels=labels, features=self.features(indices, view), captions=captions)
        return Batch(labels=labels, images=self.pixels(indices, view), captions=captions)
