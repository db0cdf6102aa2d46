"""Building a `FrozenClip` from a backbone string.

Backbone strings:

* `world`: the tiny CLIP pretrained on the embedded world (committed checkpoint, checksum verified);
* `random-tiny[:SEED]`: a randomly initialised tiny CLIP for smoke tests (no weights needed);
* a named backbone (`benchmark.backbone.registry`, any case): `remoteclip-vit-b-32`, `georsclip-vit-l-14`
  (Hugging Face hub files), `skyclip-vit-b-32:/path/to/epoch_20.pt` or `...:/path/to/SkyScript.zip` (a
  file you downloaded), `openai-vit-b-16` (the same backbone as `ViT-B-16:openai`); `NAME:FILE` loads a
  local copy of a named backbone's file;
* `MODEL[:PRETRAINED]`: any open_clip architecture with a pretrained tag (`ViT-B-16:openai`, the
  paper default) or a local checkpoint file (`ViT-B-32:/data/RemoteCLIP-ViT-B-32.pt`) or release archive
  (`.zip`, its checkpoint member is extracted into the cache). `tiny:FILE` loads a file into the tests'
  tiny architecture.

Every checkpoint file is audited as it loads (`benchmark.backbone.audit`; `allow_partial` lets a file that
leaves weights at their initialisation through, tagged), its sha256 is the `backbone_sha256` tag of the
runs (`FrozenClip.tags`), and a named backbone's digest is trusted on first use
(`benchmark.backbone.sources.check_trust`). `prepare_backbone` does all of that before a sweep, without
loading the weights. Loading open_clip weights (tags, checkpoint files, the offline behaviour) lives in
`benchmark.backbone.weights`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from benchmark.backbone.registry import BACKBONES, NamedBackbone, close_names, looks_named, named_backbone
from benchmark.backbone.weights import (
    TINY_CONFIG,
    TINY_MODEL,
    load_tagged,
    load_weights,
    skeleton,
)
from benchmark.errors import UsageError

log = logging.getLogger(__name__)

WORLD = "world"
RANDOM_TINY = "random-tiny"
NAMED = "named"
PAPER_DEFAULT = "ViT-B-16:openai"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt", ".zip")
NOT_CACHED = "not-cached"  # the digest part of an identity whose file a dry run did not fetch
#: The embedded world's backbones (`benchmark.world.model.WORLD_CHECKPOINTS`): generic and RS-pretrained.
WORLD_BACKBONES = ("world", "world-rs")


@dataclass(frozen=True)
class BackboneSpec:
    """A parsed backbone string."""

    kind: str  # "world" | "random-tiny" | "open_clip" | "named"
    model: str = ""  # the open_clip architecture
    pretrained: str = ""  # tag or local file (a named backbone: a local copy of its file, or "")
    seed: int = 0
    name: str = ""  # the registry name of a named backbone

    @property
    def label(self) -> str:
        """The string that names the backbone in tags and leaderboards."""
        if self.kind == WORLD:
            return self.name or WORLD  # `world` or another world checkpoint (`world-rs`)
        if self.kind == RANDOM_TINY:
            return f"{RANDOM_TINY}:{self.seed}"
        head = self.name if self.kind == NAMED else self.model
        return f"{head}:{self.pretrained}" if self.pretrained else head

    @property
    def entry(self) -> NamedBackbone | None:
        """The registry entry of a named backbone."""
        return BACKBONES.get(self.name) if self.kind == NAMED else None


def _world_checkpoint(spec: BackboneSpec) -> Path:
    """The committed checkpoint of a world backbone (UsageError when it is not in this checkout)."""
    from benchmark.world.model import WORLD_CHECKPOINTS

    path = WORLD_CHECKPOINTS[spec.label]
    if not path.is_file():
        raise UsageError(f"backbone {spec.label}: its checkpoint {path} is missing from this checkout")
    return path


def parse_backbone(text: str) -> BackboneSpec:
    """Parse a backbone string; model names are checked against open_clip's list lazily."""
    text = text.strip()
    if text == WORLD:
        return BackboneSpec(WORLD)
    if text.lower() in WORLD_BACKBONES:
        return BackboneSpec(WORLD, name=text.lower())
    if text.split(":")[0] == RANDOM_TINY:
        seed = text.partition(":")[2] or "0"
        if not seed.isdigit():
            raise UsageError(f"backbone {text!r}: the seed after '{RANDOM_TINY}:' must be an integer")
        return BackboneSpec(RANDOM_TINY, seed=int(seed))
    model, _, pretrained = text.partition(":")
    if not model:
        raise UsageError(f"backbone {text!r}: expected MODEL[:PRETRAINED], e.g. {PAPER_DEFAULT}")
    entry = named_backbone(model)
    if entry is not None:
        return _named_spec(entry, pretrained, text)
    if looks_named(model):  # `remoteclip-vit-b-16`, `skyclip`: no open_clip model starts like a family name
        from benchmark.registry import unknown_name_message

        raise UsageError(unknown_name_message("named backbone", model.lower(), BACKBONES))
    return BackboneSpec("open_clip", model=model, pretrained=pretrained)


