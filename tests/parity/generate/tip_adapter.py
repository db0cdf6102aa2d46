"""Generate the Tip-Adapter parity fixtures from the reference repository's own code.

Usage (from the repository root, with a checkout of gaopengcuhk/Tip-Adapter @ d0e2d6f):

    OMP_NUM_THREADS=1 .venv/bin/python tests/parity/generate/tip_adapter.py /tmp/ref_tip --out tests/parity

The reference functions run unchanged: `utils.clip_classifier`, `utils.build_cache_model`,
`utils.pre_load_features`, `utils.search_hp`, `main.run_tip_adapter` and `main.run_tip_adapter_F`, on the
small parity CLIP built by the reference's own `clip.model.build_model`. Plumbing only: CUDA calls become
no-ops (CPU), a 1-element array reaches float() as numpy 1.x delivered it, the loaders are lists of one
fixed batch, `gdown` (imported by its dataset helpers, unused) is stubbed, and what the reference prints or
keeps in local variables is read through spies on `cls_acc`, `F.cross_entropy`, `search_hp` and a global
optimizer step pre-hook.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import json
import sys
import tempfile
import types
from pathlib import Path

import torch
from _common import (
    CLASSES_A,
    CLASSES_B,
    MANIFEST,
    ROOT,
    checksums,
    class_images,
    clip_state_dict,
    cuda_as_identity,
    fixture_header,
    plan_entry,
    reference_commit,
    save_fixture,
)
from torch.optim.optimizer import register_optimizer_step_pre_hook

DATA_SEED = 3_000_000
FILES = ["main.py", "utils.py", "configs/eurosat.yaml", "configs/imagenet.yaml", "datasets/eurosat.py",
         "datasets/imagenet.py", "clip/model.py", "clip/clip.py", "clip/simple_tokenizer.py"]  # fmt: skip


def load_reference(ref: Path):
    """Import the reference's `clip`, `utils`, `main` and template lists (CPU and numpy plumbing applied)."""
    sys.path.insert(0, str(ref))
    sys.modules.setdefault("gdown", types.ModuleType("gdown"))  # dataset download helper, never called
    cuda_as_identity()  # the reference moves everything to CUDA
    # `cls_acc` calls float() on a 1-element 1-D array, which numpy >= 2.? refuses (older numpy converted it,
    # with a deprecation warning): its one `.numpy()` call gets the 0-d array the old conversion read.
    to_numpy = torch.Tensor.numpy
    torch.Tensor.numpy = lambda self, **kw: to_numpy(self.reshape(()) if self.shape == (1,) else self, **kw)
    spec = importlib.util.spec_from_file_location("tip_main", ref / "main.py")
    main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(main)
    import clip  # the reference's own package (sys.path[0])
    import datasets.eurosat
    import datasets.imagenet
    import utils

    templates = {"eurosat": datasets.eurosat.template, "imagenet": datasets.imagenet.imagenet_templates}
    return clip, utils, main, templates


class Spy:
    """Records what the reference passes through `cls_acc`, `cross_entropy`, `search_hp` and optimizer steps."""

    def __init__(self, utils, main) -> None:
        self.acc_calls, self.losses, self.step_grads, self.step_weights, self.searches = [], [], [], [], []
        self.main, self.utils = main, utils
        real_acc, real_search, real_f = main.cls_acc, main.search_hp, main.F

        def cls_acc(output, target, topk=1):
            self.acc_calls.append(output.detach().clone())
            return real_acc(output, target, topk)

        def search_hp(*args, **kwargs):
            result = real_search(*args, **kwargs)
            self.searches.append(result)
            return result

        def cross_entropy(*args, **kwargs):
            loss = real_f.cross_entropy(*args, **kwargs)
            self.losses.append(loss.detach().clone())
            return loss

        proxy = types.SimpleNamespace(**{k: getattr(real_f, k) for k in dir(real_f) if not k.startswith("__")})
        proxy.cross_entropy = cross_entropy
        self.patches = {"cls_acc": cls_acc, "search_hp": search_hp, "F": proxy}
        self.originals = {"cls_acc": real_acc, "search_hp": real_search, "F": real_f}

    @contextlib.contextmanager
    def active(self):
        def pre_step(optimizer, args, kwargs):
            for group in optimizer.param_groups:
                for p in group["params"]:
                    self.step_weights.append(p.detach().clone())
                    self.step_grads.append(p.grad.detach().clone())

        for name, value in self.patches.items():
            setattr(self.main, name, value)
        handle = register_optimizer_step_pre_hook(pre_step)
        try:
            yield self
        finally:
            handle.remove()
            for name, value in self.originals.items():
                setattr(self.main, name, value)


