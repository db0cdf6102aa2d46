"""Every model a sweep loads is checked before its first cell, instead of being found missing inside one.

A sweep loads up to three models: the backbone (an open_clip pretrained tag such as `ViT-B-16:openai`
downloads from the Hugging Face hub or a URL; a named backbone such as `remoteclip-vit-b-32` is one file
of a hub repository) and, when a selected method uses captions (BiMoRS), the
profile's captioner (`blip2`: `Salesforce/blip2-flan-t5-xl` through transformers) and caption encoder
(`bert-base-uncased` from the hub; `all-minilm-l6-v2` ships in a package). Loaded lazily inside a cell,
a model missing on an offline machine cost minutes of the hub client's retries, file by file, and then
a failed cell (exit 1) after the image check. `check_models`, called by `build_plan`, finds it first:

* a local folder (the packaged encoder, a `blip2:<folder>` captioner, an encoder named by its folder)
  must hold a config, weights and tokenizer files, or it is a `UsageError` at once;
* a hub model must be complete in the local Hugging Face cache, which needs no network to know;
* what is missing must be downloadable: not with `HF_HUB_OFFLINE`/`TRANSFORMERS_OFFLINE` set, and
  otherwise only if its host answers one probe with a short timeout (one per host and process, never
  per file). If not: one `UsageError` line naming the model and where its files go (exit 2);
* the hub unreachable but every model cached: `HF_HUB_OFFLINE=1` is set in this process's environment,
  which the workers inherit, so that cached transformers models load without asking the hub about
  each of their files (`Blip2Captioner` and `MeanPoolEncoder` pass `local_files_only` when it is set).

Every caption and embedding being in the caption cache would make the captioner and encoder unnecessary,
but knowing that takes the sha256 of every image of the plan (reading every byte), so a caption method
in the plan always requires both models. The world profile's models are local (embedded backbone, the
datasets' captions, the packaged encoder): it probes nothing.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from benchmark.backbone.hub_cache import (
    cached_weights,
    hf_cache_dir,
    hub_cached_file,
    hub_fetch_advice,
    join_and,
    offline_variable,
)
from benchmark.errors import UsageError

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 4.0  # one HEAD request; an unreachable host costs at most this (plus 1 s for DNS)
CONFIG = ("config.json",)
WEIGHTS = ("model.safetensors", "pytorch_model.bin")
SHARD_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
TOKENIZER = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "spiece.model", "vocab.json")
IMAGE_PROCESSOR = ("preprocessor_config.json", "processor_config.json")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_REACHABLE: dict[str, bool] = {}  # host URL -> answered the probe (once per process)
_SET_HERE: dict[str, str] = {}  # offline variables this module set (a later check must not blame the user)


@dataclass(frozen=True)
class Model:
    """One model a sweep loads, and whether it is available without a download.

    Attributes:
        role: what it is for, as the user knows it (`captioner blip2`, `backbone ViT-B-16:openai`).
        name: what to download: a hub repo id, or a URL.
        host: where a download would come from (the hub endpoint, or the URL's origin; '' for none).
        problem: why it is not available locally (MISSING, or what an incomplete copy lacks); '' when it is.
        asks_hub: loading it from the cache still asks the hub about each file (transformers does,
            unless offline mode is set).
        other_way: how else to provide it on an offline machine ('' for none).
        files: the files of hub repo `name` that are needed, when not the whole repo (a named backbone's
            checkpoint): named in the message and its `hf download` command.
    """

    role: str
    name: str
    host: str
    problem: str
    asks_hub: bool
    other_way: str = ""
    files: tuple[str, ...] = ()


MISSING = "not cached"


def check_models(profile, backbone, *, captions: bool, require: bool = True) -> None:
    """Check that every model a sweep on `profile` with `backbone` loads can be loaded, before any cell.

    Args:
        profile: the sweep's `Profile` (its `captioner` and `caption_encoder`).
        backbone: the parsed, validated `BackboneSpec`.
        captions: whether a selected method uses captions (then the captioner and encoder are needed).
        require: raise for a model that cannot be loaded; False (a dry run) logs a warning instead.

    Raises:
        UsageError: one line naming each model that is neither local nor downloadable, and what to do.
    """
    models = needed_models(profile, backbone, captions=captions)
    if not models:  # all local (the world profile): not even the hub client is imported
        return
    missing = [m for m in models if m.problem]
    offline = offline_variable()
    if offline and _SET_HERE.get(offline) == os.environ.get(offline):  # we set it: the hub was found unreachable
        message = _message(missing, lambda host: _unreachable(host, hub_endpoint()))
    elif offline:
        message = _message(missing, lambda host: f"{offline} is set")
    else:
        hub = hub_endpoint()
        hosts = {m.host for m in missing if m.host} | ({hub} if any(m.asks_hub for m in models) else set())
        reachable = {host: host_reachable(host) for host in sorted(hosts)}
        for m in missing:
            if reachable.get(m.host):
                log.info("%s: %s is not cached; it is downloaded from %s when first loaded", m.role, m.name, m.host)
        if require and not missing and reachable.get(hub) is False:
            os.environ["HF_HUB_OFFLINE"] = _SET_HERE["HF_HUB_OFFLINE"] = "1"  # workers inherit it: no per-file retries
            log.info("the hub %s is unreachable and every model is cached: HF_HUB_OFFLINE=1 for this sweep", hub)
        message = _message([m for m in missing if not reachable.get(m.host)], lambda host: _unreachable(host, hub))
    if message and require:
        raise UsageError(message)
    if message:
        log.warning("a run would stop here: %s", message)


def needed_models(profile, backbone, *, captions: bool) -> list[Model]:
    """The models the sweep loads from the hub or a URL (local folders are checked here, raising at once)."""
    models = []
    weights = _backbone_model(backbone)
    if weights is not None:
        models.append(weights)
    if captions:
        models += _captioner_models(profile.captioner)
        models += _encoder_models(profile.caption_encoder)
    return models


def hub_endpoint() -> str:
    """The Hugging Face hub the libraries download from (`HF_ENDPOINT`, default https://huggingface.co)."""
    from huggingface_hub import constants

    return str(constants.ENDPOINT).rstrip("/")


def host_reachable(url: str) -> bool:
    """Whether `url` answers a HEAD request within `PROBE_TIMEOUT_S` (asked once per process)."""
    if url not in _REACHABLE:
        _REACHABLE[url] = _probe(url)
    return _REACHABLE[url]


def _probe(url: str) -> bool:
    """One HEAD request through the hub client's session (its proxies and certificates); any answer counts."""
    answered: list[bool] = []

    def attempt() -> None:
        from huggingface_hub.utils import get_session

        try:
            get_session().head(url, timeout=PROBE_TIMEOUT_S)
            answered.append(True)
        except Exception as exc:  # noqa: BLE001 - any failure to get an answer means "unreachable"
            log.debug("probe of %s failed: %s", url, exc)

    # A thread bounds the wait even where name resolution ignores the request's timeout.
    thread = threading.Thread(target=attempt, name="hub-probe", daemon=True)
    thread.start()
    thread.join(PROBE_TIMEOUT_S + 1)
    log.debug("probed %s: %s", url, "reachable" if answered else "unreachable")
    return bool(answered)


# -- what each model needs --------------------------------------------------------------------------
def _backbone_model(spec) -> Model | None:
    """The backbone's weights when they come from a tag or a named backbone's hub file.

    None for a local file (checked by `validate_backbone`), embedded or random weights.
    """
    from benchmark.backbone.load import hub_source, pretrained_tag

    entry = hub_source(spec)
    if entry is not None:  # one file of a hub repository, fetched by `benchmark.backbone.sources.hub_file`
        problem = "" if hub_cached_file(entry.repo, entry.filename) is not None else MISSING
        local = f"pass --backbone {entry.name}:/path/to/{entry.file_name}"
        return Model(f"backbone {spec.label}", entry.repo, hub_endpoint(), problem, False, local, (entry.filename,))
    tag = pretrained_tag(spec)
    if tag is None:
        return None
    import open_clip

    cfg = open_clip.get_pretrained_cfg(spec.model, tag)
    role, local = f"backbone {spec.label}", f"pass --backbone {spec.model}:/path/to/weights.pt"
    problem = "" if cached_weights(spec.model, tag) is not None else MISSING  # the hub cache or ~/.cache/clip
    if cfg.get("hf_hub"):  # open_clip downloads from the hub when a tag names a repo there
        return Model(role, os.path.split(cfg["hf_hub"])[0], hub_endpoint(), problem, False, local)
    url = str(cfg.get("url", ""))
    folder = Path("~/.cache/clip").expanduser()
    other = f"download {url or 'its weights'} into {folder} on a connected machine, or {local}"
    return Model(role, url or tag, _origin(url), problem and f"not in {folder}", False, other)


def _captioner_models(name: str) -> list[Model]:
    """The captioner's model: none for `dataset`, BLIP-2 (a hub name or a folder) for `blip2[:SOURCE]`."""
    from benchmark.captions.captioners import make_captioner

    source = getattr(make_captioner(name, device="cpu"), "source", None)  # validates the name; loads nothing
    if source is None:
        return []
    groups = (CONFIG, WEIGHTS, TOKENIZER, IMAGE_PROCESSOR)
    if Path(source).is_dir() or not _REPO_ID.match(source):  # Blip2Captioner's own test for a folder
        _check_folder(f"captioner {name}", Path(source), groups)
        return []
    return [_hub_model(f"captioner {name}", source, groups)]


def _encoder_models(name: str) -> list[Model]:
    """The caption encoder's model: a hub name, or a folder (packaged or named by its path)."""
    from benchmark.captions.encoders import encoder_source

    source = encoder_source(name)  # raises for an unknown name or a missing package
    groups = (CONFIG, WEIGHTS, TOKENIZER)
    if isinstance(source, Path):
        _check_folder(f"caption encoder {name}", source, groups)
        return []
    return [_hub_model(f"caption encoder {name}", source, groups)]


def _hub_model(role: str, repo: str, groups: tuple[tuple[str, ...], ...]) -> Model:
    """A transformers model by hub name: complete in the local cache (files of the `main` revision), or not."""
    gap = _first_gap(lambda filename: hub_cached_file(repo, filename), groups)
    problem = MISSING if gap == _gap_text(CONFIG) else gap and f"incomplete: {gap}"
    return Model(role, repo, hub_endpoint(), problem, True)


def _check_folder(role: str, folder: Path, groups: tuple[tuple[str, ...], ...]) -> None:
    """A local model folder must hold every file group (UsageError naming the first gap)."""
    if not folder.is_dir():
        raise UsageError(f"{role}: model folder {folder} not found")
    gap = _first_gap(lambda name: folder / name if (folder / name).is_file() else None, groups)
    if gap:
        raise UsageError(f"{role}: model folder {folder} is incomplete: {gap} (write it with save_pretrained)")


def _first_gap(lookup: Callable[[str], Path | None], groups: tuple[tuple[str, ...], ...]) -> str:
    """What the first unmet file group lacks ('' when every group has a file); weights may be sharded."""
    for group in groups:
        if any(lookup(name) for name in group):
            continue
        if group != WEIGHTS:
            return _gap_text(group)
        index = next((path for path in map(lookup, SHARD_INDEXES) if path), None)
        if index is None:
            return _gap_text(group + SHARD_INDEXES)
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (OSError, ValueError, KeyError, AttributeError):
            return f"unreadable shard index {index.name}"
        absent = [shard for shard in shards if not lookup(shard)]
        if absent:
            return f"no {absent[0]} (weights shard {shards.index(absent[0]) + 1} of {len(shards)})"
    return ""


def _gap_text(group: tuple[str, ...]) -> str:
    return f"no {group[0]}" if len(group) == 1 else f"none of {', '.join(group)}"


# -- the message ------------------------------------------------------------------------------------
def _message(blocked: list[Model], why: Callable[[str], str]) -> str:
    """One line for every model that can be neither loaded nor downloaded ('' for none).

    Hub models share one sentence (one cache, one command per repo); others get their own.
    """
    parts = []
    hub = [m for m in blocked if m.host == hub_endpoint()] if blocked else []
    if hub:
        needs = join_and([_needs(m) + (f" ({m.problem})" if m.problem != MISSING else "") for m in hub])
        advice = hub_fetch_advice([(m.name, *m.files) for m in hub])
        others = "".join(f" (or {m.other_way})" for m in hub if m.other_way)
        parts.append(
            f"{needs}, which the Hugging Face cache ({hf_cache_dir()}) lacks, and {why(hub[0].host)}: {advice}{others}"
        )
    for m in blocked:
        if m not in hub:
            parts.append(f"{_needs(m)}: {m.problem}, and {why(m.host)}; {m.other_way}")
    return "; ".join(parts)


def _needs(model: Model) -> str:
    """`captioner blip2 needs Salesforce/blip2-flan-t5-xl`, or `caption encoder bert-base-uncased` alone.

    A model needing some files of its repo names them:
    `backbone remoteclip-vit-b-32 needs RemoteCLIP-ViT-B-32.pt of chendelong/RemoteCLIP`.
    """
    if model.files:
        return f"{model.role} needs {join_and(list(model.files))} of {model.name}"
    return model.role if model.role.endswith(f" {model.name}") else f"{model.role} needs {model.name}"


def _unreachable(host: str, hub: str) -> str:
    if not host:
        return "it has no download location"
    return f"the hub {hub} is unreachable" if host == hub else f"{host} is unreachable"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
