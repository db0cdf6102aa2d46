"""Weights for open_clip backbones: pretrained tags (with a fast offline failure) and checkpoint files.

Why the loading is done here rather than by `open_clip.create_model(pretrained=FILE)`: checkpoint files
are read with `torch.load(weights_only=True)` only (never arbitrary pickles), wrapped state dicts
(`{"state_dict": ...}`, `module.` prefixes from DDP) are unwrapped, every load is audited
(`benchmark.backbone.audit`: a file that does not fill the named architecture, or holds more, fails with one
line naming the missing and unexpected keys by tower, unless a partial load is allowed), and OpenAI-format
files (the `clip` package's TorchScript archives, or state dicts carrying its `input_resolution`/
`context_length`/`vocab_size` entries) are rebuilt by `open_clip.model.build_model_from_openai_state_dict`,
which infers the architecture and uses QuickGELU as OpenAI trained with. Plain state dicts are loaded into `MODEL`
as named: pick `MODEL-quickgelu` for weights trained with QuickGELU.

Pretrained tags resolve to open_clip's download locations (`benchmark.plan.models` checks them before a
sweep starts). With `HF_HUB_OFFLINE` or `TRANSFORMERS_OFFLINE` set, weights that
are not in the local caches (the Hugging Face hub cache, open_clip's `~/.cache/clip`) fail at once with
one line instead of a minute of retries; weights that are cached are loaded from there by the same
file loader.
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.backbone.audit import WeightReport, audit_state, enforce
from benchmark.backbone.hub_cache import cached_weights, hf_cache_dir, hf_offline, offline_variable, weight_locations
from benchmark.errors import UsageError

log = logging.getLogger(__name__)

TINY_MODEL = "tiny"  # the TINY_CONFIG architecture, weights from a file: `tiny:/path/ckpt.pt`

# Entries of OpenAI state dicts (and of traced archives) that are not parameters of an open_clip CLIP.
OPENAI_MARKERS = ("input_resolution", "context_length", "vocab_size")
IGNORED_KEYS = (*OPENAI_MARKERS, "attn_mask", "text.transformer.embeddings.position_ids")

# A small open_clip CLIP (timm's test_vit scale) for tests: the full BPE vocabulary, few layers.
TINY_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 64, "layers": 2, "head_width": 32},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    "quick_gelu": True,
}


def load_tagged(spec):
    """Weights of open_clip pretrained tag `spec.pretrained` for `spec.model`: cached files, else a download."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(spec.model, spec.pretrained)
    quick_gelu = bool(cfg.get("quick_gelu", False))
    found = cached_weights(spec.model, spec.pretrained)
    if found is not None:
        log.info("backbone %s: weights from %s", spec.label, found)
        return load_checkpoint_file(spec.model, found, quick_gelu=quick_gelu, label=spec.label)
    if hf_offline():
        places = [f"{w[0]}/{w[1]}" if k == "hf" else str(w) for k, w in weight_locations(cfg)]
        raise UsageError(
            f"cannot load backbone {spec.label}: {offline_variable()} is set and its weights are not in the local "
            f"caches (looked for {', '.join(places[:3])} under {hf_cache_dir()}); fetch them once with network access, "
            f"or pass a local file as {spec.model}:/path/to/weights.pt"
        )
    try:
        model = open_clip.create_model(spec.model, pretrained=spec.pretrained, precision="fp32")
    except (OSError, RuntimeError, ValueError) as exc:
        raise UsageError(f"cannot load backbone {spec.label}: {_first_line(exc)}") from None
    return model


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


