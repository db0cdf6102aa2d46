"""Generate the PromptSRC parity fixtures from the reference code (muzairkhattak/PromptSRC).

    python tests/parity/generate/promptsrc.py /tmp/ref_PromptSRC tests/parity

The reference checkout is exported with `git --git-dir=<fetched repo> archive HEAD | tar -x -C /tmp/ref_PromptSRC`.
The script imports the reference's own `clip` package and `trainers/promptsrc.py` and runs its `PromptSRC.build_model`,
`CustomCLIP.forward` and `forward_backward` unchanged, on the small recipe CLIP of ../shared/parity/README.md. What it
supplies is plumbing: stand-ins for the few `dassl` symbols the trainer imports, `clip._download` pointing at the
recipe weights, and `.cuda()` as the identity (CPU only). The deviations needed to run PREC fp32 and the variant's
patches are textual replacements of exact reference lines, listed in each fixture's `fixture_deviations`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import torch
from _common import (
    CLASSES_A,
    CLASSES_B,
    MANIFEST,
    NoOptimizer,
    bpe_tokens,
    build_trainer,
    checksums,
    clip_state_dict,
    cuda_as_identity,
    fixture_header,
    install_dassl_stubs,
    load_patched_reference,
    ns,
    plan_entry,
    recipe_images,
    recipe_tensor,
    reference_commit,
    save_fixture,
    set_params,
    trainable,
)

PARAM_SEED, DATA_SEED = 2_000_000, 3_000_600
REPO = "muzairkhattak/PromptSRC"
FILES = ["trainers/promptsrc.py", "trainers/imagenet_templates.py", "clip/model.py", "clip/clip.py"]

# PREC fp32 crashes in the reference: its zero-shot image encoder is loaded in fp16 and never cast, and the zero-shot
# logits multiply fp32 features by `fixed_embeddings.half()`. Both are cast to the model dtype instead, which is what
# the reference computes under its own PREC fp16 (where both are fp16 already).
RUN_FP32 = [
    (
        "trainers/promptsrc.py",
        "zero_shot_features.cuda() @ fixed_embeddings.half().cuda().t()",
        "zero_shot_features.cuda() @ fixed_embeddings.type(self.dtype).cuda().t()",
    ),
]
NO_HALF_CAST = [
    (
        "clip/model.py",
        "visual_ctx = self.VPT.expand(x.shape[0], -1, -1).half()",
        "visual_ctx = self.VPT.expand(x.shape[0], -1, -1)",
    ),
    (
        "clip/model.py",
        "visual_context = self.VPT_shallow.expand(x.shape[1], -1, -1).permute(1, 0, 2).half()",
        "visual_context = self.VPT_shallow.expand(x.shape[1], -1, -1).permute(1, 0, 2)",
    ),
    (
        "clip/model.py",
        "textual_context = self.VPT_shallow.expand(x.shape[1], -1, -1).permute(1, 0, 2).half()",
        "textual_context = self.VPT_shallow.expand(x.shape[1], -1, -1).permute(1, 0, 2)",
    ),
]


def build_optimizer(model, optim_cfg):
    """No optimiser for the fixture cases (gradients stay); real SGD for the GPA run, which takes steps."""
    if getattr(optim_cfg, "REAL_SGD", False):
        params = [p for p in model.parameters() if p.requires_grad]
        return torch.optim.SGD(params, lr=optim_cfg.LR, momentum=0.9, weight_decay=5e-4)
    return NoOptimizer(model.parameters())


# -- plumbing ---------------------------------------------------------------------------------------
def load_reference(ref: Path, patches: list[tuple[str, str, str]], weights: Path):
    """Import a patched copy of the reference (`clip` package and `trainers.promptsrc`)."""
    return load_patched_reference(ref, ("clip", "trainers"), "trainers.promptsrc", patches, weights)


def make_cfg(tc: dict, epochs: int, *, lr: float = 0.0025, real_sgd: bool = False) -> SimpleNamespace:
    node = ns(**{k: tc[k] for k in tc if k.isupper() and k not in ("PREC_NOTE",)})
    return ns(
        TRAINER=ns(PROMPTSRC=node),
        MODEL=ns(BACKBONE=ns(NAME="ViT-B/16"), INIT_WEIGHTS=""),
        INPUT=ns(SIZE=(32, 32)),
        OPTIM=ns(MAX_EPOCH=epochs, LR=lr, REAL_SGD=real_sgd),
    )


def make_trainer(trainer_mod, cfg, classnames: list[str]):
    """The reference trainer object after its own `build_model` (stand-in dassl parts), in PREC fp32."""
    tr, log = build_trainer(trainer_mod.PromptSRC, cfg, classnames)
    # Deviation (RUN_FP32): the zero-shot image encoder is loaded in fp16 and PREC fp32 never casts it.
    tr.model.prompt_learner.ZS_image_encoder.float()
    return tr, log


# -- fixture pieces -------------------------------------------------------------------------------
def plan_params(model, ctx_names: set[str]) -> tuple[list[dict], dict[str, torch.Tensor]]:
    plan, values = [], {}
    for i, (name, p) in enumerate(trainable(model).items()):
        if name in ctx_names:
            value, source, seed, mean, std = p.detach().float().clone(), "ctx_init", None, None, None
        else:
            seed, mean, std = PARAM_SEED + i, 0.0, 0.02
            value, source = recipe_tensor(seed, list(p.shape), mean, std), "recipe"
        stored = value.numel() <= 65536
        plan.append(
            plan_entry(name, p.shape, p.dtype, value, source=source, seed=seed, mean=mean, std=std, stored=stored)
        )
        if stored:
            values[name] = value
    return plan, values


def run_case(tr, images: torch.Tensor, labels: torch.Tensor) -> dict:
    """Eval logits, then the reference `forward_backward` (loss and gradients) in training mode."""
    model = tr.model
    model.eval()
    with torch.no_grad():
        logits = model(images)
        image_raw = model.image_encoder(images)
        text_raw = model.text_encoder(model.prompt_learner(), model.tokenized_prompts)
    captured = {}
    handle = model.register_forward_hook(lambda m, i, o: captured.update(out=o))
    model.train()
    tr.batch_idx, tr.num_batches = 0, 2  # not the last batch: no GPA step
    loss = tr.forward_backward({"img": images, "label": labels})["loss"]
    handle.remove()
    model.eval()
    grads = {n: p.grad.detach().clone() for n, p in trainable(model).items() if p.grad is not None}
    names = ("loss_ce", "text_features", "fixed_embeddings", "zs_image", "image_features", "zs_logits", "logits")
    train_out = {k: v.detach().clone() for k, v in zip(names, captured["out"])}
    return {
        "logits_eval": logits.detach().clone(),
        "loss_train": torch.tensor(loss, dtype=torch.float32),
        "grads": grads,
        "grad_probes": {},
        "grad_checksums": {n: checksums(g) for n, g in grads.items()},
        "grads_none": [n for n, p in trainable(model).items() if p.grad is None],
        "intermediates_eval": {"image_features_raw": image_raw.clone(), "text_features_raw": text_raw.clone()},
        "intermediates_train": train_out,
    }


def run_gpa(trainer_mod, tc: dict, classnames, plan, values, images, labels, epochs: int) -> dict:
    """A short reference run, one batch per epoch with real SGD steps, through its own GPA bookkeeping.

    Records each epoch's prompts as the GPA step reads them, the weight it gives them, and the prompts the
    reference loads after the last epoch.
    """
    cfg = make_cfg(tc, epochs, lr=0.5, real_sgd=True)
    tr, _ = make_trainer(trainer_mod, cfg, classnames)
    set_params(tr.model, plan, values)
    names = list(trainable(tr.model))
    snapshots, weights = {n: [] for n in names}, []
    original = tr.state_dict_weighting

    def spy(main_dict, weightage, prompt_only=False):
        for n in names:
            snapshots[n].append(main_dict[n].detach().float().clone())
        weights.append(float(weightage))
        return original(main_dict, weightage, prompt_only)

    tr.state_dict_weighting = spy
    tr.model.train()
    for _ in range(epochs):
        tr.batch_idx, tr.num_batches = 0, 1
        tr.forward_backward({"img": images, "label": labels})
    final = trainable(tr.model)
    return {
        "epochs": epochs,
        "gpa_mean": float(tc["GPA_MEAN"]),
        "gpa_std": float(tc["GPA_STD"]),
        "weights": weights,
        "snapshots": {n: torch.stack(v) for n, v in snapshots.items()},
        "averaged": {n: final[n].detach().float().clone() for n in names},
        "note": "reference run with SGD lr 0.5, one batch per epoch, PREC fp32; snapshots[e] = prompts the GPA step "
        "read after epoch e (0-based), weights[e] its weight; averaged = prompts after the run",
    }


def make_fixture(ref: Path, weights: Path, manifest: dict, name: str, tc: dict, classnames, batch: int) -> dict:
    trainer_mod = load_reference(ref, RUN_FP32, weights)
    clip_pkg = sys.modules["clip.clip"]
    tr, construction_log = make_trainer(trainer_mod, make_cfg(tc, 20), classnames)
    model, pl = tr.model, tr.model.prompt_learner
    plan, values = plan_params(model, {"prompt_learner.ctx"})
    set_params(model, plan, values)
    images = recipe_images(DATA_SEED + ord(name), batch)
    labels = torch.arange(batch) * 2 % len(classnames)
    expected = run_case(tr, images, labels)
    gpa = run_gpa(trainer_mod, tc, classnames, plan, values, images, labels, epochs=int(tc["MAX_EPOCH"]))

    variant_mod = load_reference(ref, RUN_FP32 + NO_HALF_CAST, weights)
    vtr, _ = make_trainer(variant_mod, make_cfg(tc, 20), classnames)
    set_params(vtr.model, plan, values)
    variant = run_case(vtr, images, labels)
    variant.pop("intermediates_eval")

    tokenizer = clip_pkg._tokenizer
    processed = [c.replace("_", " ") for c in classnames]
    prefix = tc["CTX_INIT"] if tc["CTX_INIT"] and tc["N_CTX_TEXT"] <= 4 else " ".join(["X"] * tc["N_CTX_TEXT"])
    tokens = pl.tokenized_prompts.clone()
    bpe = bpe_tokens(tokenizer.decoder, tokens)
    reference = {"repo": REPO, "commit": None, "files": FILES, "class": "trainers/promptsrc.py:CustomCLIP"}
    return {
        **fixture_header("promptsrc", name, reference, manifest),
        "trainer_config": tc,
        "classnames": list(classnames),
        "classnames_processed": processed,
        "prompt_prefix": prefix,
        "prompt_texts": [f"{prefix} {c}." for c in processed],
        "tokenized_prompts": tokens,
        "prompt_bpe_tokens": bpe,
        "name_lens": list(pl.name_lens),
        "ctx_init_token_ids": clip_pkg.tokenize(tc["CTX_INIT"])[0] if tc["CTX_INIT"] else None,
        "n_ctx_effective": int(pl.n_ctx),
        "n_cls": len(classnames),
        "inputs": {"images": images, "labels": labels},
        "data_seed": DATA_SEED + ord(name),
        "param_plan": plan,
        "params": values,
        "modes": {
            "logits": "model.eval() under torch.no_grad(); forward without label (returns logits)",
            "loss": "model.train(); the trainer's forward_backward: CE + KL(zs || prompted)/numel + "
            "TEXT_LOSS_WEIGHT * L1(text) + IMAGE_LOSS_WEIGHT * L1(image); the optimizer is not stepped",
            "registered_module": "<whole CustomCLIP>",
            "trainable_rule": "('prompt_learner' in name and 'ZS_image_encoder' not in name) or 'VPT' in name",
            "dropout": "none anywhere (CLIP has none; MultiheadAttention dropout is 0)",
        },
        "expected": expected,
        "variants": {"no_half_cast": variant},
        "gpa": gpa,
        "fixture_deviations": [
            "prompt_learner.ZS_image_encoder cast to fp32 after construction (the reference loads it in fp16 and "
            "PREC fp32 crashes on it; values are fp16-exact)",
            *[f"{rel}: {old!r} -> {new!r}" for rel, old, new in RUN_FP32],
        ],
        "variant_patches": {"no_half_cast": [f"{rel}: {old!r} -> {new!r}" for rel, old, new in NO_HALF_CAST]},
        "quirks": QUIRKS,
        "construction_log": construction_log,
    }


QUIRKS = [
    "Independent V-L prompts (IVLP): text ctx at layer 0 (spliced after SOT); for text blocks 1..min(depth, layers)-1 "
    "positions 1..n_ctx are replaced by that block's own prompt. Vision: n_ctx_v prompt tokens appended after the "
    "patch tokens (after the positional embedding, before ln_pre); blocks 1..min(depth, layers)-1 replace the last "
    "n_ctx_v tokens. Unlike MaPLe no prompt is created for blocks that do not exist.",
    "CTX_INIT is used only when N_CTX_TEXT <= 4: ctx = its first N_CTX_TEXT token embeddings, the template keeps "
    "the whole CTX_INIT.",
    "Every vision prompt (layer 0 and deep) and every deep text prompt is expanded over the batch/classes and cast "
    "to fp16 (.half()) before torch.cat with the fp32 activations (values and per-copy gradients rounded); the "
    "layer-0 text ctx is not cast. Variant no_half_cast removes those three casts.",
    "Frozen text features: the 60 IMAGENET_TEMPLATES filled with each class name, encoded by a fresh fp32 CLIP "
    "without prompts, averaged *before* normalisation, then normalised in forward.",
    "Frozen image features: a separate prompt-free copy of the image tower (ZS_image_encoder) on the same pixels, "
    "under no_grad; zero-shot logits = logit_scale * normalised zs image @ normalised frozen text.",
    "Loss (trainer forward_backward): CE + (KL + 25 * L1(text) + 10 * L1(image)), KL = kl_div(log_softmax(logits), "
    "log_softmax(zs_logits), reduction='sum', log_target=True) / logits.numel(), temperature 1; L1 on normalised "
    "features, mean reduction; text L1 over [n_cls, D], image L1 over [B, D].",
    "GPA: after the last batch of epoch e (0-based) the whole state_dict is multiplied by w_e = N(e+1; GPA_MEAN, "
    "GPA_STD) / sum and added up; after the last epoch the sum is loaded into the model (frozen weights included).",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path, help="exported reference checkout")
    parser.add_argument("out", type=Path, help="output folder (tests/parity)")
    parser.add_argument("--manifest", type=Path, default=MANIFEST)
    args = parser.parse_args()
    if os.environ.get("PYTHONHASHSEED") != "0":  # the reference prints a set of names into construction_log
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})
    torch.set_num_threads(2)
    install_dassl_stubs(build_optimizer)
    cuda_as_identity()  # CPU only: the reference calls .cuda() on tensors and modules
    manifest = json.loads(args.manifest.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "ViT-B-16.pt"
        torch.save(clip_state_dict(manifest["keys"]), weights)
        commit = reference_commit(args.reference, "COMMIT")
        base = {
            "N_CTX_TEXT": 4, "N_CTX_VISION": 4, "CTX_INIT": "a photo of a", "PREC": "fp32",
            "PROMPT_DEPTH_TEXT": 9, "PROMPT_DEPTH_VISION": 9, "TEXT_LOSS_WEIGHT": 25, "IMAGE_LOSS_WEIGHT": 10,
            "GPA_MEAN": 15, "GPA_STD": 1, "MAX_EPOCH": 20, "cfg_node": "TRAINER.PROMPTSRC", "INPUT.SIZE": [32, 32],
        }  # fmt: skip
        configs = {
            "A": (base, CLASSES_A, 2),
            "B": (
                {**base, "N_CTX_TEXT": 3, "N_CTX_VISION": 2, "PROMPT_DEPTH_TEXT": 3, "PROMPT_DEPTH_VISION": 2,
                 "GPA_MEAN": 3, "GPA_STD": 2, "MAX_EPOCH": 4},
                CLASSES_B,
                3,
            ),
        }  # fmt: skip
        args.out.mkdir(parents=True, exist_ok=True)
        for name, (tc, classes, batch) in configs.items():
            fixture = make_fixture(args.reference, weights, manifest, name, tc, classes, batch)
            fixture["reference"]["commit"] = commit
            path = args.out / f"promptsrc_{name}.pt"
            print(f"{path} sha256 {save_fixture(fixture, path)}")


if __name__ == "__main__":
    main()