def build(ref: Path, name: str, classes: list[str], config_file: str, template_key: str, finetune: bool) -> dict:
    clip, utils, main, templates = load_reference(ref)
    import yaml

    manifest = json.loads(MANIFEST.read_text())
    model = clip.model.build_model(clip_state_dict(manifest["keys"])).float().eval()  # PREC fp32 analogue
    torch.manual_seed(0)
    cfg = yaml.safe_load((ref / config_file).read_text())
    cache_dir = tempfile.mkdtemp(prefix="tip_cache_")
    cfg.update(cache_dir=cache_dir, augment_epoch=1, load_cache=False, load_pre_feat=False, train_epoch=2)
    n_cls, shots, val_shots = len(classes), 2, 2
    train_labels = [c for c in range(n_cls) for _ in range(shots)]
    val_labels = [c for c in range(n_cls) for _ in range(val_shots)]
    g = torch.Generator().manual_seed(DATA_SEED + 10)
    eval_labels = torch.randint(0, n_cls, (2 if n_cls == 5 else 3,), generator=g).tolist()
    # One set of class prototypes for every split: train, val and eval images of a class look alike.
    all_labels = train_labels + val_labels + eval_labels
    images = class_images(DATA_SEED, all_labels, n_cls, 0.6)
    n_tr, n_val = len(train_labels), len(val_labels)
    inputs = {
        "images": images[n_tr + n_val :].clone(),
        "labels": torch.tensor(eval_labels),
        "train_images": images[:n_tr].clone(),
        "train_labels": torch.tensor(train_labels),
        "val_images": images[n_tr : n_tr + n_val].clone(),
        "val_labels": torch.tensor(val_labels),
    }
    template = templates[template_key]
    with torch.no_grad():
        clip_weights = utils.clip_classifier(classes, template, model)
        loader = [(inputs["train_images"], inputs["train_labels"])]
        cache_keys, cache_values_half = utils.build_cache_model(cfg, model, loader)
        val_f, val_l = utils.pre_load_features(cfg, "val", model, [(inputs["val_images"], inputs["val_labels"])])
        test_f, test_l = utils.pre_load_features(cfg, "test", model, [(inputs["images"], inputs["labels"])])
    # The reference makes the one-hot values fp16 (its CUDA model is fp16); on an fp32 model the fp32 @ fp16
    # product fails on CPU, so they are cast to fp32 (0/1 values: exact).
    cache_values = cache_values_half.float()
    spy = Spy(utils, main)
    expected, param_plan, params, deviations = (
        {},
        [],
        {},
        ["cache_values (one-hot, fp16 in the reference) cast to fp32"],
    )
    if not finetune:
        with spy.active():
            main.run_tip_adapter(cfg, cache_keys, cache_values, val_f, val_l, test_f, test_l, clip_weights)
        best_beta, best_alpha = spy.searches[-1]
        expected["logits_eval"] = spy.acc_calls[-1]  # test logits after the validation search
        expected["search"] = {"beta": float(best_beta), "alpha": float(best_alpha)}
        expected["logits_eval_init"] = spy.acc_calls[1]  # validation logits at init_alpha/init_beta (reference print)
    else:
        train_loader_f = [(inputs["images"], inputs["labels"])]
        with spy.active():
            # The adapter's weight is a view of the keys passed in (the reference's AdamW then updates them in place).
            main.run_tip_adapter_F(
                cfg, cache_keys.clone(), cache_values, val_f, val_l, test_f, test_l, clip_weights, model, train_loader_f
            )
        per_epoch_test = spy.acc_calls[1::2][: cfg["train_epoch"]]  # train, test, train, test, ... then final
        accs = [float((logits.argmax(-1) == test_l).float().mean()) for logits in per_epoch_test]
        best_epoch = max(range(len(accs)), key=lambda e: (accs[e], -e))  # first strict maximum, as the reference
        trained = torch.load(Path(cache_dir) / f"best_F_{cfg['shots']}shots.pt", weights_only=False).detach().clone()
        best_beta, best_alpha = spy.searches[-1]
        expected["logits_eval"] = per_epoch_test[best_epoch]  # init alpha/beta, best adapter
        expected["logits_after_training"] = spy.acc_calls[-1]  # after the validation search
        expected["search"] = {"beta": float(best_beta), "alpha": float(best_alpha), "best_epoch": best_epoch}
        # Loss and gradient at the trained weights: the reference's own -F step, started from them.
        grad_spy = Spy(utils, main)
        with grad_spy.active(), contextlib.redirect_stdout(sys.stderr):
            cfg1 = {**cfg, "train_epoch": 1}
            main.run_tip_adapter_F(
                cfg1,
                trained.clone().t(),
                cache_values,
                val_f,
                val_l,
                test_f,
                test_l,
                clip_weights,
                model,
                train_loader_f,
            )
        assert torch.equal(grad_spy.step_weights[0], trained)
        expected["loss_train"] = grad_spy.losses[0]
        expected["logits_train"] = grad_spy.acc_calls[0]
        expected["grads"] = {"adapter.weight": grad_spy.step_grads[0]}
        expected["grad_checksums"] = {"adapter.weight": checksums(grad_spy.step_grads[0], bits=True)}
        params["adapter.weight"] = trained
        param_plan.append(
            plan_entry(
                "adapter.weight", trained.shape, torch.float32, trained, source="reference_trained", seed=None,
                mean=None, std=None,
            )
        )  # fmt: skip
    trainer_config = {**cfg, "template": list(template), "finetune": finetune, "PREC": "fp32"}
    trainer_config.pop("cache_dir")
    reference = {
        "repo": "gaopengcuhk/Tip-Adapter",
        "commit": reference_commit(ref) or "d0e2d6f8c5feb8b6ce937b757810761f7155d4d5",
        "files": FILES,
        "class": "main.py:run_tip_adapter_F" if finetune else "main.py:run_tip_adapter",
    }
    return {
        **fixture_header("tip_adapter", name, reference, manifest),
        "trainer_config": trainer_config,
        "classnames": classes,
        "inputs": inputs,
        "data_seed": DATA_SEED,
        "param_plan": param_plan,
        "params": params,
        "modes": {
            "logits": "100 * f @ clip_weights + alpha * exp(-(beta - beta * f @ keys)) @ values, f normalised",
            "loss": "-F only: F.cross_entropy on the training forward (adapter.train(); no dropout anywhere)",
            "cache": "build_cache_model with augment_epoch 1 over one batch of train_images (shuffle off)",
            "search": "search_hp on val_images' normalised features (grid of search_scale/search_step)",
        },
        "expected": expected,
        "variants": {},
        "fixture_deviations": deviations,
        "quirks": [
            "CLIP logits use the constant 100., not exp(logit_scale).",
            "Cache keys: unnormalised features averaged over augment_epoch passes, then L2-normalised.",
            "clip_weights: per class, normalised features of every template, mean, normalised again.",
            "search_hp grid: beta_i = i*(scale_b-0.1)/step_b + 0.1 for i < step_b (the scale itself is never "
            "tried); beta outer, alpha inner; strictly better accuracy replaces; starts at (0, 0).",
            "-F: adapter = Linear(D, N, bias=False) with weight = cache keys; trained with alpha/beta at their "
            "initial values; AdamW(lr, eps=1e-4, weight_decay 0.01 default), CosineAnnealingLR per iteration.",
            "-F: the adapter of the epoch with the best TEST accuracy is reloaded (leakage), then alpha/beta are "
            "searched on val; the printed final accuracy is max(best test accuracy, accuracy after search).",
            "search_hp with search_hp False returns unbound names (UnboundLocalError).",
        ],
        "construction_log": f"train_epoch {cfg['train_epoch']}, augment_epoch 1, shots {shots}, val shots {val_shots}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path, help="checkout of gaopengcuhk/Tip-Adapter")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "parity")
    args = parser.parse_args()
    cases = [
        ("tip_adapter_A", "A", CLASSES_A, "configs/eurosat.yaml", "eurosat", False),
        ("tip_adapter_B", "B", CLASSES_B, "configs/imagenet.yaml", "imagenet", False),
        ("tip_adapter_F_A", "F_A", CLASSES_A, "configs/eurosat.yaml", "eurosat", True),
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    for stem, name, classes, config, templates, finetune in cases:
        with contextlib.redirect_stdout(sys.stderr):
            fixture = build(args.reference, name, classes, config, templates, finetune)
        path = args.out / f"{stem}.pt"
        digest = save_fixture(copy.deepcopy(fixture), path)
        print(json.dumps({"file": path.name, "sha256": digest, "search": fixture["expected"]["search"]}))


if __name__ == "__main__":
    main()
