"""Where model weights would come from, and whether a local cache already holds them (no network).

Shared by the backbone loader, the named backbones' hub files, the caption models and the sweep's pre-flight
model check (`benchmark.plan.models`), so that "is it cached?" and "are we offline?" have one answer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def offline_variable() -> str | None:
    """The variable (`HF_HUB_OFFLINE`, `TRANSFORMERS_OFFLINE`) that asks for no network access, if one does.

    Read now, not at import time: `benchmark.plan.models` sets `HF_HUB_OFFLINE` when it finds the hub
    unreachable, after `huggingface_hub` and `transformers` have read their own copies.
    """
    for name in OFFLINE_VARIABLES:
        if os.environ.get(name, "").strip().lower() in ("1", "on", "yes", "true"):
            return name
    return None


def hf_offline() -> bool:
    """Whether the environment asks for no network access (see `offline_variable`)."""
    return offline_variable() is not None


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache as `huggingface_hub` resolves it from the environment."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "huggingface" / "hub"


def weight_locations(cfg: dict[str, Any]) -> list[tuple[str, Path | tuple[str, str]]]:
    """Where open_clip would fetch a tag's weights: ("file", path), ("hf", (repo, file)) or ("url", cached path)."""
    from open_clip.pretrained import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    places: list[tuple[str, Path | tuple[str, str]]] = []
    if cfg.get("file"):
        places.append(("file", Path(cfg["file"])))
    if cfg.get("hf_hub"):
        repo, filename = os.path.split(cfg["hf_hub"])
        filename = filename or HF_WEIGHTS_NAME
        names = [HF_SAFE_WEIGHTS_NAME] if filename == HF_WEIGHTS_NAME else []
        if filename.endswith((".bin", ".pth")) and filename != HF_WEIGHTS_NAME:
            names.append(filename[:-4] + ".safetensors")
        places.extend(("hf", (repo, name)) for name in (*names, filename))
    if cfg.get("url"):
        places.append(("url", Path("~/.cache/clip").expanduser() / os.path.basename(cfg["url"])))
    return places


def hub_cached_file(repo: str, filename: str) -> Path | None:
    """The file `filename` of hub repository `repo` in the local Hugging Face cache (`main`), or None; no network."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, filename, cache_dir=str(hf_cache_dir()))
    return Path(found) if isinstance(found, str) and Path(found).is_file() else None


def first_cached(places) -> Path | None:
    """The first of `places` ((kind, where) pairs, as `weight_locations` lists them) held by a local cache.

    `("hf", (repo, file))` or `("hf", "repo/file")` is looked up in the hub cache; any other kind is a path
    (`~` expanded now).
    """
    for kind, where in places:
        if kind == "hf":
            repo, filename = where if isinstance(where, tuple) else _split_hub_path(str(where))
            found = hub_cached_file(repo, filename)
            if found is not None:
                return found
        elif Path(where).expanduser().is_file():
            return Path(where).expanduser()
    return None


def _split_hub_path(text: str) -> tuple[str, str]:
    """`org/repo/dir/file` -> (`org/repo`, `dir/file`)."""
    org, repo, filename = text.split("/", 2)
    return f"{org}/{repo}", filename


def cached_weights(model: str, tag: str) -> Path | None:
    """The local file holding the weights of `model:tag`, if some cache has it (no network)."""
    import open_clip

    return first_cached(weight_locations(open_clip.get_pretrained_cfg(model, tag)))


def hub_fetch_advice(downloads: list[tuple[str, ...]]) -> str:
    """How to bring hub files to a machine that cannot download them: one `hf download` command per repo.

    Each download is `(repo, *files)` (no files: the whole repo). Shared by the pre-flight model check and
    the named backbones' loader, so the advice reads the same wherever a model turns out to be missing.
    """
    commands = join_and([f"`hf download {' '.join(download)}`" for download in downloads])
    return f"on a connected machine run {commands}, then copy that cache here or point HF_HUB_CACHE at a copy"


def join_and(items: list[str]) -> str:
    """`a`, `a and b`, `a, b and c`: a list in a message ('' for none)."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"
