"""Regenerate the CLIP-LoRA parity fixtures (clip_lora_A, clip_lora_B) from the reference code.

The reference, MaxZanella/CLIP-LoRA, applies its own `loralib` (`apply_lora`, `PlainMultiheadAttentionLoRA`,
`LinearLoRA`) to its own `clip` model. This script imports both from a checkout, builds the small CLIP
from the recipe in ../shared/parity/README.md with the reference's `clip.model.build_model`, applies
LoRA with the reference's function, fills the LoRA tensors by recipe and runs the reference model.
Its training loop (`lora.py:run_lora`) is not callable on a CPU (CUDA, GradScaler, data loaders), so the
three lines of its loop body that turn features into the loss are repeated here: normalise both, logits
= 100 * image @ text.T, cross-entropy. Fixture format: the same README.

    .venv/bin/python tests/parity/generate/clip_lora.py --lora /tmp/ref_clip_lora --out tests/parity
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
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
    plan_entry,
    recipe_images,
    recipe_tensor,
    reference_commit,
    save_fixture,
)

REPO = "MaxZanella/CLIP-LoRA"
CLASS_LISTS = {"A": CLASSES_A, "B": CLASSES_B}
TEMPLATE = "a photo of a {}."  # every dataset's template list in the reference ends as ['a photo of a {}.']
LOGIT_SCALE = 100  # main.py
CONFIGS = {
    "A": {"classes": "A", "labels": [3, 0], "seed": 3_002_000, "encoder": "both", "params": ["q", "k", "v"], "r": 2,
          "alpha": 1},
    "B": {"classes": "B", "labels": [1, 4, 6], "seed": 3_002_010, "encoder": "text", "params": ["q", "v"], "r": 4,
          "alpha": 2},
}  # fmt: skip
B_STD = 0.05  # lora_B starts at zero in the reference; a recipe value makes lora_A's gradient informative


def recipe(index: int, name: str, shape: list[int]) -> tuple[int, float, torch.Tensor]:
    """Seed, std and value of LoRA tensor `name`: A like its kaiming-uniform init (std (3 fan_in)^-0.5), B by B_STD."""
    seed = 2_000_000 + index
    std = (3.0 * shape[1]) ** -0.5 if name.endswith("lora_A") else B_STD
    return seed, std, recipe_tensor(seed, shape, 0.0, std)


class Reference:
    """The reference's clip and loralib, imported from a checkout."""

    def __init__(self, root: Path) -> None:
        sys.path.insert(0, str(root))
        import clip
        from clip.model import build_model
        from loralib import layers
        from loralib.utils import apply_lora, get_lora_parameters, mark_only_lora_as_trainable

        self.clip, self.build_model, self.layers = clip, build_model, layers
        self.apply_lora, self.get_lora_parameters = apply_lora, get_lora_parameters
        self.mark_only_lora_as_trainable = mark_only_lora_as_trainable

    def model(self, state: dict, config: dict, dropout_rate: float, mask_off: bool, log: io.StringIO):
        """clip.load's CPU model (float) in eval, LoRA applied by the reference, LoRA tensors filled by recipe."""
        model = self.build_model(dict(state)).float().eval()  # clip.load: model.float() on CPU; main.py: eval()
        args = types.SimpleNamespace(
            encoder=config["encoder"], position="all", params=list(config["params"]), r=config["r"],
            alpha=config["alpha"], dropout_rate=dropout_rate, backbone="ViT-B/16",
        )  # fmt: skip
        with contextlib.redirect_stdout(log):
            self.apply_lora(args, model)
        self.mark_only_lora_as_trainable(model)
        if mask_off:  # fixture deviation of the dropout_path case: keep its code path, switch its mask off
            for module in model.modules():
                if isinstance(module, self.layers.LinearLoRA) and module.dropout is not None:
                    module.dropout.p = 0.0
        named = {n: p for n, p in model.named_parameters() if p.requires_grad}
        for i, name in enumerate(sorted(named)):
            with torch.no_grad():
                named[name].copy_(recipe(i, name, list(named[name].shape))[2])
        return model, named

    def run(self, state: dict, config: dict, dropout_rate: float, mask_off: bool, images, labels, texts) -> dict:
        """Eval logits, training loss and LoRA gradients of one reference configuration."""
        log = io.StringIO()
        model, _ = self.model(state, config, dropout_rate, mask_off, log)
        model.eval()  # merges B A into the weights (LinearLoRA.lora_train)
        tokens = self.clip.tokenize(texts)
        with torch.no_grad():
            text_raw = model.encode_text(tokens)
            image_raw = model.encode_image(images)
            text = text_raw / text_raw.norm(dim=-1, keepdim=True)
            image = image_raw / image_raw.norm(dim=-1, keepdim=True)
            logits_eval = LOGIT_SCALE * image @ text.t()

        model, named = self.model(state, config, dropout_rate, mask_off, io.StringIO())
        model.train()
        # lora.py run_lora, one iteration: each tower with gradient only where it has LoRA
        with torch.set_grad_enabled(config["encoder"] in ("text", "both")):
            class_embeddings = model.encode_text(tokens)
        text_features = class_embeddings / class_embeddings.norm(dim=-1, keepdim=True)
        with torch.set_grad_enabled(config["encoder"] in ("vision", "both")):
            image_features = model.encode_image(images)
        image_features = image_features / image_features.norm(dim=-1, keepdim=True)
        cosine_similarity = LOGIT_SCALE * image_features @ text_features.t()
        loss = F.cross_entropy(cosine_similarity, labels)
        loss.backward()
        grads = {name: p.grad.detach().clone() for name, p in sorted(named.items())}
        return {
            "logits_eval": logits_eval,
            "loss_train": loss.detach(),
            "logits_train": cosine_similarity.detach(),
            "grads": grads,
            "grad_probes": {},
            "grad_checksums": {name: checksums(g) for name, g in grads.items()},
            "grads_none": [],
            "intermediates_eval": {"image_features_raw": image_raw, "text_features_raw": text_raw},
            "log": log.getvalue(),
            "named": named,
        }


