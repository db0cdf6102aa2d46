"""Generate the APPLeNet parity fixture from the reference code (mainaksingha01/APPLeNet).

    python tests/parity/generate/applenet.py /tmp/ref_APPLeNet tests/parity

The reference checkout is exported file by file with `git show` (its `json/mlrsnet.json` blob is absent from the
stored snapshot, which does not matter here). The script imports the reference's own `clip` package and
`models/applenet.py` and runs its `AppleNet.build_model`, `CustomCLIP.forward`, `AppleLoss` and
`forward_backward` unchanged on the small recipe CLIP of ../shared/parity/README.md. It supplies plumbing only:
stand-ins for the `dassl` symbols the trainer imports, `clip._download` pointing at the recipe weights, and
`.cuda()` as the identity (CPU only). PREC fp32 needs two casts of the reference made dtype-neutral, and the
variant removes the fp16 rounding of the injection output: exact textual replacements listed in the fixture.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import torch
from _common import (
    CLASSES_A,
    MANIFEST,
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

PARAM_SEED, DATA_SEED = 2_000_000, 3_000_700
REPO = "mainaksingha01/APPLeNet"
FILES = ["models/applenet.py", "clip/model.py", "clip/clip.py", "train.py", "yaml/trainers/AppleNet/vit_b16_c4.yaml"]
BIG = 65536  # gradients above this many elements are stored as probes (keeps the file near 1 MB)

# PREC fp32 crashes in the reference: the vision tower casts its pooled feature to fp16 before `@ visual.proj`, and
# the text encoder casts the prompts to fp16 before the transformer. Under the reference's own PREC fp16 both casts
# are no-ops; here they cast to the model's dtype instead.
RUN_FP32 = [
    ("clip/model.py", "            x = x.to(torch.float16)\n", "            x = x.to(self.proj.dtype)\n"),
    ("models/applenet.py", "\t\tx = x.to(torch.float16)\n", "\t\tx = x.to(self.dtype)\n"),
]
NO_HALF_CAST = [
    ("models/applenet.py", "output = linear2.to(torch.float16)", "output = linear2"),
    ("models/applenet.py", "bias = bias.to(torch.float16)", "bias = bias"),
]


def load_reference(ref: Path, patches: list[tuple[str, str, str]], weights: Path):
    """Import a patched copy of the reference (`clip` namespace package and `models.applenet`)."""
    return load_patched_reference(ref, ("clip", "models"), "models.applenet", patches, weights)


def make_trainer(module, tc: dict, classnames: list[str]):
    """The reference trainer after its own `build_model` (stand-in dassl parts), PREC fp32."""
    cfg = ns(
        TRAINER=ns(APPLENET=ns(N_CTX=tc["N_CTX"], CSC=False, CTX_INIT=tc["CTX_INIT"], PREC=tc["PREC"])),
        LOSS=ns(NAME="apple", T=tc["LOSS.T"]),
        MODEL=ns(BACKBONE=ns(NAME="ViT-B/16"), INIT_WEIGHTS=""),
        INPUT=ns(SIZE=tuple(tc["INPUT.SIZE"])),
        OPTIM=ns(),
    )
    return build_trainer(module.AppleNet, cfg, classnames)


def plan_params(model) -> tuple[list[dict], dict[str, torch.Tensor]]:
    """ctx from the reference's CTX_INIT; everything else by recipe (biases std 0.02, weights fan_in^-0.5)."""
    plan, values = [], {}
    for i, (name, p) in enumerate(trainable(model).items()):
        if name == "prompt_learner.ctx":
            value, source, seed, mean, std = p.detach().float().clone(), "ctx_init", None, None, None
        else:
            seed, mean = PARAM_SEED + i, 0.0
            std = 0.02 if name.endswith("bias") else float(torch.tensor(p.shape[1:]).prod()) ** -0.5
            value, source = recipe_tensor(seed, list(p.shape), mean, std), "recipe"
        stored = value.numel() <= BIG
        plan.append(
            plan_entry(name, p.shape, p.dtype, value, source=source, seed=seed, mean=mean, std=std, stored=stored)
        )
        if stored:
            values[name] = value
    return plan, values


