"""Building a `FrozenClip` from a backbone string.

Backbone strings:

* `world`: the tiny CLIP pretrained on the embedded world (committed checkpoint, checksum verified);
* `random-tiny[:SEED]`: a randomly initialised tiny CLIP for smoke tests (no weights needed);
* `MODEL[:PRETRAINED]`: any open_clip architecture with a pretrained tag (`ViT-B-16:openai`, the
  paper default) or a local checkpoint file (`ViT-B-32:/data/RemoteCLIP-ViT-B-32.pt`: how RemoteCLIP
  and GeoRSCLIP are distributed). `tiny:FILE` loads a file into the tests' tiny architecture.

Loading open_clip weights (tags, checkpoint files, the offline behaviour) lives in `benchmark.backbone.weights`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from benchmark.backbone.weights import (
    TINY_CONFIG,
    TINY_MODEL,
    load_checkpoint_file,
    load_tagged,
    skeleton,
)
from benchmark.errors import UsageError
from benchmark.paths import file_sha256

log = logging.getLogger(__name__)

WORLD = "world"
RANDOM_TINY = "random-tiny"
PAPER_DEFAULT = "ViT-B-16:openai"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


@dataclass(frozen=True)
class BackboneSpec:
    """A parsed backbone string."""

    kind: str  # "world" | "random-tiny" | "open_clip"
    model: str = ""
    pretrained: str = ""  # tag or local file
    seed: int = 0

    @property
    def label(self) -> str:
        """The string that names the backbone in tags and leaderboards."""
        if self.kind == WORLD:
            return WORLD
        if self.kind == RANDOM_TINY:
            return f"{RANDOM_TINY}:{self.seed}"
        return f"{self.model}:{self.pretrained}" if self.pretrained else self.model


def parse_backbone(text: str) -> BackboneSpec:
    """Parse a backbone string; model names are checked against open_clip's list lazily."""
    text = text.strip()
    if text == WORLD:
        return BackboneSpec(WORLD)
    if text.split(":")[0] == RANDOM_TINY:
        seed = text.partition(":")[2] or "0"
        if not seed.isdigit():
            raise UsageError(f"backbone {text!r}: the seed after '{RANDOM_TINY}:' must be an integer")
        return BackboneSpec(RANDOM_TINY, seed=int(seed))
    model, _, pretrained = text.partition(":")
    if not model:
        raise UsageError(f"backbone {text!r}: expected MODEL[:PRETRAINED], e.g. {PAPER_DEFAULT}")
    return BackboneSpec("open_clip", model=model, pretrained=pretrained)


def validate_backbone(spec: BackboneSpec) -> None:
    """Check names, tags and files before any work starts (no download, no weights loaded)."""
    if spec.kind != "open_clip":
        return
    import open_clip

    from benchmark.registry import unknown_name_message

    if spec.model == TINY_MODEL:
        if not spec.pretrained or not _looks_like_path(spec.pretrained):
            raise UsageError(
                f"backbone {spec.label!r}: the tiny architecture needs a checkpoint file ({TINY_MODEL}:/path/ckpt.pt);"
                f" use {RANDOM_TINY}[:SEED] for random weights"
            )
    elif spec.model not in open_clip.list_models():
        raise UsageError(unknown_name_message("open_clip model", spec.model, open_clip.list_models()))
    if not spec.pretrained:
        return
    if _looks_like_path(spec.pretrained):
        if not Path(spec.pretrained).expanduser().is_file():
            raise UsageError(f"backbone checkpoint not found: {spec.pretrained}")
        return
    tags = open_clip.list_pretrained_tags_by_model(spec.model)
    if spec.pretrained not in tags:
        what = f"pretrained tag of {spec.model} (or a checkpoint file path)"
        raise UsageError(unknown_name_message(what, spec.pretrained, tags))


def pretrained_tag(spec: BackboneSpec) -> str | None:
    """The open_clip pretrained tag whose weights `spec` downloads; None for files, random and embedded weights."""
    if spec.kind != "open_clip" or not spec.pretrained or _looks_like_path(spec.pretrained):
        return None
    return spec.pretrained


def _looks_like_path(text: str) -> bool:
    return "/" in text or os.sep in text or text.endswith(CHECKPOINT_SUFFIXES) or Path(text).expanduser().is_file()


def build_tiny_clip(seed: int = 0):
    """A random-init tiny open_clip CLIP (deterministic for `seed`)."""
    import open_clip
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = open_clip.model.CLIP(**TINY_CONFIG)
    return model.eval()


def backbone_identity(spec: BackboneSpec) -> str:
    """What identifies the weights, computed without loading them (part of run keys and cache keys)."""
    if spec.kind == WORLD:
        from benchmark.world.model import world_clip_digest

        return f"{WORLD}@{world_clip_digest()[:12]}"
    if spec.kind == "open_clip" and spec.pretrained and _looks_like_path(spec.pretrained):
        return f"{spec.model}:file@{file_sha256(Path(spec.pretrained).expanduser())[:12]}"
    if spec.kind == "open_clip" and not spec.pretrained:
        return f"{spec.model}:random-init-seed0"
    return spec.label


def load_backbone(spec: BackboneSpec, device: str = "cpu"):
    """Load the weights named by `spec` into a `FrozenClip` on `device`."""
    from benchmark.backbone.clip import FrozenClip

    if spec.kind == WORLD:
        from benchmark.world.model import load_world_clip

        model = load_world_clip()
    elif spec.kind == RANDOM_TINY:
        model = build_tiny_clip(spec.seed)
    else:
        model = _load_open_clip(spec)
    return FrozenClip(model.float().to(device), identity=backbone_identity(spec))


def _load_open_clip(spec: BackboneSpec):
    validate_backbone(spec)
    if spec.pretrained and _looks_like_path(spec.pretrained):
        return load_checkpoint_file(spec.model, Path(spec.pretrained).expanduser())
    if spec.pretrained:
        return load_tagged(spec)
    log.warning("backbone %s: no pretrained weights named; the model is randomly initialised", spec.label)
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # random weights must still be the same ones in every worker and run
        return skeleton(spec.model)
