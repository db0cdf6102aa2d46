"""The frozen CLIP backbone shared by every method, and its loaders.

`FrozenClip` and its types are imported on first use, so that the backbone registry
(`benchmark.backbone.registry`) can be read without importing torch (`python -m benchmark list`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmark.backbone.clip import ClassPrompts, FrozenClip, ImageFeatures, LayerHook

__all__ = ["ClassPrompts", "FrozenClip", "ImageFeatures", "LayerHook"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from benchmark.backbone import clip

        return getattr(clip, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
