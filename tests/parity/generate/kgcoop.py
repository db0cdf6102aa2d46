"""Regenerate the KgCoOp parity fixtures (tests/parity/kgcoop_A.pt, kgcoop_B.pt) from the reference code.

    git --git-dir=<mirror of htyao89/KgCoOp> archive c43ccc3 | tar -x -C /tmp/ref_KgCoOp
    OMP_NUM_THREADS=1 .venv/bin/python tests/parity/generate/kgcoop.py /tmp/ref_KgCoOp

The reference's own `clip` package and `trainers/kgcoop.py` compute every number: the trainer's
`build_model` builds `CustomCLIP` (with its `PromptLearner`) and picks the trainable tensors, and its
`forward_backward` composes the loss that is backpropagated (cross-entropy + W * score). Plumbing only,
no reference logic is rewritten here: `dassl` is replaced by inert stand-ins (a registry decorator; a
trainer base with a no-op `register_model` and a `model_backward_and_update` that runs Dassl's zero-grad +
backward and skips the optimiser step; no optimiser or scheduler is built), the weight download
`load_clip_to_cpu` returns the recipe CLIP (methods/REFERENCES.md §6), and `.cuda()` is a no-op.
"""

from __future__ import annotations

import argparse
import importlib.util
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
    bpe_tokens,
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

COMMIT = "c43ccc32c8739f64b165cfa205fcc6c0f5bb5b17"
FILES = ["KgCoOp/trainers/kgcoop.py", "KgCoOp/clip/model.py", "KgCoOp/clip/clip.py", "KgCoOp/clip/simple_tokenizer.py"]
# name: classes, batch, TRAINER.COOP overrides, DATASET.NAME (selects CUSTOM_TEMPLATES), data seed, ctx seed.
# A: the paper setting with ctx moved off its init (at the init the learned prompt *is* the hand-written one,
# so the knowledge term and its gradient vanish); B: random ctx, another template, the default W; C: A at init.
CONFIGS = {
    "A": (CLASSES_A, 2, {"N_CTX": 4, "CTX_INIT": True, "W": 8.0}, "ImageNet", 3_000_200, 2_000_200),
    "B": (CLASSES_B, 3, {"N_CTX": 16, "CTX_INIT": False, "W": 1.0}, "EuroSAT", 3_000_210, 2_000_210),
    "C": (CLASSES_A, 2, {"N_CTX": 4, "CTX_INIT": True, "W": 8.0}, "ImageNet", 3_000_220, None),
}