# -- checkpoint files ---------------------------------------------------------------------------
def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive (OpenAI's released `.pt` files) rather than a `torch.save` file."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") or "/code/" in name for name in archive.namelist())


@dataclass(frozen=True)
class Checkpoint:
    """The state dict of a checkpoint file and the layout it was found in.

    Attributes:
        state: `{name: tensor}`, unwrapped and without the `module.` prefix.
        layout: a `benchmark.backbone.registry` format: `open_clip` (a plain state dict), `wrapped` (under
            `state_dict`/`model`), `training` (keys prefixed `module.`, as open_clip's training saves them,
            usually wrapped too) or `openai` (a TorchScript archive or a state dict with OpenAI's extra entries).
    """

    state: dict[str, Any]
    layout: str

    @property
    def openai(self) -> bool:
        """OpenAI's format: the architecture is read from the weights (QuickGELU)."""
        return self.layout == "openai"


def _safetensors_shapes(path: Path) -> dict[str, Any]:
    """A `.safetensors` file's tensors as meta tensors: names and shapes from its header, no data read."""
    import torch
    from safetensors import safe_open

    with safe_open(str(path), framework="pt", device="cpu") as handle:
        return {key: torch.empty(handle.get_slice(key).get_shape(), device="meta") for key in handle.keys()}  # noqa: SIM118


def open_checkpoint(path: Path, *, shapes_only: bool = False) -> Checkpoint:
    """The state dict in a checkpoint file, and its layout.

    Unwraps `{"state_dict": ...}` / `{"model": ...}` and a `module.` prefix on every key. TorchScript
    archives (OpenAI releases) are opened with `torch.jit.load`, which restores TorchScript code but
    unpickles no Python objects; anything else must load with `torch.load(weights_only=True)`, memory-mapped
    when the file allows it (its tensors are read when used, so comparing names and shapes reads little).
    `shapes_only` (an audit): a `.safetensors` file gives meta tensors from its header, reading no weights.

    Raises:
        UsageError: the file cannot be read that way or holds no tensor state dict.
    """
    import torch

    path = Path(path)
    if _is_torchscript(path):
        try:
            state = dict(torch.jit.load(str(path), map_location="cpu").state_dict())
        except (RuntimeError, OSError, ValueError) as exc:
            raise UsageError(
                f"backbone checkpoint {path}: cannot read the TorchScript archive ({_first_line(exc)})"
            ) from None
        return Checkpoint({k: v for k, v in state.items() if k not in ("attn_mask",)}, "openai")
    try:
        if path.suffix == ".safetensors" and shapes_only:
            obj: Any = _safetensors_shapes(path)  # an audit compares names and shapes: the header holds them
        elif path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj = load_file(str(path), device="cpu")
        else:
            obj = _torch_load(path)
    except Exception as exc:  # noqa: BLE001 - unpickling errors come in many types; all mean "not readable safely"
        raise UsageError(f"backbone checkpoint {path}: not a weights-only torch file ({_first_line(exc)})") from None
    wrapped = False
    for key in ("state_dict", "model"):
        while isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj, wrapped = obj[key], True
    if not isinstance(obj, dict) or not obj or not all(isinstance(k, str) for k in obj):
        raise UsageError(f"backbone checkpoint {path}: no state dict found (expected {{name: tensor}})")
    prefixed = all(k.startswith("module.") for k in obj)
    if prefixed:
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    if any(k in obj for k in OPENAI_MARKERS):
        layout = "openai"
    else:
        layout = "training" if prefixed else "wrapped" if wrapped else "open_clip"
    return Checkpoint(obj, layout)


def _torch_load(path: Path) -> Any:
    """`torch.load(weights_only=True)`, memory-mapped unless the file predates the zip serialisation."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc):
            raise
    return torch.load(path, map_location="cpu", weights_only=True)


def _model_config(model: str) -> dict[str, Any] | None:
    import open_clip

    return TINY_CONFIG if model == TINY_MODEL else open_clip.get_model_config(model)


def skeleton(model: str, *, quick_gelu: bool = False, device: str = "cpu"):
    """A randomly initialised `model` (the architecture the weights are loaded into).

    `device="meta"` builds it without memory or initialisation: its names and shapes only.
    """
    import open_clip
    import torch

    with torch.device(device):
        if model == TINY_MODEL:
            return open_clip.model.CLIP(**{**TINY_CONFIG, "quick_gelu": TINY_CONFIG["quick_gelu"] or quick_gelu})
        quiet = _DropRecords("No pretrained weights loaded")  # open_clip's warning before our own load
        logging.getLogger().addFilter(quiet)
        try:
            return open_clip.create_model(model, precision="fp32", force_quick_gelu=quick_gelu, device=device)
        finally:
            logging.getLogger().removeFilter(quiet)


def seeded_skeleton(model: str, *, quick_gelu: bool = False):
    """`skeleton` initialised from seed 0: weights a partial load leaves out are the same in every worker."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return skeleton(model, quick_gelu=quick_gelu)


def expected_shapes(model: str, *, quick_gelu: bool = False) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor `model` loads (built on the meta device: no memory, no initialisation)."""
    try:
        net = skeleton(model, quick_gelu=quick_gelu, device="meta")
    except (RuntimeError, NotImplementedError, TypeError, ValueError):  # a tower that cannot be built on meta
        net = skeleton(model, quick_gelu=quick_gelu)
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


class _DropRecords(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def _openai_architecture(state: dict[str, Any]) -> dict[str, int]:
    """Shape-derived sizes of an OpenAI-format ViT state dict (what `build_model_from_openai_state_dict` infers)."""
    conv = state["visual.conv1.weight"]
    return {
        "embed_dim": int(state["text_projection"].shape[1]),
        "vision width": int(conv.shape[0]),
        "patch size": int(conv.shape[-1]),
        "vision layers": sum(1 for k in state if k.startswith("visual.") and k.endswith(".attn.in_proj_weight")),
        "text width": int(state["ln_final.weight"].shape[0]),
        "text layers": len({k.split(".")[2] for k in state if k.startswith("transformer.resblocks.")}),
        "context length": int(state["positional_embedding"].shape[0]),
    }


def _check_openai_fits(model: str, state: dict[str, Any], path: Path) -> None:
    """One line naming the first size that differs between an OpenAI-format file and `model`.

    A file lacking the entries the sizes are read from is left to the audit, which names what it lacks.
    """
    cfg = _model_config(model)
    if not cfg or "visual.proj" not in state or not isinstance(cfg.get("vision_cfg"), dict):
        return  # ResNet or custom towers: the architecture is taken from the file as is
    vision, text = cfg["vision_cfg"], cfg.get("text_cfg", {})
    expected = {
        "embed_dim": cfg.get("embed_dim"),
        "vision width": vision.get("width"),
        "patch size": vision.get("patch_size"),
        "vision layers": vision.get("layers"),
        "text width": text.get("width"),
        "text layers": text.get("layers"),
        "context length": text.get("context_length"),
    }
    try:
        found = _openai_architecture(state)
    except KeyError:
        return
    for key, want in expected.items():
        if isinstance(want, int) and found[key] != want:
            raise UsageError(
                f"backbone checkpoint {path} is an OpenAI-format model with {key} {found[key]}, "
                f"but {model} has {want}; name the matching architecture"
            )


def _prepared_state(model: str, checkpoint: Checkpoint, path: Path, own: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's tensors named and shaped as `model`'s (`own`: its names and shapes) expect them."""
    state = checkpoint.state
    if checkpoint.openai:
        _check_openai_fits(model, state, path)
    state = {k: v for k, v in state.items() if not (k in IGNORED_KEYS and k not in own)}
    for key in ("logit_scale", "logit_bias"):
        if key in state and key in own and state[key].ndim != len(own[key]):
            state[key] = state[key].reshape(own[key])
    return state


def audit_file(
    model: str, path: Path, *, quick_gelu: bool = False, label: str = "", allow_partial: bool = False
) -> WeightReport:
    """Check that a checkpoint file fills `model`, without loading its weights (names and shapes only).

    What a sweep calls before any cell, so that a checkpoint the load would refuse stops it with exit 2.

    Raises:
        UsageError: the file is unreadable, or does not fit `model` (`benchmark.backbone.audit.enforce`).
    """
    label = label or f"{model}:{path}"
    checkpoint = open_checkpoint(Path(path), shapes_only=True)
    own = expected_shapes(model, quick_gelu=quick_gelu or checkpoint.openai)
    state = _prepared_state(model, checkpoint, Path(path), own)
    return enforce(audit_state(own, state), label=label, model=model, allow_partial=allow_partial)


def load_weights(
    model: str, path: Path, *, quick_gelu: bool = False, label: str = "", allow_partial: bool = False
) -> tuple[Any, WeightReport, str]:
    """Build `model` with the weights of a local checkpoint file, audited: (model, report, the file's layout).

    Every tensor of `model` must come from the file and the file must hold nothing else (a strict load);
    `allow_partial` lets missing weights keep a seeded initialisation and ignores unexpected ones.
    OpenAI-format files use QuickGELU whatever `quick_gelu` says, as OpenAI trained them.

    Raises:
        UsageError: one line, for an unreadable file or one that does not fit `model` (see `audit`).
    """
    import open_clip
    import torch

    label = label or f"{model}:{path}"
    checkpoint = open_checkpoint(Path(path))
    if checkpoint.openai:
        own = expected_shapes(model, quick_gelu=True)
        state = _prepared_state(model, checkpoint, Path(path), own)
        report = enforce(audit_state(own, state), label=label, model=model, allow_partial=allow_partial)
        if report.complete:  # the architecture is read from the file, heads included, as OpenAI built it
            try:
                built = open_clip.model.build_model_from_openai_state_dict(dict(state), quick_gelu=True).float()
                # the builder rounds weights to fp16 (as OpenAI's release is); reload them at the file's precision
                built.load_state_dict(state, strict=True)
            except (KeyError, RuntimeError, ValueError, AssertionError) as exc:
                raise UsageError(
                    f"cannot load backbone {label}: not a loadable OpenAI state dict ({_first_line(exc)})"
                ) from None
            return built.float().eval(), report, checkpoint.layout
        net = seeded_skeleton(model, quick_gelu=True)  # a partial OpenAI file: the named architecture
    else:
        net = seeded_skeleton(model, quick_gelu=quick_gelu)
        own = {k: tuple(v.shape) for k, v in net.state_dict().items()}
        state = _prepared_state(model, checkpoint, Path(path), own)
        report = enforce(audit_state(own, state), label=label, model=model, allow_partial=allow_partial)
    with torch.no_grad():
        net.load_state_dict({k: v for k, v in state.items() if k in own}, strict=report.complete)
    return net.float().eval(), report, checkpoint.layout


def load_checkpoint_file(
    model: str, path: Path, *, quick_gelu: bool = False, label: str = "", allow_partial: bool = False
):
    """Build `model` with the weights of a local checkpoint file (UsageError with one line on any mismatch)."""
    return load_weights(model, path, quick_gelu=quick_gelu, label=label, allow_partial=allow_partial)[0]