def build(ref: Reference, root: Path, config_name: str) -> dict:
    config = CONFIGS[config_name]
    classnames = CLASS_LISTS[config["classes"]]
    manifest_file = json.loads(MANIFEST.read_text())
    manifest = manifest_file["keys"]
    state = clip_state_dict(manifest)
    texts = [TEMPLATE.format(c.replace("_", " ")) for c in classnames]
    images = recipe_images(config["seed"], len(config["labels"]))
    labels = torch.tensor(config["labels"])
    faithful = ref.run(state, config, 0.0, False, images, labels, texts)
    dropout_path = ref.run(state, config, 0.25, True, images, labels, texts)
    named = faithful.pop("named")
    dropout_path.pop("named")
    log = faithful.pop("log")
    dropout_path.pop("log")
    dropout_path.pop("intermediates_eval")

    plan, params = [], {}
    for i, name in enumerate(sorted(named)):
        shape = list(named[name].shape)
        seed, std, value = recipe(i, name, shape)
        stored = value.numel() <= 65_536
        entry = plan_entry(
            name, shape, named[name].dtype, value, source="recipe", seed=seed, mean=0.0, std=std, stored=stored
        )
        plan.append(entry)
        if entry["stored"]:
            params[name] = value.clone()

    reference = {
        "repo": REPO,
        "commit": reference_commit(root, ".commit"),
        "files": ["loralib/layers.py", "loralib/utils.py", "lora.py", "main.py", "run_utils.py", "clip/"],
        "class": "loralib/layers.py:PlainMultiheadAttentionLoRA (utils.py:apply_lora on clip/model.py:CLIP)",
    }
    return {
        **fixture_header("clip_lora", config_name, reference, manifest_file),
        "trainer_config": {
            "r": config["r"],
            "alpha": config["alpha"],
            "dropout_rate": 0.0,
            "encoder": config["encoder"],
            "params": list(config["params"]),
            "position": "all",
            "backbone": "ViT-B/16",
            "template": TEMPLATE,
            "logit_scale": LOGIT_SCALE,
            "PREC": "fp32",
            "INPUT.SIZE": [32, 32],
            "cfg_node": "run_utils.py get_arguments (argparse)",
            "variants": {"dropout_path": "dropout_rate 0.25, every LoRA Dropout's p set to 0 after construction"},
        },
        "classnames": classnames,
        "classnames_processed": [c.replace("_", " ") for c in classnames],
        "prompt_texts": texts,
        "tokenized_prompts": ref.clip.tokenize(texts),
        "n_cls": len(classnames),
        "inputs": {"images": images, "labels": labels},
        "data_seed": config["seed"],
        "param_plan": plan,
        "params": params,
        "modes": {
            "logits": "model.eval() (merges B A into each weight) under torch.no_grad(); "
            "100 * normalize(encode_image) @ normalize(encode_text).T (evaluate_lora takes the argmax of the "
            "unscaled cosine)",
            "loss": "model.train(); lora.py run_lora loop body: features normalised, "
            "F.cross_entropy(100 * image @ text.T, labels)",
            "registered_module": "<the whole CLIP model>",
            "trainable_rule": "'lora_' in name",
            "dropout": "faithful: dropout_rate 0 (the reference's merge path); variant dropout_path: the "
            "dropout path with p = 0 (a fixture cannot reproduce a random mask)",
        },
        "expected": faithful,
        "variants": {"dropout_path": dropout_path},
        "fixture_deviations": [
            "faithful: dropout_rate 0 instead of the paper's 0.25 (a random dropout mask cannot be reproduced)",
            "variant dropout_path: dropout_rate 0.25 with every LinearLoRA Dropout's p set to 0 after construction",
            "fp32 on the CPU: the reference runs fp16 CLIP weights under CUDA fp16 autocast",
        ],
        "quirks": [
            "scaling = alpha / sqrt(r) (loralib/layers.py LoRALayer), not LoRA's alpha / r.",
            "LoRA on q, k, v (PlainMultiheadAttentionLoRA splits in_proj into q_proj, k_proj, v_proj) of every "
            "block of both towers: delta W = B @ A, A (r, in), B (out, r).",
            "dropout_rate > 0: out = W x + b + scaling * B A dropout(x) in training; the dropout acts on the LoRA "
            "branch's input only, one independent mask per projection.",
            "dropout_rate = 0: the forward merges W + scaling * B A and subtracts scaling * B A from the weight's "
            ".data after it, so the backward multiplies by W alone: gradients equal a LoRA branch fed a detached "
            "input (different from the dropout path's exact gradient except in the last block).",
            "eval() merges scaling * B A into the weights in place; train() subtracts it again.",
            "logits = 100 * cos (main.py logit_scale = 100), not CLIP's exp(logit_scale).",
            "Text: dataset.template[0] = 'a photo of a {}.' with '_' -> ' ', recomputed every iteration.",
        ],
        "construction_log": log,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lora", type=Path, required=True, help="MaxZanella/CLIP-LoRA checkout")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "parity")
    parser.add_argument("--configs", nargs="+", default=sorted(CONFIGS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    ref = Reference(args.lora)
    args.out.mkdir(parents=True, exist_ok=True)
    for config in args.configs:
        fixture = build(ref, args.lora, config)
        path = args.out / f"clip_lora_{config}.pt"
        digest = save_fixture(fixture, path)
        print(f"{path.name}: loss {float(fixture['expected']['loss_train']):.6f} sha256 {digest}")


if __name__ == "__main__":
    main()
