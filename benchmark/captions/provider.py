"""The caption stage as one callable: `(dataset, items) -> Tensor [N, E]`, every step cached.

For each item: image sha256 -> caption text (captioner; cached unless the captioner reads files) ->
embedding (encoder; cached by text). Models load on the first miss only, so a run whose captions are all
cached never imports a captioning or encoding model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import torch

from benchmark.captions.cache import CaptionCache, text_sha
from benchmark.captions.captioners import Captioner
from benchmark.data.catalog import Dataset
from benchmark.data.pipeline import image_digest
from benchmark.data.splits import Item

log = logging.getLogger(__name__)


class CaptionProvider:
    """Caption embeddings of dataset items.

    Args:
        captioner: where caption texts come from.
        encoder: turns texts into vectors (`id`, `dim`, `encode(texts) -> [N, E]`).
        cache: the on-disk cache (None: this process's memory only).
    """

    def __init__(self, captioner: Captioner, encoder, cache: CaptionCache | None) -> None:
        self.captioner = captioner
        self.encoder = encoder
        self.cache = cache
        self._texts: dict[str, str] = {}  # image digest -> caption (stored captioners)
        self._vectors: dict[str, np.ndarray] = {}  # text sha -> embedding

    def __call__(self, dataset: Dataset, items: Sequence[Item]) -> torch.Tensor:
        """Embeddings [N, E] float32 (CPU) aligned with `items`."""
        if not items:
            return torch.zeros(0, self.encoder.dim)
        texts = self.texts(dataset, items)
        shas = [text_sha(t) for t in texts]
        self._fill_vectors(dict(zip(shas, texts)))
        return torch.from_numpy(np.stack([self._vectors[s] for s in shas]))

    def texts(self, dataset: Dataset, items: Sequence[Item]) -> list[str]:
        """Caption text of every item."""
        if not self.captioner.stored:
            return self.captioner.caption(dataset, items)
        digests = [image_digest(dataset.image_path(item)) for item in items]
        missing = {d for d in digests if d not in self._texts}
        if missing and self.cache is not None:
            self._texts.update(self.cache.get_captions(self.captioner.id, sorted(missing)))
        first = {}
        for digest, item in zip(digests, items):
            if digest not in self._texts:
                first.setdefault(digest, item)
        if first:
            start = time.perf_counter()
            new = dict(zip(first, self.captioner.caption(dataset, list(first.values()))))
            log.info("captioned %d images of %s in %.1f s", len(new), dataset.name, time.perf_counter() - start)
            if self.cache is not None:
                self.cache.put_captions(self.captioner.id, new.items())
            self._texts.update(new)
        return [self._texts[d] for d in digests]

    def _fill_vectors(self, by_sha: dict[str, str]) -> None:
        missing = [s for s in by_sha if s not in self._vectors]
        if missing and self.cache is not None:
            self._vectors.update(self.cache.get_embeddings(self.encoder.id, missing))
            missing = [s for s in missing if s not in self._vectors]
        if not missing:
            return
        start = time.perf_counter()
        vectors = self.encoder.encode([by_sha[s] for s in missing])
        log.info("encoded %d captions with %s in %.1f s", len(missing), self.encoder.id, time.perf_counter() - start)
        new = dict(zip(missing, np.asarray(vectors, dtype=np.float32)))
        if self.cache is not None:
            self.cache.put_embeddings(self.encoder.id, new.items())
        self._vectors.update(new)
