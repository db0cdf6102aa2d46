"""The caption stage BiMoRS declares it needs: captions per image, encoded once, cached."""

from __future__ import annotations

from pathlib import Path


def caption_provider(profile, *, cache_root: Path, device: str):
    """A callable `(dataset, items) -> Tensor [N, E]` of caption embeddings, or None."""
    return None
