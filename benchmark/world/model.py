"""The world's tiny CLIP: a standard ``open_clip.model.CLIP`` small enough for CPU, and its checkpoint.

The architecture is the stock one (QuickGELU; ViT with class-token pooling; causal text transformer with
argmax/EOT pooling; CLIP BPE tokenizer, ``open_clip.tokenize``), only narrow and shallow, so every code path
of the harness that works on it works on ViT-B/16. The committed checkpoint is an fp16 state dict
(``assets/world_clip.pt``) described by ``assets/world_clip.json``: rebuild kwargs, training recipe,
training-log summary and the file's sha256, which :func:`load_world_clip` verifies before loading.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.paths import file_sha256

if TYPE_CHECKING:
    import open_clip

log = logging.getLogger(__name__)

WORLD_CLIP_ID = "world-tiny-clip"
ASSETS = Path(__file__).parent / "assets"
CHECKPOINT = ASSETS / "world_clip.pt"
META = ASSETS / "world_clip.json"
#: The world's backbones by name: the generic tiny CLIP (a web-pretrained CLIP's counterpart) and the one
#: pretrained with the four sensors in its corpus (an RS-pretrained CLIP's; `benchmark.world.corpus_rs`).
WORLD_CHECKPOINTS: dict[str, Path] = {"world": CHECKPOINT, "world-rs": ASSETS / "world_clip_rs.pt"}

#: Rebuild kwargs of the tiny CLIP (WORLD_NOTES's working config, context 32 for CoOp-length prompts).
MODEL_CFG: dict[str, Any] = {
    "embed_dim": 128,
    "quick_gelu": True,
    "vision_cfg": {
        "image_size": 64,
        "patch_size": 8,
        "width": 128,
        "layers": 4,
        "head_width": 64,
        "mlp_ratio": 4.0,
    },
    "text_cfg": {
        "context_length": 32,
        "vocab_size": 49408,
        "width": 128,
        "heads": 2,
        "layers": 3,
        "mlp_ratio": 4.0,
    },
}
#: CLIP's image normalisation; the world's images are fed exactly like real ones.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ChecksumError(RuntimeError):
    """The checkpoint's bytes do not match the sha256 recorded in its JSON."""


def build_clip(model_cfg: dict[str, Any] | None = None) -> open_clip.model.CLIP:
    """Construct an (untrained) ``open_clip.model.CLIP`` from rebuild kwargs (global torch RNG init)."""
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    cfg = copy.deepcopy(model_cfg or MODEL_CFG)
    return CLIP(
        embed_dim=cfg["embed_dim"],
        vision_cfg=CLIPVisionCfg(**cfg["vision_cfg"]),
        text_cfg=CLIPTextCfg(**cfg["text_cfg"]),
        quick_gelu=cfg["quick_gelu"],
    )


def build_world_clip_untrained(seed: int = 0, model_cfg: dict[str, Any] | None = None) -> open_clip.model.CLIP:
    """A randomly initialised tiny CLIP, deterministic in ``seed`` and leaving the global RNG untouched.

    Args:
        seed: Initialisation seed.
        model_cfg: Rebuild kwargs (default :data:`MODEL_CFG`).

    Returns:
        The model in eval mode, fp32.
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_clip(model_cfg)
    return model.eval()


def read_meta(meta_path: Path = META) -> dict[str, Any]:
    """The checkpoint's JSON description."""
    return json.loads(Path(meta_path).read_text())


def world_clip_digest(meta_path: Path = META, chars: int = 12) -> str:
    """Short form of the committed checkpoint's sha256 (for run keys and tags)."""
    return read_meta(meta_path)["sha256"][:chars]


def load_world_clip(checkpoint: Path | None = None, meta_path: Path | None = None) -> open_clip.model.CLIP:
    """Rebuild the tiny CLIP from its JSON, verify the checkpoint's sha256, load it in fp32.

    Args:
        checkpoint: ``.pt`` file (default: the committed ``assets/world_clip.pt``).
        meta_path: Its JSON (default: the ``.json`` next to the checkpoint).

    Returns:
        The model in eval mode.

    Raises:
        FileNotFoundError: The checkpoint or its JSON is missing.
        ChecksumError: The checkpoint's bytes differ from the recorded sha256.
    """
    import torch

    checkpoint = Path(checkpoint) if checkpoint is not None else CHECKPOINT
    meta_path = Path(meta_path) if meta_path is not None else checkpoint.with_suffix(".json")
    meta = read_meta(meta_path)
    actual = file_sha256(checkpoint)
    if actual != meta["sha256"]:
        raise ChecksumError(
            f"{checkpoint}: sha256 {actual[:12]}... does not match {meta['sha256'][:12]}... "
            f"recorded in {meta_path.name}; the file is corrupt or not the committed one "
            "(re-fetch it, or re-run `python -m benchmark world pretrain`)"
        )
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model = build_world_clip_untrained(0, meta["model_cfg"])
    model.load_state_dict({k: v.float() for k, v in state.items()})
    log.info("loaded %s (%s, sha256 %s)", WORLD_CLIP_ID, checkpoint.name, actual[:12])
    return model.float().eval()


def save_world_clip(model: open_clip.model.CLIP, checkpoint: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Write the fp16 state dict and its JSON (``meta`` plus model config, id, size and sha256).

    Returns:
        The JSON written.
    """
    import torch

    checkpoint = Path(checkpoint)
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    torch.save(state, checkpoint)
    full = {
        "id": WORLD_CLIP_ID,
        "file": checkpoint.name,
        **meta,
        "params": int(sum(p.numel() for p in model.parameters())),
        "bytes": checkpoint.stat().st_size,
        "sha256": file_sha256(checkpoint),
    }
    checkpoint.with_suffix(".json").write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
    return full