def _named_spec(entry: NamedBackbone, pretrained: str, text: str) -> BackboneSpec:
    if pretrained and not _looks_like_path(pretrained):
        raise UsageError(
            f"backbone {text!r}: only a local file may follow a named backbone "
            f"({entry.name}:/path/to/{entry.file_name})"
        )
    if entry.source == "open_clip":  # a spelling of ARCH:TAG, with the same label and run keys
        if pretrained:  # its weights as a local file: the architecture they were trained with
            model = f"{entry.architecture}-quickgelu" if entry.quick_gelu else entry.architecture
            return BackboneSpec("open_clip", model=model, pretrained=pretrained)
        return BackboneSpec("open_clip", model=entry.architecture, pretrained=entry.tag)
    return BackboneSpec(NAMED, model=entry.architecture, pretrained=pretrained, name=entry.name)


def validate_backbone(spec: BackboneSpec) -> None:
    """Check names, tags and files before any work starts (no download, no weights loaded)."""
    if spec.kind == WORLD:
        _world_checkpoint(spec)
        return
    if spec.kind == NAMED:
        _validate_named(spec)
        return
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
        if close_names(spec.model):
            raise UsageError(unknown_name_message("named backbone", spec.model, BACKBONES))
        raise UsageError(unknown_name_message("open_clip model", spec.model, open_clip.list_models()))
    if not spec.pretrained:
        return
    if _looks_like_path(spec.pretrained):
        _check_local(spec.pretrained, "")
        return
    tags = open_clip.list_pretrained_tags_by_model(spec.model)
    if spec.pretrained not in tags:
        what = f"pretrained tag of {spec.model} (or a checkpoint file path)"
        raise UsageError(unknown_name_message(what, spec.pretrained, tags))


def _validate_named(spec: BackboneSpec) -> None:
    entry = spec.entry
    if entry is None:
        raise UsageError(f"unknown named backbone {spec.name!r}")
    if not entry.supported:
        others = [n for n, e in BACKBONES.items() if e.family == entry.family and e.supported]
        raise UsageError(
            f"backbone {entry.name}: its {entry.architecture} image tower is not a ViT, and the harness runs ViT "
            f"towers only (use {' or '.join(others) or 'a ViT backbone'})"
        )
    if spec.pretrained:
        _check_local(spec.pretrained, entry.member)
    elif entry.source == "user_file":
        raise UsageError(
            f"backbone {entry.name}: its weights are not on the Hugging Face hub; download {entry.download} "
            f"and pass --backbone {entry.name}:/path/to/{entry.member} (or the .zip itself)"
        )


def _check_local(text: str, member: str) -> None:
    from benchmark.backbone.sources import archive_member, is_archive

    path = Path(text).expanduser()
    if not path.is_file():
        raise UsageError(f"backbone checkpoint not found: {text}")
    if is_archive(path):
        archive_member(path, member)  # names the checkpoint inside, or says why it cannot


def pretrained_tag(spec: BackboneSpec) -> str | None:
    """The open_clip pretrained tag whose weights `spec` downloads; None for files, random and embedded weights."""
    if spec.kind != "open_clip" or not spec.pretrained or _looks_like_path(spec.pretrained):
        return None
    return spec.pretrained


def hub_source(spec: BackboneSpec) -> NamedBackbone | None:
    """The registry entry whose hub file `spec` loads (None: no hub file, or a local copy named instead)."""
    entry = spec.entry
    return entry if entry is not None and entry.source == "hf_hub" and not spec.pretrained else None


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


