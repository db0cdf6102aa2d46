"""Regenerate the CLIP-Adapter parity fixtures (clip_adapter_A, clip_adapter_B) from the reference code.

The reference is one file, gaopengcuhk/CLIP-Adapter `clip_adapter.py`, meant to be dropped into CoOp's
`trainers/`: it imports CoOp's `clip` package and Dassl. This script puts a CoOp checkout on the path
for `clip`, stubs the few Dassl names the file imports (plumbing: a registry decorator, a base class and
three functions it never calls here), imports the file, and runs its own `CustomCLIP` on the small CLIP
rebuilt from the recipe in ../shared/parity/README.md. Fixture format: the same README.

    .venv/bin/python tests/parity/generate/clip_adapter.py --adapter /tmp/ref_clip_adapter \
        --coop /tmp/ref_coop --out tests/parity
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import math
import sys
import types
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import (
    CLASSES_A,
    CLASSES_B,
    MANIFEST,
    ROOT,
    checksums,
    clip_state_dict,
    fixture_header,
    install_dassl_stubs,
    plan_entry,
    recipe_images,
    recipe_tensor,
    reference_commit,
    save_fixture,
)

REPO = "gaopengcuhk/CLIP-Adapter"
COOP_REPO = "KaiyangZhou/CoOp"
CLASS_LISTS = {"A": CLASSES_A, "B": CLASSES_B}
# (class list, DATASET.NAME picking the template, batch labels, input seed)
CONFIGS = {"A": ("A", "ImageNet", [3, 0], 3_001_000), "B": ("B", "EuroSAT", [1, 4, 6], 3_001_010)}


@contextlib.contextmanager
def cuda_as_cpu():
    """The reference's TextEncoder moves its token ids with `.to('cuda')`; on this CPU run that means 'cpu'."""
    original = torch.Tensor.to

    def to(self, *args, **kwargs):
        args = tuple("cpu" if isinstance(a, str) and a.startswith("cuda") else a for a in args)
        return original(self, *args, **kwargs)

    torch.Tensor.to = to
    try:
        yield
    finally:
        torch.Tensor.to = original


