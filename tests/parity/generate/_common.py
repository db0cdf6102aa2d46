"""Plumbing shared by the parity-fixture generators in this folder (not reference logic).

Every generator runs a reference repository's own code on the small recipe CLIP of ../shared/parity/README.md
and stores what it computes in the fixture format that `benchmark.core.parity` reads. What is the same for all
of them lives here, so that one fix reaches every generator and each script keeps only what is specific to its
reference: the recipe weights and parameters with their checksums, the inputs, the `dassl` stand-ins, the CPU
plumbing, the fixture header and the saving.

Nothing here may change a number a generator writes: the fixtures must regenerate byte-identically (the sha256
in ../provenance/<method>.json), so dict key orders, clones and casts below are as the generators had them.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import shutil
import subprocess
import sys
import tempfile
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmark.core.parity import FORMAT, clip_state_dict, fp16_bits, recipe_tensor  # noqa: E402

__all__ = [
    "CLASSES_A",
    "CLASSES_B",
    "FORMAT",
    "MANIFEST",
    "ROOT",
    "NoOptimizer",
    "bpe_tokens",
    "build_trainer",
    "checksums",
    "class_images",
    "clip_state_dict",
    "cpu_only",
    "cuda_as_identity",
    "fixture_header",
    "fp16_bits",
    "install_dassl_stubs",
    "load_patched_reference",
    "ns",
    "plan_entry",
    "recipe_images",
    "recipe_tensor",
    "reference_commit",
    "save_fixture",
    "set_params",
    "trainable",
]

MANIFEST = ROOT.parent / "shared" / "parity" / "clip_weights_manifest.json"
"""The recipe CLIP's weight manifest (keys, shapes, seeds): every generator rebuilds the same CLIP from it."""

# The two class lists every fixture family uses (A: 5 plain names; B: 7 names, some with '_' and spaces, so the
# references' name processing shows in the prompts).
CLASSES_A = ["airport", "beach", "bridge", "forest", "river"]
CLASSES_B = [
    "baseball_field",
    "storage tank",
    "river",
    "dense residential area",
    "chaparral",
    "tennis_court",
    "overpass",
]


# -- checksums and recipe-filled parameters --------------------------------------------------------------------
def checksums(t: torch.Tensor, *, bits: bool = False) -> dict[str, Any]:
    """float64 sum, abs-sum and sum of squares of `t` (and its fp16 bit sums with `bits`).

    The fixtures store these next to (or instead of) large tensors so that a consumer can check it rebuilt the
    same values without the tensor itself; the bit sums pin the exact fp16 rounding.
    """
    t64 = t.detach().double()
    out: dict[str, Any] = {"sum": float(t64.sum()), "abs_sum": float(t64.abs().sum()), "sumsq": float((t64**2).sum())}
    if bits:
        out["bits_sum"], out["bits_wsum"] = fp16_bits(t.detach().float())
    return out


def plan_entry(
    name: str,
    shape: list[int],
    ref_dtype: torch.dtype,
    value: torch.Tensor,
    *,
    source: str,
    seed: int | None,
    mean: float | None,
    std: float | None,
    stored: bool = True,
    bits: bool = True,
) -> dict[str, Any]:
    """One `param_plan` record: where a trainable tensor's value comes from, and its checksums.

    The key order is the fixture format's (consumers and the byte-identical regeneration both depend on it).
    """
    return {
        "name": name,
        "shape": list(shape),
        "ref_dtype": str(ref_dtype).removeprefix("torch."),
        "trainable": True,
        "source": source,
        "seed": seed,
        "mean": mean,
        "std": std,
        "stored": stored,
        **checksums(value, bits=bits),
    }


