"""Building a `FrozenClip` from a backbone string.

Backbone strings:

* `world`: the tiny CLIP pretrained on the embedded world (committed checkpoint, checksum verified);
* `random-tiny[:SEED]`: a randomly initialised tiny CLIP for smoke tests (no weights needed);
* `MODEL[:PRETRAINED]`: any open_clip architecture with a pretrained tag (`ViT-B-16:openai`, the
  paper default) or a local checkpoint file (how RemoteCLIP and GeoRSCLIP are distributed).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from benchmark.errors import UsageError

log = logging.getLogger(__name__)

WORLD = "world"
RANDOM_TINY = "random-tiny"
PAPER_DEFAULT = "ViT-B-16:openai"

# A small open_clip CLIP (timm's test_vit scale) for tests: the full BPE vocabulary, few layers.
TINY_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 64, "layers": 2, "head_width": 32},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    "quick_gelu": True,
}


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
    """Check names and files before any work starts (no download, no weights loaded)."""
    if spec.kind != "open_clip":
        return
    import open_clip

    if spec.model not in open_clip.list_models():
        from benchmark.registry import unknown_name_message

        raise UsageError(unknown_name_message("open_clip model", spec.model, open_clip.list_models()))
    if spec.pretrained and _looks_like_path(spec.pretrained) and not Path(spec.pretrained).is_file():
        raise UsageError(f"backbone checkpoint not found: {spec.pretrained}")


def _looks_like_path(text: str) -> bool:
    return os.sep in text or text.endswith((".pt", ".pth", ".bin", ".safetensors", ".ckpt"))


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:12]


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
        return f"{spec.model}:file@{_file_digest(spec.pretrained)}"
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
    import open_clip

    validate_backbone(spec)
    try:
        model = open_clip.create_model(spec.model, pretrained=spec.pretrained or None, precision="fp32")
    except (OSError, RuntimeError, ValueError) as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        hint = " (HF_HUB_OFFLINE is set and the weights are not in the local cache)" if offline else ""
        raise UsageError(f"cannot load backbone {spec.label}{hint}: {reason}") from None
    return model
