"""Numeric parity against the reference implementations (fixtures: methods/REFERENCES.md §6).

A fixture stores what the reference code computed on a small CLIP rebuilt from a seed recipe: eval
logits, training loss and every gradient. We rebuild the same weights (asserting their checksums),
load them into open_clip as an OpenAI-format state dict, build our method from the fixture's
reference config, set its parameters, and compare with the scaled error
`max|ours - ref| / max|ref|` per quantity (format and bounds: methods/REFERENCES.md §6).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from benchmark.core.train import TrainConfig
from benchmark.errors import UsageError

log = logging.getLogger(__name__)

FORMAT = "clip-prompt-parity/v1"
DEFAULT_BOUND = 1e-5
# Bounds (methods/REFERENCES.md §6): fp32 paths 1e-5; the fp16 paths
# that the references force (MaPLe's half casts, BiMoRS's fp16 cross-attention) are looser.
BOUNDS: dict[tuple[str, str | None], dict[str, float]] = {
    ("maple", None): {"logits": 1e-5, "loss": 1e-5, "grad": 2e-3},
    ("bimors", None): {"logits": 5e-3, "loss": 5e-3, "grad": 5e-3},
    # CLIP-LoRA's fp32 gradients through 2 x 3 blocks of low-rank terms: the reference itself moves by 7.6e-6
    # between 1 and 2 threads and sits 8.5e-6 from a float64 run (tests/parity/README.md).
    # PromptSRC and APPLeNet round injected prompts (and their gradients) to fp16 even in an fp32 run, as MaPLe.
    ("promptsrc", None): {"logits": 1e-5, "loss": 1e-5, "grad": 2e-3},
    ("applenet", None): {"logits": 1e-5, "loss": 1e-5, "grad": 2e-3},
    ("clip_lora", None): {"logits": 1e-5, "loss": 1e-5, "grad": 3e-5},
    ("clip_lora", "dropout_path"): {"logits": 1e-5, "loss": 1e-5, "grad": 3e-5},
}


def recipe_tensor(seed: int, shape: list[int], mean: float, std: float) -> Tensor:
    """The fixture's weight recipe: fp16-rounded uniform values of the given mean and std."""
    generator = torch.Generator().manual_seed(seed)
    u = torch.rand(shape, generator=generator, dtype=torch.float32)
    half_width = torch.tensor(std * math.sqrt(3.0), dtype=torch.float32)
    return ((u * 2 - 1) * half_width + mean).half().float()


def fp16_bits(t: Tensor) -> tuple[int, int]:
    """(sum, position-weighted sum) of the fp16 bit patterns read as int16."""
    bits = t.reshape(-1).half().view(torch.int16).long()
    weights = torch.arange(bits.numel()) % 65521 + 1
    return int(bits.sum()), int((bits * weights).sum())


def clip_state_dict(manifest: list[dict[str, Any]]) -> dict[str, Tensor]:
    """Rebuild the CLIP weights and assert every entry's bit checksums."""
    state = {}
    for entry in manifest:
        if entry["kind"] == "const":
            value = torch.full(entry["shape"], entry["value"])
        else:
            value = recipe_tensor(entry["seed"], entry["shape"], entry["mean"], entry["std"])
            if fp16_bits(value) != (entry["bits_sum"], entry["bits_wsum"]):
                raise ValueError(f"weight recipe checksum mismatch for {entry['key']}")
        state[entry["key"]] = value
    return state


def build_clip(manifest: list[dict[str, Any]]):
    """The fixture's CLIP as a `FrozenClip` (OpenAI-format state dict into open_clip, fp32)."""
    from open_clip.model import build_model_from_openai_state_dict

    from benchmark.backbone import FrozenClip

    model = build_model_from_openai_state_dict(clip_state_dict(manifest)).float()
    return FrozenClip(model, identity="parity-recipe")


def scaled_error(got: Tensor, expected: Tensor) -> float:
    """Max |got - expected| / max |expected| in float64."""
    got, expected = got.detach().double(), expected.detach().double()
    if got.shape != expected.shape:
        return math.inf
    scale = expected.abs().max().item() or 1.0
    return (got - expected).abs().max().item() / scale


@dataclass
class Check:
    """One compared quantity."""

    name: str
    error: float
    bound: float
    note: str = ""

    @property
    def ok(self) -> bool:
        """Within bound."""
        return self.error <= self.bound


