"""The frozen CLIP backbone shared by every method, and its loaders."""

from benchmark.backbone.clip import ClassPrompts, FrozenClip, ImageFeatures, LayerHook

__all__ = ["ClassPrompts", "FrozenClip", "ImageFeatures", "LayerHook"]
