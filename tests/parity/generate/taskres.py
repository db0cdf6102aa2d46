"""Regenerate the TaskRes parity fixtures (tests/parity/taskres_A.pt, taskres_B.pt) from the reference code.

    git --git-dir=<mirror of geekyutao/TaskRes> archive 5195359 | tar -x -C /tmp/ref_TaskRes
    OMP_NUM_THREADS=1 .venv/bin/python tests/parity/generate/taskres.py /tmp/ref_TaskRes

The reference's own `clip` package and `trainers/taskres.py` compute every number: the trainer's
`build_model` builds `CustomCLIP` (regular base from `_get_base_text_features`, `TaskResLearner`), picks
the trainable tensors and casts the model to fp32, and its `forward_backward` computes the loss. Plumbing
only, no reference logic is rewritten here: `dassl` is replaced by inert stand-ins (a registry decorator; a
trainer base with a no-op `register_model` and a `model_backward_and_update` that runs Dassl's zero-grad +
backward and skips the optimiser step; no optimiser or scheduler is built), the weight download
`load_clip_to_cpu` returns the recipe CLIP (methods/REFERENCES.md §6), and `.cuda()` is a no-op. The
residual, zero at construction, is then set from the weight recipe so that it moves logits and gradients.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import io
import json
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import torch

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from benchmark.core.parity import FORMAT, clip_state_dict, fp16_bits, recipe_tensor  # noqa: E402

COMMIT = "5195359661d6bef661090c33b81aacfc7d7cc181"
FILES = [
    "trainers/taskres.py",
    "trainers/imagenet_templates.py",
    "clip/model.py",
    "clip/clip.py",
    "clip/simple_tokenizer.py",
]
MANIFEST = REPO.parent / "shared" / "parity" / "clip_weights_manifest.json"
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
RESIDUAL_STD = 0.5  # the base's entries have std ~1 on the recipe CLIP, so alpha * residual moves every logit
# name: classes, batch, RESIDUAL_SCALE, DATASET.NAME (selects the templates), data seed, residual seed.
# A: the regular setting (one template "a photo of a {}.", alpha 0.5); B: ImageNet's 7 + 1 template
# ensemble, alpha 1.0, class names with '_' (which TaskRes keeps in its prompts).
CONFIGS = {
    "A": (CLASSES_A, 2, 0.5, "Caltech101", 3_000_300, 2_000_300),
    "B": (CLASSES_B, 3, 1.0, "ImageNet", 3_000_310, 2_000_310),
}


def stub_dassl() -> None:
    """Inert stand-ins for the `dassl` names trainers/taskres.py imports."""

    class Registry:
        def register(self, *args, **kwargs):
            return lambda cls: cls

    class TrainerX:  # the few Dassl SimpleTrainer methods TaskRes calls; no optimiser is built or stepped
        def register_model(self, name, model, optim=None, sched=None):
            pass

        def model_backward_and_update(self, loss):
            self.model.zero_grad(set_to_none=True)
            if not torch.isfinite(loss).all():
                raise FloatingPointError("Loss is infinite or NaN!")
            loss.backward()

        def update_lr(self):
            pass

    def unused(*args, **kwargs):
        raise NotImplementedError("not needed to compute the fixture")

    def compute_accuracy(output, target, topk=(1,)):
        return [100.0 * (output.argmax(1) == target).float().mean()]

    names = {
        "dassl.engine": {"TRAINER_REGISTRY": Registry(), "TrainerX": TrainerX},
        "dassl.metrics": {"compute_accuracy": compute_accuracy},
        "dassl.utils": {"load_pretrained_weights": unused, "load_checkpoint": unused},
        "dassl.optim": {"build_optimizer": lambda *a, **k: None, "build_lr_scheduler": lambda *a, **k: None},
    }
    sys.modules["dassl"] = types.ModuleType("dassl")
    for module_name, attrs in names.items():
        module = types.ModuleType(module_name)
        module.__dict__.update(attrs)
        sys.modules[module_name] = module


def import_reference(root: Path):
    """The reference `clip` package, trainers/taskres.py and trainers/imagenet_templates.py, freshly imported.

    A fresh import matters: `_get_base_text_features` appends to the module-level ImageNet template list.
    """
    stub_dassl()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    for name in [m for m in sys.modules if m == "trainers" or m.startswith("trainers.")]:
        del sys.modules[name]
    from clip import clip as ref_clip

    return ref_clip, importlib.import_module("trainers.taskres"), importlib.import_module("trainers.imagenet_templates")


@contextlib.contextmanager
def cpu_only():
    """`.cuda()` on modules and tensors returns them unchanged (this machine has no GPU)."""
    module_cuda, tensor_cuda = torch.nn.Module.cuda, torch.Tensor.cuda
    torch.nn.Module.cuda = lambda self, *a, **k: self
    torch.Tensor.cuda = lambda self, *a, **k: self
    try:
        yield
    finally:
        torch.nn.Module.cuda, torch.Tensor.cuda = module_cuda, tensor_cuda


def stats(t: torch.Tensor) -> dict:
    t64 = t.detach().double()
    return {"sum": t64.sum().item(), "abs_sum": t64.abs().sum().item(), "sumsq": (t64**2).sum().item()}


def make_cfg(scale: float, dataset: str) -> SimpleNamespace:
    return SimpleNamespace(
        TRAINER=SimpleNamespace(TaskRes=SimpleNamespace(PREC="fp32", RESIDUAL_SCALE=scale, ENHANCED_BASE="none")),
        INPUT=SimpleNamespace(SIZE=(32, 32)),
        DATASET=SimpleNamespace(NAME=dataset),
        MODEL=SimpleNamespace(BACKBONE=SimpleNamespace(NAME="ViT-B/16"), INIT_WEIGHTS=""),
        OPTIM=SimpleNamespace(NAME="adam", LR=0.002, MAX_EPOCH=200),  # handed to the (stubbed) optimiser builders
    )


def build_fixture(root: Path, name: str, manifest_doc: dict) -> dict:
    ref_clip, ref, ref_templates = import_reference(root)
    manifest = manifest_doc["keys"]
    classnames, batch, scale, dataset, data_seed, res_seed = CONFIGS[name]
    cfg = make_cfg(scale, dataset)
    images = recipe_tensor(data_seed, [batch, 3, 32, 32], 0.0, 1.0)
    labels = torch.randint(len(classnames), (batch,), generator=torch.Generator().manual_seed(data_seed + 1))

    ref.load_clip_to_cpu = lambda _cfg: ref_clip.build_model(clip_state_dict(manifest))  # the download
    trainer = object.__new__(ref.TaskRes)  # Dassl's constructor is replaced by the attributes build_model reads
    trainer.cfg, trainer.device, trainer.batch_idx, trainer.num_batches = cfg, torch.device("cpu"), 0, 2
    trainer.dm = SimpleNamespace(dataset=SimpleNamespace(classnames=list(classnames)))
    torch.manual_seed(0)
    log = io.StringIO()
    with cpu_only(), contextlib.redirect_stdout(log):
        trainer.build_model()
    model, learner = trainer.model, trainer.model.prompt_learner
    templates = ref_templates.IMAGENET_TEMPLATES_SELECT if dataset == "ImageNet" else [ref.CUSTOM_TEMPLATES[dataset]]
    assert dataset != "ImageNet" or len(templates) == 8, templates  # 7 + the custom one, appended once
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert trainable == ["prompt_learner.text_feature_residuals"], trainable
    assert not learner.text_feature_residuals.abs().sum(), "the reference residual starts at zero"

    residual = recipe_tensor(res_seed, list(learner.text_feature_residuals.shape), 0.0, RESIDUAL_STD)
    with torch.no_grad():
        learner.text_feature_residuals.copy_(residual)

    model.eval()
    with torch.no_grad():
        logits_eval = model(images)
        inter = {
            "image_features_raw": model.image_encoder(images),
            "base_text_features": learner.base_text_features.detach().clone(),
            "text_features_raw": learner(),
        }

    outputs = []
    hook = model.register_forward_hook(lambda m, i, o: outputs.append(o))
    model.eval()
    learner.train()  # Dassl set_model_mode("train") on the registered prompt learner
    summary = trainer.forward_backward({"img": images, "label": labels})
    hook.remove()
    grads = {"prompt_learner.text_feature_residuals": learner.text_feature_residuals.grad.detach().clone()}
    plan = [
        {
            "name": "prompt_learner.text_feature_residuals",
            "shape": list(residual.shape),
            "ref_dtype": str(learner.text_feature_residuals.dtype).removeprefix("torch."),
            "trainable": True,
            "source": "recipe",
            "seed": res_seed,
            "mean": 0.0,
            "std": RESIDUAL_STD,
            "stored": True,
            **stats(residual),
            **dict(zip(("bits_sum", "bits_wsum"), fp16_bits(residual))),
        }
    ]
    base_texts = [t.format(c) for c in classnames for t in templates]
    return {
        "format": FORMAT,
        "method": "taskres",
        "config_name": name,
        "reference": {
            "repo": "geekyutao/TaskRes",
            "commit": COMMIT,
            "files": FILES,
            "class": "trainers/taskres.py:CustomCLIP",
        },
        "torch_version": str(torch.__version__),
        "threads": torch.get_num_threads(),
        "clip_arch": manifest_doc["clip_arch"],
        "clip_weights": {
            "base_seed": manifest_doc["base_seed"],
            "recipe": "uniform_fp16 (see README)",
            "manifest": manifest,
        },
        "trainer_config": {
            "RESIDUAL_SCALE": scale,
            "ENHANCED_BASE": "none",
            "PREC": "fp32",
            "cfg_node": "TRAINER.TaskRes",
            "INPUT.SIZE": [32, 32],
            "DATASET.NAME": dataset,
            "TEMPLATES": list(templates),
        },
        "classnames": classnames,
        "base_prompt_texts": base_texts,
        "base_tokenized_prompts": ref_clip.tokenize(base_texts),
        "n_cls": len(classnames),
        "inputs": {"images": images, "labels": labels},
        "data_seed": data_seed,
        "param_plan": plan,
        "params": {"prompt_learner.text_feature_residuals": residual},
        "modes": {
            "logits": "model.eval() under torch.no_grad(); logits = model(images)",
            "loss": "model.eval(); model.prompt_learner.train(); TaskRes.forward_backward: "
            "loss = F.cross_entropy(model(images), label)",
            "registered_module": "prompt_learner",
            "trainable_rule": "'prompt_learner' in name (text_feature_residuals; base_text_features is a buffer)",
            "dropout": "none anywhere (CLIP has none; MultiheadAttention dropout is 0)",
        },
        "expected": {
            "logits_eval": logits_eval.detach().clone(),
            "loss_train": torch.tensor(summary["loss"], dtype=torch.float32),
            "logits_train": outputs[-1].detach().clone(),
            "grads": grads,
            "grad_probes": {},
            "grad_checksums": {k: stats(v) for k, v in grads.items()},
            "grads_none": [],
            "intermediates_eval": inter,
        },
        "variants": {},
        "fixture_deviations": [
            f"text_feature_residuals is zero at construction; the fixture sets it from the recipe (std {RESIDUAL_STD})"
        ],
        "quirks": [
            "Base t_c = mean over TEMPLATES of the unnormalised text features of template.format(class); TEMPLATES = "
            "[CUSTOM_TEMPLATES[DATASET.NAME]], for ImageNet IMAGENET_TEMPLATES_SELECT (7) + that one.",
            "Class names are formatted as given: '_' stays in the prompt (its zero-shot trainer replaces it).",
            "_get_base_text_features appends to the module-level IMAGENET_TEMPLATES_SELECT on every ImageNet "
            "construction, so a second model built in one process averages over 9, 10, ... templates.",
            "logits = exp(logit_scale) * normalize(f) @ normalize(base + RESIDUAL_SCALE * residual).T; the residual "
            "is zeros_like(base) at construction; only it is trained.",
            "With PREC fp16 (the default) the base is computed by the fp16 CLIP (on CUDA), then build_model calls "
            "model.float(): the residual, the image encoder and the logits run in fp32.",
            "ENHANCED_BASE loads a text projection only when the CLIP is fp16; with PREC fp32 it is silently ignored.",
        ],
        "construction_log": log.getvalue(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path, help="export of geekyutao/TaskRes @ " + COMMIT)
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "parity")
    parser.add_argument("--manifest", type=Path, default=MANIFEST)
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    manifest_doc = json.loads(args.manifest.read_text())
    for name in args.configs:
        fixture = build_fixture(args.reference, name, manifest_doc)
        path = args.out / f"taskres_{name}.pt"
        torch.save(fixture, path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"{path}: sha256 {digest}, loss {float(fixture['expected']['loss_train']):.7f}")


if __name__ == "__main__":
    main()