def load_fixture(path: Path) -> dict[str, Any]:
    """Read a fixture (tensors and plain containers only: weights_only)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"parity fixture not found: {path}")
    try:
        fixture = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a usage problem
        raise UsageError(f"parity fixture {path}: cannot be read ({type(exc).__name__})") from None
    if not isinstance(fixture, dict) or fixture.get("format") != FORMAT:
        raise UsageError(f"parity fixture {path}: not a {FORMAT} file")
    return fixture


def _our_name(method, reference_name: str) -> str:
    mapped = type(method).reference_names.get(reference_name)
    if mapped is not None:
        return mapped
    return reference_name.removeprefix("prompt_learner.")


def _expected_dtype(entry: dict[str, Any], expected: dict[str, Any]) -> str:
    """A parameter's dtype in one case (fixture or variant).

    A variant that changes it (BiMoRS fp32_cross_attn) records its gradient, or gradient probe, in that
    dtype; otherwise the plan's reference dtype applies.
    """
    grad = expected.get("grads", {}).get(entry["name"])
    if grad is not None:
        return str(grad.dtype).removeprefix("torch.")
    probe = expected.get("grad_probes", {}).get(entry["name"])
    return probe["dtype"] if probe is not None else entry["ref_dtype"]


def _set_parameters(method, fixture: dict[str, Any], expected: dict[str, Any]) -> list[Check]:
    """Fill every `param_plan` tensor; check our own ctx_init initialisation against the stored value."""
    ours = dict(method.named_parameters())
    checks = []
    for entry in fixture["param_plan"]:
        name = _our_name(method, entry["name"])
        if name not in ours:
            raise KeyError(f"{type(method).__name__} has no parameter {name!r} (reference {entry['name']!r})")
        if entry["stored"]:
            value = fixture["params"][entry["name"]]
        else:
            value = recipe_tensor(entry["seed"], entry["shape"], entry["mean"], entry["std"])
        param = ours[name]
        if list(param.shape) != list(entry["shape"]):
            raise ValueError(f"{name}: shape {list(param.shape)} != reference {entry['shape']}")
        if entry["source"] == "ctx_init":
            checks.append(Check(f"init {entry['name']}", scaled_error(param.float(), value), DEFAULT_BOUND))
        with torch.no_grad():
            param.copy_(value.to(param.dtype))
        dtype = _expected_dtype(entry, expected)
        if str(param.dtype).removeprefix("torch.") != dtype:
            checks.append(Check(f"dtype {entry['name']}", math.inf, 0.0, f"{param.dtype} != {dtype}"))
    return checks


def _batch(fixture: dict[str, Any], with_labels: bool):
    from benchmark.core.method import Batch

    inputs = fixture["inputs"]
    captions = inputs.get("captions")
    return Batch(
        labels=inputs["labels"] if with_labels else None,
        images=inputs["images"],
        captions=None if captions is None else captions.reshape(captions.shape[0], -1),
    )


def _compare(method, fixture: dict[str, Any], expected: dict[str, Any], bounds: dict[str, float]) -> list[Check]:
    checks = []
    with method.evaluating():
        logits = method(_batch(fixture, with_labels=False))
    checks.append(Check("logits_eval", scaled_error(logits, expected["logits_eval"]), bounds["logits"]))

    if "loss_train" not in expected:
        return checks  # a method fitted without gradients (cache, closed form): its logits are the oracle
    method.train()
    method.zero_grad(set_to_none=True)
    batch = _batch(fixture, with_labels=True)
    logits = method(batch)
    loss = method.loss(logits, batch.labels)
    if loss.requires_grad:
        loss.backward()
    method.eval()
    checks.append(Check("loss_train", scaled_error(loss, torch.as_tensor(expected["loss_train"])), bounds["loss"]))
    if "logits_train" in expected:
        checks.append(Check("logits_train", scaled_error(logits, expected["logits_train"]), bounds["logits"]))

    params = dict(method.named_parameters())
    for ref_name, grad in expected.get("grads", {}).items():
        ours = params[_our_name(method, ref_name)].grad
        if ours is None:
            checks.append(Check(f"grad {ref_name}", math.inf, bounds["grad"], "no gradient"))
            continue
        note = "" if ours.dtype == grad.dtype else f"dtype {ours.dtype} != {grad.dtype}"
        error = scaled_error(ours, grad) if not note else math.inf
        checks.append(Check(f"grad {ref_name}", error, bounds["grad"], note))
    for ref_name, probe in expected.get("grad_probes", {}).items():
        ours = params[_our_name(method, ref_name)].grad
        if ours is None:
            checks.append(Check(f"grad {ref_name} (probe)", math.inf, bounds["grad"], "no gradient"))
            continue
        samples = ours.flatten()[:: probe["stride"]]
        checks.append(Check(f"grad {ref_name} (probe)", scaled_error(samples, probe["samples"]), bounds["grad"]))
    for ref_name in expected.get("grads_none", []):
        ours = params[_our_name(method, ref_name)].grad
        checks.append(Check(f"grad {ref_name} is None", 0.0 if ours is None else math.inf, 0.0))
    return checks


def _prompt_checks(method, fixture: dict[str, Any]) -> list[Check]:
    prompts = getattr(method, "prompts", None)
    if prompts is None:
        return []
    expected = fixture["tokenized_prompts"]
    tokens = prompts.tokens.cpu()
    same = tokens.shape == expected.shape and bool((tokens == expected).all())
    checks = [Check("tokenized_prompts", 0.0 if same else math.inf, 0.0)]
    if list(prompts.name_lens) != list(fixture["name_lens"]):
        checks.append(Check("name_lens", math.inf, 0.0, f"{list(prompts.name_lens)} != {fixture['name_lens']}"))
    return checks


def _fit_sources(fixture: dict[str, Any]):
    """The few-shot training and validation sets a cache- or probe-based fixture carries (else None)."""
    from benchmark.data.batch import TensorSource

    inputs = fixture["inputs"]
    if "train_images" not in inputs:
        return None, None
    train = TensorSource(inputs["train_images"], inputs["train_labels"])
    val = TensorSource(inputs["val_images"], inputs["val_labels"]) if "val_images" in inputs else None
    return train, val


FAITHFUL = "faithful"  # the case without a variant: the reference exactly as configured


def fixture_cases(fixture: dict[str, Any]) -> list[str]:
    """The cases a fixture defines, in run order: `FAITHFUL`, then each variant by name."""
    return [FAITHFUL, *(fixture.get("variants") or {})]


def run_fixture(path: Path, cases: Collection[str] | None = None) -> Iterator[tuple[str, list[Check]]]:
    """Yield (case name, checks) for the faithful run and each variant of one fixture.

    Args:
        path: the fixture file.
        cases: run only these (names from `fixture_cases`), so a test can report each case on its own.
    """
    from benchmark.registry import METHODS

    fixture = load_fixture(path)
    method_cls = METHODS.get(fixture["method"])
    known = fixture_cases(fixture)
    unknown = sorted(set(cases or ()) - set(known))
    if unknown:
        raise UsageError(f"parity fixture {path}: no case {unknown[0]!r} (has: {', '.join(known)})")
    clip = build_clip(fixture["clip_weights"]["manifest"])
    every: list[tuple[str | None, dict[str, Any]]] = [(None, fixture["expected"])]
    every += list((fixture.get("variants") or {}).items())
    for variant, expected in every:
        if cases is not None and (variant or FAITHFUL) not in cases:
            continue
        cfg = method_cls.from_reference(fixture["trainer_config"], variant=variant)
        torch.manual_seed(0)
        method = method_cls(clip, cfg, fixture["classnames"])
        bounds = {"logits": DEFAULT_BOUND, "loss": DEFAULT_BOUND, "grad": DEFAULT_BOUND}
        bounds.update(BOUNDS.get((fixture["method"], variant), {}))
        train, val = _fit_sources(fixture)
        if train is not None:
            method.prepare_training(train, val, TrainConfig(), seed=0)
        checks = _prompt_checks(method, fixture) + _set_parameters(method, fixture, expected)
        checks += _compare(method, fixture, expected, bounds)
        if "logits_after_training" in expected:
            method.after_training(train, val, TrainConfig(), seed=0)
            with method.evaluating():
                logits = method(_batch(fixture, with_labels=False))
            error = scaled_error(logits, expected["logits_after_training"])
            checks.append(Check("logits_after_training", error, bounds["logits"]))
        name = f"{Path(path).name} [{variant or FAITHFUL}]"
        yield name, checks
