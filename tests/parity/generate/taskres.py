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
import importlib
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import torch
from _common import (
    CLASSES_A,
    CLASSES_B,
    MANIFEST,
    ROOT,
    build_trainer,
    checksums,
    clip_state_dict,
    fixture_header,
    install_dassl_stubs,
    ns,
    plan_entry,
    recipe_images,
    recipe_tensor,
    save_fixture,
)

COMMIT = "5195359661d6bef661090c33b81aacfc7d7cc181"
FILES = [
    "trainers/taskres.py",
    "trainers/imagenet_templates.py",
    "clip/model.py",
    "clip/clip.py",
    "clip/simple_tokenizer.py",
]
RESIDUAL_STD = 0.5  # the base's entries have std ~1 on the recipe CLIP, so alpha * residual moves every logit
# name: classes, batch, RESIDUAL_SCALE, DATASET.NAME (selects the templates), data seed, residual seed.
# A: the regular setting (one template "a photo of a {}.", alpha 0.5); B: ImageNet's 7 + 1 template
# ensemble, alpha 1.0, class names with '_' (which TaskRes keeps in its prompts).
CONFIGS = {
    "A": (CLASSES_A, 2, 0.5, "Caltech101", 3_000_300, 2_000_300),
    "B": (CLASSES_B, 3, 1.0, "ImageNet", 3_000_310, 2_000_310),
}


def import_reference(root: Path):
    """The reference `clip` package, trainers/taskres.py and trainers/imagenet_templates.py, freshly imported.

    A fresh import matters: `_get_base_text_features` appends to the module-level ImageNet template list.
    """
    install_dassl_stubs(lambda *a, **k: None)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    for name in [m for m in sys.modules if m == "trainers" or m.startswith("trainers.")]:
        del sys.modules[name]
    from clip import clip as ref_clip

    return ref_clip, importlib.import_module("trainers.taskres"), importlib.import_module("trainers.imagenet_templates")


def make_cfg(scale: float, dataset: str) -> SimpleNamespace:
    return ns(
        TRAINER=ns(TaskRes=ns(PREC="fp32", RESIDUAL_SCALE=scale, ENHANCED_BASE="none")),
        INPUT=ns(SIZE=(32, 32)),
        DATASET=ns(NAME=dataset),
        MODEL=ns(BACKBONE=ns(NAME="ViT-B/16"), INIT_WEIGHTS=""),
        OPTIM=ns(NAME="adam", LR=0.002, MAX_EPOCH=200),  # handed to the (stubbed) optimiser builders
    )


def build_fixture(root: Path, name: str, manifest_doc: dict) -> dict:
    ref_clip, ref, ref_templates = import_reference(root)
    manifest = manifest_doc["keys"]
    classnames, batch, scale, dataset, data_seed, res_seed = CONFIGS[name]
    cfg = make_cfg(scale, dataset)
    images = recipe_images(data_seed, batch)
    labels = torch.randint(len(classnames), (batch,), generator=torch.Generator().manual_seed(data_seed + 1))

    ref.load_clip_to_cpu = lambda _cfg: ref_clip.build_model(clip_state_dict(manifest))  # the download
    torch.manual_seed(0)
    trainer, log = build_trainer(ref.TaskRes, cfg, classnames, batch_idx=0, num_batches=2)
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
    dtype = learner.text_feature_residuals.dtype
    plan = [
        plan_entry(
            "prompt_learner.text_feature_residuals",
            residual.shape,
            dtype,
            residual,
            source="recipe",
            seed=res_seed,
            mean=0.0,
            std=RESIDUAL_STD,
        )
    ]
    base_texts = [t.format(c) for c in classnames for t in templates]
    reference = {
        "repo": "geekyutao/TaskRes",
        "commit": COMMIT,
        "files": FILES,
        "class": "trainers/taskres.py:CustomCLIP",
    }
    return {
        **fixture_header("taskres", name, reference, manifest_doc, threads=torch.get_num_threads()),
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
            "grad_checksums": {k: checksums(v) for k, v in grads.items()},
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
        "construction_log": log,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path, help="export of geekyutao/TaskRes @ " + COMMIT)
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "parity")
    parser.add_argument("--manifest", type=Path, default=MANIFEST)
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    manifest_doc = json.loads(args.manifest.read_text())
    for name in args.configs:
        fixture = build_fixture(args.reference, name, manifest_doc)
        path = args.out / f"taskres_{name}.pt"
        digest = save_fixture(fixture, path)
        print(f"{path}: sha256 {digest}, loss {float(fixture['expected']['loss_train']):.7f}")


if __name__ == "__main__":
    main()