def build(adapter_root: Path, coop_root: Path, config: str) -> dict:
    list_key, dataset, labels, data_seed = CONFIGS[config]
    classnames = CLASS_LISTS[list_key]
    sys.path.insert(0, str(coop_root))
    install_dassl_stubs()
    spec = importlib.util.spec_from_file_location("clip_adapter_reference", adapter_root / "clip_adapter.py")
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    from clip.model import build_model  # CoOp's clip package, as the reference file imports it

    manifest_file = json.loads(MANIFEST.read_text())
    manifest = manifest_file["keys"]
    clip_model = build_model(clip_state_dict(manifest))
    clip_model.float()  # CLIP_Adapter.build_model does this before building CustomCLIP
    cfg = types.SimpleNamespace(DATASET=types.SimpleNamespace(NAME=dataset))
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        model = ref.CustomCLIP(cfg, classnames, clip_model)
    # Fixture deviation: the reference hard-codes Adapter(1024, 4) (RN50's embedding width); this CLIP's is 512.
    model.adapter = ref.Adapter(clip_model.text_projection.shape[1], 4).to(clip_model.dtype)
    for name, param in model.named_parameters():
        if "adapter" not in name:
            param.requires_grad_(False)  # the trainer's rule
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)

    plan, params = [], {}
    named = dict(model.named_parameters())
    for i, name in enumerate(trainable):
        shape = list(named[name].shape)
        std = float(math.prod(shape[1:])) ** -0.5
        value = recipe_tensor(2_000_000 + i, shape, 0.0, std)
        with torch.no_grad():
            named[name].copy_(value)
        stored = value.numel() <= 65_536
        entry = plan_entry(
            name, shape, named[name].dtype, value, source="recipe", seed=2_000_000 + i, mean=0.0, std=std, stored=stored
        )
        plan.append(entry)
        if entry["stored"]:
            params[name] = value.clone()

    images = recipe_images(data_seed, len(labels))
    labels_t = torch.tensor(labels)
    with cuda_as_cpu():
        model.eval()
        with torch.no_grad():
            logits_eval = model(images)
            image_raw = model.image_encoder(images)
            intermediates = {
                "image_features_raw": image_raw,
                "adapter_out": model.adapter(image_raw),
                "text_features_raw": model.text_encoder(),
            }
        model.adapter.train()  # Dassl's set_model_mode("train") reaches the registered module only
        logits_train = model(images)
        loss = F.cross_entropy(logits_train, labels_t)
        loss.backward()
    grads = {name: named[name].grad.detach().clone() for name in trainable}
    template = ref.CUSTOM_TEMPLATES[dataset]
    processed = [c.replace("_", " ") for c in classnames]
    reference = {
        "repo": REPO,
        "commit": reference_commit(adapter_root, ".commit"),
        "files": ["clip_adapter.py"],
        "class": "clip_adapter.py:CustomCLIP",
        "clip_package": {"repo": COOP_REPO, "commit": reference_commit(coop_root, ".commit"), "files": ["clip/"]},
    }
    return {
        **fixture_header("clip_adapter", config, reference, manifest_file),
        "trainer_config": {
            "DATASET.NAME": dataset,
            "TEMPLATE": template,
            "REDUCTION": 4,
            "RATIO": 0.2,
            "ADAPTER_C_IN": int(clip_model.text_projection.shape[1]),
            "PREC": "fp32",
            "INPUT.SIZE": [32, 32],
        },
        "classnames": classnames,
        "classnames_processed": processed,
        "prompt_texts": [template.format(c) for c in processed],
        "n_cls": len(classnames),
        "inputs": {"images": images, "labels": labels_t},
        "data_seed": data_seed,
        "param_plan": plan,
        "params": params,
        "modes": {
            "logits": "model.eval() under torch.no_grad(); model(images)",
            "loss": "model.adapter.train(); loss = F.cross_entropy(model(images), labels)",
            "registered_module": "adapter",
            "trainable_rule": "'adapter' in name",
            "dropout": "none anywhere",
        },
        "expected": {
            "logits_eval": logits_eval,
            "loss_train": loss.detach(),
            "logits_train": logits_train.detach(),
            "grads": grads,
            "grad_probes": {},
            "grad_checksums": {name: checksums(g) for name, g in grads.items()},
            "grads_none": [],
            "intermediates_eval": intermediates,
        },
        "variants": {},
        "fixture_deviations": [
            "adapter rebuilt as the reference's own Adapter(512, 4): the file hard-codes Adapter(1024, 4), RN50's "
            "embedding width, which cannot take this CLIP's 512-wide features",
            "TextEncoder's token ids go to 'cpu' where the file writes .to('cuda') (a CPU run)",
        ],
        "quirks": [
            "The adapter (Linear no bias -> ReLU -> Linear no bias -> ReLU) acts on the unnormalised image feature.",
            "image = ratio * adapter(f) + (1 - ratio) * f with ratio 0.2; then both image and text features are "
            "L2-normalised and logits = exp(logit_scale) * image @ text.T.",
            "Text: CUSTOM_TEMPLATES[DATASET.NAME].format(name with '_' -> ' '), one template, frozen text encoder, "
            "recomputed every forward (no gradient reaches it).",
            "The training loss is the trainer's F.cross_entropy(model(images), labels); the model returns logits.",
        ],
        "construction_log": log.getvalue(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", type=Path, required=True, help="gaopengcuhk/CLIP-Adapter checkout")
    parser.add_argument("--coop", type=Path, required=True, help="KaiyangZhou/CoOp checkout (its clip package)")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "parity")
    parser.add_argument("--configs", nargs="+", default=sorted(CONFIGS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    for config in args.configs:
        fixture = build(args.adapter, args.coop, config)
        path = args.out / f"clip_adapter_{config}.pt"
        digest = save_fixture(fixture, path)
        print(f"{path.name}: loss {float(fixture['expected']['loss_train']):.6f} sha256 {digest}")


if __name__ == "__main__":
    main()