def run_case(tr, images: torch.Tensor, labels: torch.Tensor, *, probes: bool) -> dict:
    """Eval logits (the trainer's `test` path), then `forward_backward` (AppleLoss, gradients) in training mode."""
    model = tr.model
    model.eval()
    with torch.no_grad():
        logits, ctx_shifted, _ = model(images, labels)
        image_raw, data = model.image_encoder(images)
    model.train()
    tr.batch_idx, tr.num_batches = 0, 2
    loss = tr.forward_backward({"img": images, "label": labels})["loss"]
    model.eval()
    with torch.no_grad():
        train_logits, train_ctx, _ = model(images, labels)
        ce = torch.nn.functional.cross_entropy(train_logits, labels)
    grads, grad_probes = {}, {}
    for name, p in trainable(model).items():
        if p.grad is None:
            continue
        g = p.grad.detach().clone()
        if probes and g.numel() > BIG:
            stride = g.numel() // 4096
            samples = g.flatten()[::stride].clone()
            dtype = str(g.dtype).removeprefix("torch.")
            grad_probes[name] = {"shape": list(g.shape), "dtype": dtype, "stride": stride, "samples": samples}
            grad_probes[name].update(checksums(g))
        else:
            grads[name] = g
    all_grads = {n: p.grad for n, p in trainable(model).items() if p.grad is not None}
    return {
        "logits_eval": logits.detach().clone(),
        "loss_train": torch.tensor(loss, dtype=torch.float32),
        "grads": grads,
        "grad_probes": grad_probes,
        "grad_checksums": {n: checksums(g) for n, g in all_grads.items()},
        "grads_none": [n for n, p in trainable(model).items() if p.grad is None],
        "intermediates_eval": {
            "image_features_raw": image_raw.detach().clone(),
            "block_token_means": (data.sum(dim=2) / data.shape[2]).permute(1, 0, 2).clone(),  # [B, L, 768]
            "ctx_shifted": ctx_shifted.detach().clone(),
            "ce_train": ce.clone(),
            "crp_log10_term": torch.tensor(loss, dtype=torch.float32) - ce,
        },
    }


QUIRKS = [
    "The vision tower records every block's output (all tokens, detached) and the reference averages each over its "
    "tokens as sum / count (AdaIN_trans.mu); multi_scale projects block l with its own Linear(768, 512). It creates "
    "12 Linears (ViT-B/16's depth) whatever the backbone and uses the first L: the others get no gradient.",
    "The normalised image feature is appended as one more row; InjectionBlock pools the L + 1 rows with "
    "AdaptiveAvgPool2d((1, 512)) (a mean over rows), gate = Linear(512, 32, no bias), ReLU, Linear(32, 512, no bias), "
    "Sigmoid; h = linearlayer1([gate(v) * v, v]); out = linearlayer2([gate(h) * v, v]) (both products use v).",
    "The injection output is cast to fp16 (output = linear2.to(float16); bias.to(float16)) and back "
    "(bias.type(float)) before the meta-net, also in an fp32 run: its value and the gradients flowing back are "
    "fp16-rounded. Variant no_half_cast removes both casts.",
    "The meta-net (Linear(512, 32), ReLU, Linear(32, 512)) is called four times on the same input (one call per "
    "context token, n_ctx hard-coded to 4); each copy's result is added to its ctx token.",
    "Text: per image, prompts [SOT, ctx_shifted_b, class tokens, '.', EOT] for every class; logits row b = "
    "logit_scale * f_b @ normalize(text_b).T with f_b the normalised image feature.",
    "AppleLoss: CE + 0.05 * log10(-mean_b det(C_b C_b^T / T^3 - I / T)), T = LOSS.T = 1, C_b the shifted context "
    "[4, 512]; the identity is eye(4).repeat(4, 1, 1), so the batch must be 4 (or 1). The fixture uses batch 4.",
    "The trainer optimises prompt_learner only (trainable = names containing 'prompt_learner'); the model returns "
    "(logits, ctx_shifted, label) in both modes and the loss is computed by the trainer.",
]