def import_reference(root: Path):
    """The reference `clip` package and trainers/kgcoop.py as modules."""
    install_dassl_stubs(lambda *a, **k: None)
    sys.path.insert(0, str(root / "KgCoOp"))
    from clip import clip as ref_clip

    spec = importlib.util.spec_from_file_location("ref_kgcoop", root / "KgCoOp" / "trainers" / "kgcoop.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return ref_clip, module


def scaled(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return ((a - b).abs().max() / b.abs().max()).item()


def make_cfg(overrides: dict, dataset: str) -> SimpleNamespace:
    coop = {"N_CTX": 16, "CSC": False, "CTX_INIT": False, "W": 1.0, "PREC": "fp32", "CLASS_TOKEN_POSITION": "end"}
    coop.update(overrides)
    return ns(
        TRAINER=ns(COOP=ns(**coop), COCOOP=ns(PREC="fp16")),
        INPUT=ns(SIZE=(32, 32)),
        DATASET=ns(NAME=dataset),
        MODEL=ns(BACKBONE=ns(NAME="ViT-B/16"), INIT_WEIGHTS=""),
        OPTIM=ns(NAME="sgd", LR=0.002, MAX_EPOCH=100),  # handed to the (stubbed) optimiser builders
    )


def run_reference(ref_clip, ref, manifest, cfg, classnames, ctx_value, images, labels, *, second_copy_fp32: bool):
    """Build the model with the reference trainer's `build_model`; eval logits, then its loss and gradients."""
    loads = []

    def loader(_cfg):  # the download, replaced by the recipe weights; clip.build_model casts to fp16
        loads.append(_cfg)
        model = ref_clip.build_model(clip_state_dict(manifest))
        return model.float() if second_copy_fp32 and len(loads) > 1 else model

    ref.load_clip_to_cpu = loader  # 1st call: KgCoOp.build_model's CLIP; 2nd: PromptLearner's hand-written copy
    torch.manual_seed(0)
    trainer, log = build_trainer(ref.KgCoOp, cfg, classnames, batch_idx=0, num_batches=2)
    assert len(loads) == 2, loads
    model = trainer.model
    learner = model.prompt_learner
    init_ctx = learner.ctx.detach().clone()
    if ctx_value is not None:
        with torch.no_grad():
            learner.ctx.copy_(ctx_value)

    model.eval()
    with torch.no_grad():
        logits_eval = model(images)[0]  # KgCoOp.model_inference
        inter = {
            "image_features_raw": model.image_encoder(images),
            "text_features_raw": model.text_encoder(learner(), model.tokenized_prompts),
            "handcrafted_text_features": model.ori_embedding.detach().clone(),
            "score": model(images)[1],
        }
        prompts = learner()
        inter["prompts"] = {"sum_over_dim": prompts.sum(-1), "first8_channels": prompts[..., :8].clone()}

    outputs = []
    hook = model.register_forward_hook(lambda m, i, o: outputs.append(o))
    model.eval()
    learner.train()  # Dassl set_model_mode("train") on the registered prompt learner
    summary = trainer.forward_backward({"img": images, "label": labels})
    hook.remove()
    logits_train, score_train = outputs[-1]
    loss = torch.tensor(summary["loss"], dtype=torch.float32)
    return {
        "model": model,
        "init_ctx": init_ctx,
        "logits_eval": logits_eval.detach().clone(),
        "logits_train": logits_train.detach().clone(),
        "score_train": score_train.detach().clone(),
        "loss_train": loss,
        "grads": {"prompt_learner.ctx": learner.ctx.grad.detach().clone()},
        "inter": inter,
        "log": log,
    }


def build_fixture(root: Path, name: str, manifest_doc: dict) -> dict:
    ref_clip, ref = import_reference(root)
    manifest = manifest_doc["keys"]
    classnames, batch, overrides, dataset, data_seed, ctx_seed = CONFIGS[name]
    cfg = make_cfg(overrides, dataset)
    images = recipe_images(data_seed, batch)
    labels = torch.randint(len(classnames), (batch,), generator=torch.Generator().manual_seed(data_seed + 1))
    n_ctx = 4 if overrides["CTX_INIT"] else overrides["N_CTX"]
    ctx_value = None if ctx_seed is None else recipe_tensor(ctx_seed, [n_ctx, 512], 0.0, 0.02)
    main = run_reference(ref_clip, ref, manifest, cfg, classnames, ctx_value, images, labels, second_copy_fp32=True)
    faithful = run_reference(
        ref_clip, ref, manifest, cfg, classnames, ctx_value, images, labels, second_copy_fp32=False
    )
    model, learner = main["model"], main["model"].prompt_learner
    ctx = learner.ctx.detach().clone()
    processed = [c.replace("_", " ") for c in classnames]
    prefix = "a photo of a" if overrides["CTX_INIT"] else " ".join(["X"] * n_ctx)
    template = ref.CUSTOM_TEMPLATES[dataset]
    tokenizer = ref._tokenizer
    tokens = model.tokenized_prompts
    source = "ctx_init" if ctx_seed is None else "recipe"
    mean, std = (None, None) if ctx_seed is None else (0.0, 0.02)
    plan = [
        plan_entry("prompt_learner.ctx", ctx.shape, ctx.dtype, ctx, source=source, seed=ctx_seed, mean=mean, std=std)
    ]
    fp16_effect = {
        "loss_train": scaled(faithful["loss_train"], main["loss_train"]),
        "grad prompt_learner.ctx": scaled(faithful["grads"]["prompt_learner.ctx"], main["grads"]["prompt_learner.ctx"]),
        "handcrafted_text_features": scaled(
            faithful["inter"]["handcrafted_text_features"].float(), main["inter"]["handcrafted_text_features"]
        ),
    }
    coop = vars(cfg.TRAINER.COOP)
    reference = {"repo": "htyao89/KgCoOp", "commit": COMMIT, "files": FILES, "class": "trainers/kgcoop.py:CustomCLIP"}
    return {
        **fixture_header("kgcoop", name, reference, manifest_doc, threads=torch.get_num_threads()),
        "trainer_config": {
            **{k: coop[k] for k in ("N_CTX", "CTX_INIT", "CSC", "W", "CLASS_TOKEN_POSITION", "PREC")},
            "cfg_node": "TRAINER.COOP",
            "INPUT.SIZE": [32, 32],
            "DATASET.NAME": dataset,
            "TEMPLATE": template,
        },
        "classnames": classnames,
        "classnames_processed": processed,
        "prompt_prefix": prefix,
        "prompt_texts": [f"{prefix} {c}." for c in processed],
        "tokenized_prompts": tokens.clone(),
        "prompt_bpe_tokens": bpe_tokens(tokenizer.decoder, tokens),
        "name_lens": list(learner.name_lens),
        "ctx_init_token_ids": ref_clip.tokenize("a photo of a")[0] if overrides["CTX_INIT"] else None,
        "reference_init_ctx": main["init_ctx"] if overrides["CTX_INIT"] else None,
        "handcrafted_prompt_texts": [template.format(c) for c in processed],
        "n_ctx_effective": learner.n_ctx,
        "n_cls": len(classnames),
        "inputs": {"images": images, "labels": labels},
        "data_seed": data_seed,
        "param_plan": plan,
        "params": {"prompt_learner.ctx": ctx},
        "modes": {
            "logits": "model.eval() under torch.no_grad(); KgCoOp.model_inference = model(images)[0]",
            "loss": "model.eval(); model.prompt_learner.train(); KgCoOp.forward_backward: output, score = "
            "model(images); loss = F.cross_entropy(output, label) + W * score",
            "registered_module": "prompt_learner",
            "trainable_rule": "'ctx' in name (bias_vectors, meta_net and adapter exist but are frozen and unused)",
            "dropout": "none anywhere (CLIP has none; MultiheadAttention dropout is 0)",
        },
        "expected": {
            "logits_eval": main["logits_eval"],
            "loss_train": main["loss_train"],
            "logits_train": main["logits_train"],
            "score_train": main["score_train"],
            "grads": main["grads"],
            "grad_probes": {},
            "grad_checksums": {k: checksums(v) for k, v in main["grads"].items()},
            "grads_none": [],
            "intermediates_eval": main["inter"],
        },
        "variants": {},
        "fixture_deviations": [
            "PromptLearner loads a second CLIP (load_clip_to_cpu, no .float()) to compute the hand-written prompt "
            "features, so the reference computes them in fp16 even with PREC fp32, on CUDA. The generator casts that "
            "copy to fp32 (as PREC fp32 does for the main copy): CPU fp16 would not reproduce CUDA's fp16 numbers "
            "anyway. Effect of the fp16 copy on CPU, scaled errors against this fixture: "
            + ", ".join(f"{k} {v:.1e}" for k, v in fp16_effect.items())
        ],
        "quirks": [
            "Any truthy CTX_INIT means the hard-coded 'a photo of a' (n_ctx 4); otherwise N(0, 0.02) ctx behind "
            "'X' * N_CTX (class-specific with CSC).",
            "The class token is always at the end; CLASS_TOKEN_POSITION is ignored.",
            "Hand-written prompt = CUSTOM_TEMPLATES[DATASET.NAME].format(name with '_' -> ' '); its text features "
            "are normalised when stored and normalised again in every forward.",
            "score = 1 - mean_c CosineSimilarity(dim=1, eps=1e-7)(normalised learned text features, hand-written "
            "features); the trainer backpropagates cross_entropy + W * score; evaluation uses the logits only.",
            "Only names containing 'ctx' are trainable; bias_vectors, meta_net and adapter are built (they draw "
            "from the RNG) but frozen and never used in forward.",
            "PREC 'amp' is broken in the reference (F.cross_entropy on the (logits, score) tuple).",
        ],
        "construction_log": main["log"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path, help="export of htyao89/KgCoOp @ " + COMMIT)
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "parity")
    parser.add_argument("--manifest", type=Path, default=MANIFEST)
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    manifest_doc = json.loads(args.manifest.read_text())
    for name in args.configs:
        fixture = build_fixture(args.reference, name, manifest_doc)
        path = args.out / f"kgcoop_{name}.pt"
        digest = save_fixture(fixture, path)
        print(f"{path}: sha256 {digest}, loss {float(fixture['expected']['loss_train']):.7f}")
        print("  " + fixture["fixture_deviations"][0].split("Effect")[1])


if __name__ == "__main__":
    main()
