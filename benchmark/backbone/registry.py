"""Named backbones: which open_clip architecture each is, where its weights come from, and in which format.

`--backbone remoteclip-vit-b-32` (any case) stands for an entry here; `MODEL:FILE` and `MODEL:TAG` keep
working as before. An entry is data only (no torch import, so `python -m benchmark list` stays fast):
`benchmark.backbone.load` parses and loads it, `benchmark.backbone.sources` fetches and checks its file,
`benchmark.plan.models` checks before a sweep that the file is there or downloadable.

Sources:

* `open_clip`: an open_clip pretrained tag. The name is only a spelling of `ARCH:TAG`: it parses to that
  backbone, whose label and run keys are those of `ARCH:TAG` (`openai-vit-b-16` is `ViT-B-16:openai`).
* `hf_hub`: one file of a Hugging Face repository, fetched with `huggingface_hub.hf_hub_download` into
  the normal hub cache (or found there offline); `NAME:FILE` loads a copy you placed elsewhere.
* `user_file`: weights that are not on the hub. `NAME:FILE` names the checkpoint, or the release
  archive (`.zip`) holding it; the member `member` is extracted once into the benchmark cache.

Formats (what the file holds; `benchmark.backbone.weights.open_checkpoint` reads all of them and reports
the one it found):

* `open_clip`: a plain open_clip state dict `{name: tensor}` (`torch.save(model.state_dict())`);
* `wrapped`: the same under a `state_dict` (or `model`) key;
* `training`: an open_clip training checkpoint `{"epoch", "name", "state_dict", "optimizer"}` whose keys
  carry DDP's `module.` prefix;
* `openai`: OpenAI's release (a TorchScript archive, or a state dict with `input_resolution`,
  `context_length` and `vocab_size`), rebuilt with QuickGELU.

`quick_gelu` says which activation the weights were trained with. Getting it wrong loads every weight
and still changes every feature (open_clip issue #771), so each entry's `notes` say what it relies on.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

Source = Literal["open_clip", "hf_hub", "user_file"]
Format = Literal["open_clip", "wrapped", "training", "openai"]

FORMAT_TEXT: dict[str, str] = {
    "open_clip": "open_clip state_dict",
    "wrapped": "wrapped state_dict",
    "training": "open_clip training checkpoint (module.)",
    "openai": "OpenAI (TorchScript or state_dict)",
}


@dataclass(frozen=True)
class NamedBackbone:
    """One named backbone.

    Attributes:
        name: lower-case registry name, `family-architecture` (`remoteclip-vit-b-32`).
        family: the model's name in its paper (`RemoteCLIP`).
        architecture: the open_clip model the weights are loaded into (`ViT-B-32`).
        source: `open_clip` (a pretrained tag), `hf_hub` (a file of a hub repository) or `user_file`.
        format: the layout of the distributed file (see the module docstring).
        quick_gelu: the weights were trained with QuickGELU (OpenAI's activation).
        tag: the open_clip pretrained tag (source `open_clip`).
        repo: the Hugging Face repository (source `hf_hub`).
        filename: the file in `repo` (source `hf_hub`).
        member: the checkpoint's file name inside the release archive (source `user_file`).
        download: where a `user_file`'s release is downloaded from (a URL; shown in messages).
        locations: where open_clip keeps a tag's weights, as `benchmark.backbone.weights` checks them:
            ("hf", "org/repo/file") or ("file", "~/path") (source `open_clip`; for `list backbones`).
        supported: False when `FrozenClip` cannot run the architecture (a ResNet image tower).
        citation: the paper.
        notes: what the entry relies on (how the authors load it, the activation, the resolution).
    """

    name: str
    family: str
    architecture: str
    source: Source
    format: Format
    quick_gelu: bool = False
    tag: str = ""
    repo: str = ""
    filename: str = ""
    member: str = ""
    download: str = ""
    locations: tuple[tuple[str, str], ...] = ()
    supported: bool = True
    citation: str = ""
    notes: str = ""

    @property
    def where(self) -> str:
        """The source in one phrase, for tables and messages."""
        if self.source == "open_clip":
            return f"open_clip tag {self.architecture}:{self.tag}"
        if self.source == "hf_hub":
            return f"hf {self.repo}/{self.filename}"
        archive = PurePosixPath(self.download).name or "its release archive"
        return f"your file: {archive} / {self.member}"

    @property
    def format_text(self) -> str:
        """The format in words."""
        return FORMAT_TEXT[self.format]

    @property
    def file_name(self) -> str:
        """The checkpoint's own file name (`RemoteCLIP-ViT-B-32.pt`, `epoch_20.pt`), for messages."""
        return PurePosixPath(self.filename or self.member).name or "weights.pt"


def _openai(arch: str, timm: str) -> NamedBackbone:
    return NamedBackbone(
        name=f"openai-{arch.lower()}",
        family="OpenAI CLIP",
        architecture=arch,
        source="open_clip",
        format="openai",
        quick_gelu=True,
        tag="openai",
        locations=(
            ("hf", f"timm/{timm}/open_clip_model.safetensors"),
            ("hf", f"timm/{timm}/open_clip_pytorch_model.bin"),
            ("file", f"~/.cache/clip/{arch}.pt"),
        ),
        citation="Radford et al., ICML 2021",
        notes="the paper profile's default; open_clip's `openai` tag (QuickGELU, as OpenAI trained)",
    )


_REMOTECLIP_NOTES = (
    "trained with the ITRA codebase and converted to open_clip's format; the authors' README loads each file with"
    " `open_clip.create_model_and_transforms(ARCH)` (plain GELU, no -quickgelu) and a strict `load_state_dict`,"
    " which is what this entry does"
)
_GEORSCLIP_NOTES = (
    "fine-tuned from OpenAI's weights; the authors' inference code builds `ViT-B/32` with `pretrained='openai'`"
    " (QuickGELU in open_clip) and loads the file with `strict=False`; here it must load strictly; 224 px"
)
_SKYCLIP_URL = "https://opendatasharing.s3.us-west-2.amazonaws.com/SkyScript/ckpt/"


def _remoteclip(arch: str, *, supported: bool = True) -> NamedBackbone:
    notes = _REMOTECLIP_NOTES
    if not supported:
        notes += "; a ResNet image tower, which FrozenClip does not run (ViT towers only): listed, not loadable"
    return NamedBackbone(
        name=f"remoteclip-{arch.lower()}",
        family="RemoteCLIP",
        architecture=arch,
        source="hf_hub",
        format="open_clip",
        repo="chendelong/RemoteCLIP",
        filename=f"RemoteCLIP-{arch}.pt",
        supported=supported,
        citation="Liu et al., IEEE TGRS 2024 (arXiv 2306.11029)",
        notes=notes,
    )


def _georsclip(arch: str) -> NamedBackbone:
    return NamedBackbone(
        name=f"georsclip-{arch.lower()}",
        family="GeoRSCLIP",
        architecture=arch,
        source="hf_hub",
        format="open_clip",
        quick_gelu=True,
        repo="Zilun/GeoRSCLIP",
        filename=f"ckpt/RS5M_{arch}.pt",
        citation="Zhang et al., RS5M and GeoRSCLIP, IEEE TGRS 2024 (arXiv 2306.11300)",
        notes=_GEORSCLIP_NOTES,
    )


def _skyclip(arch: str, archive: str, *, quick_gelu: bool, init: str) -> NamedBackbone:
    return NamedBackbone(
        name=f"skyclip-{arch.lower()}",
        family="SkyCLIP",
        architecture=arch,
        source="user_file",
        format="training",
        quick_gelu=quick_gelu,
        member="epoch_20.pt",
        download=_SKYCLIP_URL + archive,
        citation="Wang et al., SkyScript, AAAI 2024 (arXiv 2312.12856)",
        notes=(
            f"an open_clip training checkpoint (epoch 20) in the SkyScript release zip {archive} (other SkyCLIP"
            f" variants of the same architecture load the same way); continual pretraining from {init}"
        ),
    )


BACKBONES: dict[str, NamedBackbone] = {
    entry.name: entry
    for entry in (
        _openai("ViT-B-16", "vit_base_patch16_clip_224.openai"),
        _openai("ViT-B-32", "vit_base_patch32_clip_224.openai"),
        _remoteclip("RN50", supported=False),
        _remoteclip("ViT-B-32"),
        _remoteclip("ViT-L-14"),
        _georsclip("ViT-B-32"),
        _georsclip("ViT-L-14"),
        _skyclip(
            "ViT-B-32",
            "SkyCLIP_ViT_B32_top50pct.zip",
            quick_gelu=False,
            init="open_clip's laion2b_e16 (GELU), as SkyScript's README states",
        ),
        _skyclip(
            "ViT-L-14",
            "SkyCLIP_ViT_L14_top30pct.zip",
            quick_gelu=True,
            init="`openai`, which SkyScript's open_clip fork builds with QuickGELU (load_openai_model)",
        ),
    )
}


def named_backbone(text: str) -> NamedBackbone | None:
    """The entry called `text` (any case), or None."""
    return BACKBONES.get(text.strip().lower())


def looks_named(text: str) -> bool:
    """Whether `text` starts like a named backbone (`remoteclip-...`), so a miss deserves the registry's hint."""
    return text.strip().lower().split("-")[0] in {name.split("-")[0] for name in BACKBONES}


def close_names(text: str) -> list[str]:
    """Registered names close to `text` (for a "did you mean")."""
    return difflib.get_close_matches(text.strip().lower(), list(BACKBONES), n=2, cutoff=0.6)