def make_fixture(ref: Path, weights: Path, manifest: dict, name: str, tc: dict, classnames, batch: int) -> dict:
    module = load_reference(ref, RUN_FP32, weights)
    clip_pkg = sys.modules["clip.clip"]
    tr, construction_log = make_trainer(module, tc, classnames)
    plan, values = plan_params(tr.model)
    set_params(tr.model, plan, values)
    images = recipe_images(DATA_SEED + ord(name), batch)
    labels = torch.arange(batch) * 2 % len(classnames)
    expected = run_case(tr, images, labels, probes=True)

    variant_mod = load_reference(ref, RUN_FP32 + NO_HALF_CAST, weights)
    vtr, _ = make_trainer(variant_mod, tc, classnames)
    set_params(vtr.model, plan, values)
    variant = run_case(vtr, images, labels, probes=True)
    variant.pop("intermediates_eval")

    pl = tr.model.prompt_learner
    processed = [c.replace("_", " ") for c in classnames]
    prefix = tc["CTX_INIT"]
    tokens = pl.tokenized_prompts.clone()
    reference = {"repo": REPO, "commit": None, "files": FILES, "class": "models/applenet.py:CustomCLIP"}
    return {
        **fixture_header("applenet", name, reference, manifest),
        "trainer_config": tc,
        "classnames": list(classnames),
        "classnames_processed": processed,
        "prompt_prefix": prefix,
        "prompt_texts": [f"{prefix} {c}." for c in processed],
        "tokenized_prompts": tokens,
        "prompt_bpe_tokens": bpe_tokens(clip_pkg._tokenizer.decoder, tokens),
        "name_lens": list(pl.name_lens),
        "ctx_init_token_ids": clip_pkg.tokenize(prefix)[0],
        "n_ctx_effective": int(pl.n_ctx),
        "n_cls": len(classnames),
        "inputs": {"images": images, "labels": labels},
        "data_seed": DATA_SEED + ord(name),
        "param_plan": plan,
        "params": values,
        "modes": {
            "logits": "model.eval() under torch.no_grad(); logits = model(images, labels)[0] (the trainer's test)",
            "loss": "model.train(); the trainer's forward_backward: AppleLoss(logits, ctx_shifted, labels); the "
            "optimizer is not stepped",
            "registered_module": "prompt_learner",
            "trainable_rule": "'prompt_learner' in name",
            "dropout": "none anywhere (CLIP has none; MultiheadAttention dropout is 0)",
        },
        "expected": expected,
        "variants": {"no_half_cast": variant},
        "fixture_deviations": [f"{rel}: {old.strip()!r} -> {new.strip()!r}" for rel, old, new in RUN_FP32],
        "variant_patches": {"no_half_cast": [f"{rel}: {old!r} -> {new!r}" for rel, old, new in NO_HALF_CAST]},
        "quirks": QUIRKS,
        "construction_log": construction_log,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path, help="exported reference checkout")
    parser.add_argument("out", type=Path, help="output folder (tests/parity)")
    parser.add_argument("--manifest", type=Path, default=MANIFEST)
    args = parser.parse_args()
    if os.environ.get("PYTHONHASHSEED") != "0":  # the reference prints a set of names into construction_log
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})
    torch.set_num_threads(2)
    install_dassl_stubs()
    cuda_as_identity()  # CPU only: AppleLoss calls .cuda() on its identity stack
    manifest = json.loads(args.manifest.read_text())
    tc = {"N_CTX": 4, "CTX_INIT": "a photo of a", "PREC": "fp32", "LOSS.T": 1.0, "LOSS.NAME": "apple",
          "cfg_node": "TRAINER.APPLENET", "INPUT.SIZE": [32, 32]}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "ViT-B-16.pt"
        torch.save(clip_state_dict(manifest["keys"]), weights)
        fixture = make_fixture(args.reference, weights, manifest, "A", tc, CLASSES_A, batch=4)
    fixture["reference"]["commit"] = reference_commit(args.reference, "COMMIT")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "applenet_A.pt"
    print(f"{path} sha256 {save_fixture(fixture, path)}")


if __name__ == "__main__":
    main()