def trainable(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """The parameters the reference leaves trainable, sorted by name (the recipe seeds follow this order)."""
    return {n: p for n, p in sorted(model.named_parameters()) if p.requires_grad}


def set_params(model: torch.nn.Module, plan: list[dict], values: dict[str, torch.Tensor]) -> None:
    """Copy a plan's values into `model`; tensors not stored in the fixture are redrawn from their recipe.

    Used to give a second reference model (a variant) exactly the parameters of the first.
    """
    params = dict(model.named_parameters())
    with torch.no_grad():
        for entry in plan:
            value = values.get(entry["name"])
            if value is None:
                value = recipe_tensor(entry["seed"], entry["shape"], entry["mean"], entry["std"])
            params[entry["name"]].copy_(value)


# -- inputs ---------------------------------------------------------------------------------------------------
def recipe_images(seed: int, batch: int) -> torch.Tensor:
    """A batch of N(0, 1) 32x32 images drawn by the weight recipe (reproducible without torch's global RNG)."""
    return recipe_tensor(seed, [batch, 3, 32, 32], 0.0, 1.0)


def class_images(seed: int, labels: list[int], n_cls: int, noise: float) -> torch.Tensor:
    """Normalised 32x32 images with class structure: one N(0, 1) prototype per class plus N(0, noise^2) noise.

    Cache and linear-probe references need train/val/test images of a class to look alike, which pure noise
    images would not; prototypes are drawn first, then the noise, from one generator.
    """
    g = torch.Generator().manual_seed(seed)
    protos = torch.randn(n_cls, 3, 32, 32, generator=g)
    return protos[torch.tensor(labels)] + noise * torch.randn(len(labels), 3, 32, 32, generator=g)


def bpe_tokens(decoder: dict[int, str], tokens: torch.Tensor) -> list[list[str]]:
    """The reference tokenizer's BPE strings of each prompt up to its EOT (the row's argmax), for readable fixtures."""
    return [[decoder[int(t)] for t in row[: int(row.argmax()) + 1]] for row in tokens]


# -- CPU plumbing ---------------------------------------------------------------------------------------------
def cuda_as_identity() -> None:
    """Make `.cuda()` on modules and tensors return them unchanged for the rest of the process (CPU only)."""
    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.nn.Module.cuda = lambda self, *a, **k: self


@contextlib.contextmanager
def cpu_only() -> Iterator[None]:
    """`.cuda()` on modules and tensors returns them unchanged inside the block (this machine has no GPU)."""
    module_cuda, tensor_cuda = torch.nn.Module.cuda, torch.Tensor.cuda
    torch.nn.Module.cuda = lambda self, *a, **k: self
    torch.Tensor.cuda = lambda self, *a, **k: self
    try:
        yield
    finally:
        torch.nn.Module.cuda, torch.Tensor.cuda = module_cuda, tensor_cuda


# -- dassl stand-ins ------------------------------------------------------------------------------------------
class NoOptimizer:
    """Gradients stay on the parameters; nothing is stepped (the fixture records them)."""

    def __init__(self, params) -> None:
        self.params = list(params)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        pass


def install_dassl_stubs(build_optimizer: Callable[..., Any] | None = None) -> None:
    """Insert inert stand-ins for the `dassl` names the reference trainers import into `sys.modules`.

    Dassl is a training framework (data, optimisers, checkpoints); none of it computes a fixture number. The
    stand-ins are a registry decorator, a trainer base whose `model_backward_and_update` runs Dassl's
    zero-grad + backward without an optimiser step, a no-op optimiser and scheduler, the accuracy metric, and
    loaders that refuse to run. `build_optimizer(module, optim_cfg)` replaces the default `NoOptimizer`.
    """

    class Registry:
        def register(self, obj=None):
            return obj if obj is not None else (lambda o: o)

    class TrainerX:  # the few Dassl SimpleTrainer methods the references call; no optimiser is stepped
        def register_model(self, name, model, optim=None, sched=None):
            self._models = {name: model}

        def update_lr(self, names=None):
            pass

        def model_backward_and_update(self, loss):
            self.model.zero_grad(set_to_none=True)
            if not torch.isfinite(loss).all():
                raise FloatingPointError("Loss is infinite or NaN!")
            loss.backward()

    def unavailable(*args, **kwargs):
        raise NotImplementedError("not needed to compute the fixture")

    def compute_accuracy(output, target, topk=(1,)):
        return [100.0 * (output.argmax(1) == target).float().mean()]

    names = {
        "dassl": {},
        "dassl.engine": {"TRAINER_REGISTRY": Registry(), "TrainerX": TrainerX},
        "dassl.metrics": {"compute_accuracy": compute_accuracy},
        "dassl.utils": {"load_pretrained_weights": unavailable, "load_checkpoint": unavailable},
        "dassl.optim": {
            "build_optimizer": build_optimizer or (lambda module, cfg: NoOptimizer(module.parameters())),
            "build_lr_scheduler": lambda *a, **k: None,
        },
    }
    for module_name, attrs in names.items():
        module = types.ModuleType(module_name)
        module.__dict__.update(attrs)
        sys.modules[module_name] = module


def ns(**kwargs) -> types.SimpleNamespace:
    """A config node (the references read yacs nodes by attribute only)."""
    return types.SimpleNamespace(**kwargs)


def build_trainer(trainer_cls: type, cfg: Any, classnames: list[str], **attrs: Any) -> tuple[Any, str]:
    """A reference trainer after its own `build_model`, without Dassl's constructor (no data, no optimiser).

    The constructor is replaced by the attributes `build_model` reads (cfg, device, the dataset's class names,
    and `attrs`); what it prints is returned as the construction log.
    """
    tr = object.__new__(trainer_cls)
    tr.cfg, tr.device = cfg, torch.device("cpu")
    for key, value in attrs.items():
        setattr(tr, key, value)
    tr.dm = ns(dataset=ns(classnames=list(classnames)))
    log = io.StringIO()
    with cpu_only(), contextlib.redirect_stdout(log):
        tr.build_model()
    return tr, log.getvalue()


def load_patched_reference(
    ref: Path, packages: tuple[str, ...], module: str, patches: list[tuple[str, str, str]], weights: Path
) -> types.ModuleType:
    """Import `module` from a copy of the reference's `packages` with exact textual `patches` applied.

    A patch (file, old, new) must match exactly once, so a fixture documents precisely what was changed. The
    packages are re-imported fresh (a faithful and a variant copy coexist in one run) and `clip._download`
    returns the recipe weights file instead of fetching OpenAI's.
    """
    for name in [m for m in sys.modules if m.split(".")[0] in packages]:
        del sys.modules[name]
    work = Path(tempfile.mkdtemp(prefix=f"{module.rsplit('.', 1)[-1]}_ref_"))
    for sub in packages:
        shutil.copytree(ref / sub, work / sub, ignore=shutil.ignore_patterns("__pycache__"))
    for rel, old, new in patches:
        text = (work / rel).read_text()
        if text.count(old) != 1:
            raise RuntimeError(f"patch target not found exactly once in {rel}: {old!r}")
        (work / rel).write_text(text.replace(old, new))
    sys.path.insert(0, str(work))
    try:
        clip_pkg = importlib.import_module("clip.clip")
        loaded = importlib.import_module(module)
    finally:
        sys.path.remove(str(work))
    clip_pkg._download = lambda url, root=None: str(weights)
    return loaded


# -- provenance, fixture assembly and saving ------------------------------------------------------------------
def reference_commit(ref: Path, marker: str | None = None) -> str | None:
    """The reference commit: the `marker` file written next to an exported tree, else a git checkout's HEAD.

    Exports made with `git archive` carry no commit, hence the marker file; None when neither is available.
    """
    if marker is not None and (ref / marker).is_file():
        return (ref / marker).read_text().strip()
    run = subprocess.run(["git", "-C", str(ref), "rev-parse", "HEAD"], capture_output=True, text=True)
    return run.stdout.strip() or None


def fixture_header(
    method: str, config_name: str, reference: dict[str, Any], manifest_doc: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """The leading fixture keys: format, method, configuration, reference, versions and the recipe CLIP.

    `extra` (e.g. threads, sklearn_version) goes between torch_version and clip_arch, where generators put it.
    """
    return {
        "format": FORMAT,
        "method": method,
        "config_name": config_name,
        "reference": reference,
        "torch_version": str(torch.__version__),
        **extra,
        "clip_arch": manifest_doc["clip_arch"],
        "clip_weights": {
            "base_seed": manifest_doc["base_seed"],
            "recipe": "uniform_fp16 (see README)",
            "manifest": manifest_doc["keys"],
        },
    }


def save_fixture(fixture: dict[str, Any], path: Path) -> str:
    """`torch.save` the fixture and return the file's sha256 (what provenance records)."""
    torch.save(fixture, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()