# -- weights files and identities ---------------------------------------------------------------------
def weights_file(spec: BackboneSpec, *, fetch: bool = True):
    """The checkpoint file `spec` loads, with its source and sha256 (None: no file, or not fetched).

    Named backbones resolve their hub file (`fetch=False`: only from the cache) or the local file (an
    archive's member extracted), and their digest must match the one trusted on first use.

    Raises:
        UsageError: a hub file absent offline or not downloadable; a digest other than the trusted one.
    """
    from benchmark.backbone.sources import WeightsFile, check_trust, file_digest, hub_file, local_file

    if spec.kind not in (NAMED, "open_clip"):
        return None
    if spec.kind == "open_clip" and not (spec.pretrained and _looks_like_path(spec.pretrained)):
        return None
    entry = hub_source(spec)
    if entry is not None:
        hint = f"pass --backbone {entry.name}:/path/to/{entry.file_name}"
        path = hub_file(entry.repo, entry.filename, label=spec.label, local_hint=hint, fetch=fetch)
        if path is None:
            return None
        found = WeightsFile(path, f"{entry.repo}/{entry.filename}", file_digest(path))
    else:
        path, source = local_file(spec.pretrained, spec.entry.member if spec.entry else "")
        found = WeightsFile(path, source, file_digest(path))
    if spec.kind == NAMED:
        check_trust(spec.name, found.source, found.sha256, record=fetch)
    return found


def file_identity(spec: BackboneSpec, found) -> str:
    """The identity of weights read from a file: `NAME@<12 hex>` (named) or `MODEL:file@<12 hex>`."""
    if spec.kind == NAMED:
        return f"{spec.name}@{found.sha256[:12] if found is not None else NOT_CACHED}"
    return f"{spec.model}:file@{found.sha256[:12]}"


def backbone_identity(spec: BackboneSpec, *, fetch: bool = True) -> str:
    """What identifies the weights (part of run keys and cache keys), computed without loading them.

    A checkpoint file is identified by its sha256 (`MODEL:file@<12 hex>`, `NAME@<12 hex>` for a named
    backbone, whose hub file is fetched for it unless `fetch` is False: then an uncached one reads
    `NAME@not-cached`).
    """
    if spec.kind == WORLD:
        from benchmark.world.model import world_clip_digest

        return f"{spec.label}@{world_clip_digest(_world_checkpoint(spec).with_suffix('.json'))[:12]}"
    found = weights_file(spec, fetch=fetch)
    if found is not None or spec.kind == NAMED:
        return file_identity(spec, found)
    if spec.kind == "open_clip" and not spec.pretrained:
        return f"{spec.model}:random-init-seed0"
    return spec.label


# -- loading -----------------------------------------------------------------------------------------
def load_backbone(spec: BackboneSpec, device: str = "cpu", *, allow_partial: bool = False):
    """Load the weights named by `spec` into a `FrozenClip` on `device`.

    A checkpoint file is audited (`allow_partial`: see `benchmark.backbone.audit`); the `FrozenClip`'s tags
    carry the file's sha256 (`backbone_sha256`) and a partial load's counts (`partial_weights`).
    """
    from benchmark.backbone.clip import FrozenClip

    tags: dict[str, str] = {}
    if spec.kind == WORLD:
        from benchmark.world.model import load_world_clip

        model, identity = load_world_clip(_world_checkpoint(spec)), backbone_identity(spec)
    elif spec.kind == RANDOM_TINY:
        model, identity = build_tiny_clip(spec.seed), backbone_identity(spec)
    else:
        validate_backbone(spec)
        found = weights_file(spec)
        if found is not None:
            entry = spec.entry
            model, report, layout = load_weights(
                spec.model,
                found.path,
                quick_gelu=bool(entry and entry.quick_gelu),
                label=spec.label,
                allow_partial=allow_partial,
            )
            if entry is not None and layout != entry.format:
                log.info(
                    "backbone %s: the file is in the %s layout (%s is distributed as %s)",
                    spec.label,
                    layout,
                    entry.name,
                    entry.format,
                )
            identity, tags = file_identity(spec, found), {"backbone_sha256": found.sha256, **report.tags()}
        else:
            model, identity = _load_open_clip(spec), backbone_identity(spec)
    return FrozenClip(model.float().to(device), identity=identity, tags=tags)


def _load_open_clip(spec: BackboneSpec):
    """A tag's weights (cached file or open_clip's download), or a seeded random initialisation."""
    if spec.pretrained:
        return load_tagged(spec)
    log.warning("backbone %s: no pretrained weights named; the model is randomly initialised", spec.label)
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # random weights must still be the same ones in every worker and run
        return skeleton(spec.model)
