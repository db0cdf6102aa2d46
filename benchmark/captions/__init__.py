"""The caption stage BiMoRS declares it needs: captions per image, encoded once, cached.

A profile names a captioner (`dataset` for the world's shipped captions, `blip2` for the paper) and a
caption encoder (`all-minilm-l6-v2` offline, `bert-base-uncased` for the paper). `caption_provider`
turns them into a callable `(dataset, items) -> Tensor [N, E]` whose results live in
`<cache_root>/captions/captions.sqlite`, so later seeds, methods and runs neither caption nor encode.
`caption_dim(encoder)` gives E without loading a model (to size BiMoRS's caption projection).
"""

from __future__ import annotations

from pathlib import Path

from benchmark.captions.cache import CaptionCache
from benchmark.captions.captioners import Blip2Captioner, DatasetCaptioner, make_captioner
from benchmark.captions.encoders import MeanPoolEncoder, caption_dim
from benchmark.captions.provider import CaptionProvider

__all__ = [
    "Blip2Captioner",
    "CaptionCache",
    "CaptionProvider",
    "DatasetCaptioner",
    "MeanPoolEncoder",
    "caption_dim",
    "caption_provider",
    "make_captioner",
]


def caption_provider(profile, *, cache_root: Path, device: str) -> CaptionProvider:
    """A callable `(dataset, items) -> Tensor [N, E]` of caption embeddings for `profile`.

    Nothing is loaded here: models load on the first cache miss, on `device`.
    """
    return CaptionProvider(
        make_captioner(profile.captioner, device=device),
        MeanPoolEncoder(profile.caption_encoder, device=device),
        CaptionCache(Path(cache_root) / "captions" / "captions.sqlite"),
    )
