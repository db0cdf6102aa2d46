"""Generate the linear-probe parity fixture by running the reference script itself.

Usage (from the repository root, with a checkout of KaiyangZhou/CoOp @ ff61507):

    OMP_NUM_THREADS=1 .venv/bin/python tests/parity/generate/linear_probe.py /tmp/ref_coop --out tests/parity

`lpclip/linear_probe.py` is a command-line script with module-level code (no importable function), so it
runs unchanged through `runpy` on feature files in its own format (`<feature_dir>/<dataset>/{train,val,
test}.npz` with `feature_list`, `label_list`). The features are what `lpclip/feat_extractor.py` computes,
`clip_model.visual(images)` saved through `.tolist()`, here with the reference's own `clip` package on the
small parity CLIP (fp32; its dassl data pipeline is replaced by fixed normalised tensors). The script
samples its shots with `np.random.seed(seed)`; the train and val files hold exactly 16 and 4 images per
class, so its 16-shot run uses all of them. A subclass of scikit-learn's `LogisticRegression` records every
fit and prediction (plumbing: it changes nothing); the expected logits are the `decision_function` of the
classifier the script finally tests in its 16-shot run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import runpy
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from _common import (
    CLASSES_A,
    MANIFEST,
    ROOT,
    class_images,
    clip_state_dict,
    fixture_header,
    reference_commit,
    save_fixture,
)

DATA_SEED = 3_000_100
SHOTS, VAL_SHOTS, NUM_STEP = 16, 4, 8
FILES = ["lpclip/linear_probe.py", "lpclip/linear_probe.sh", "lpclip/feat_extractor.py", "clip/model.py"]


def recording_logistic_regression(log: list):
    """scikit-learn's class with every fit and predict appended to `log` (same arguments, same results)."""
    from sklearn.linear_model import LogisticRegression

    class Recorded(LogisticRegression):
        def fit(self, X, y, *args, **kwargs):
            out = super().fit(X, y, *args, **kwargs)
            log.append(("fit", self, np.array(X), np.array(y)))
            return out

        def predict(self, X):
            pred = super().predict(X)
            log.append(("predict", self, np.array(X), pred))
            return pred

    Recorded.__name__ = Recorded.__qualname__ = "LogisticRegression"
    return Recorded


def rows_of(subset: np.ndarray, full: np.ndarray) -> list[int]:
    """Index in `full` of each row of `subset` (exact equality)."""
    return [int(np.flatnonzero((full == row).all(axis=1))[0]) for row in subset]


def refit_spread(x_train: np.ndarray, y: np.ndarray, final, test_x: np.ndarray, logits: np.ndarray) -> float:
    """Largest scaled change of the final logits when its fit is redone on features moved by 1e-6 (relative).

    L-BFGS stops at tol 1e-4, so a feature difference of the size between two CLIP implementations can move
    its stopping iteration; a fixture is only useful where it does not (checked, not part of the reference).
    """
    from sklearn.linear_model import LogisticRegression

    rng, worst = np.random.default_rng(0), 0.0
    for _ in range(5):
        moved = x_train * (1 + 1e-6 * rng.standard_normal(x_train.shape))
        clf = LogisticRegression(solver=final.solver, max_iter=final.max_iter, C=final.C).fit(moved, y)
        worst = max(worst, float(np.abs(clf.decision_function(test_x) - logits).max() / np.abs(logits).max()))
    return worst


def build(ref: Path, noise: float) -> dict:
    import sklearn.linear_model

    sys.path.insert(0, str(ref))
    import clip  # the reference's own package

    manifest = json.loads(MANIFEST.read_text())
    model = clip.model.build_model(clip_state_dict(manifest["keys"])).float().eval()
    n_cls = len(CLASSES_A)
    train_labels = [c for c in range(n_cls) for _ in range(SHOTS)]
    val_labels = [c for c in range(n_cls) for _ in range(VAL_SHOTS)]
    eval_labels = torch.randint(0, n_cls, (2,), generator=torch.Generator().manual_seed(DATA_SEED + 10)).tolist()
    images = class_images(DATA_SEED, train_labels + val_labels + eval_labels, n_cls, noise)
    n_tr, n_val = len(train_labels), len(val_labels)
    splits = {
        "train": (images[:n_tr], train_labels),
        "val": (images[n_tr : n_tr + n_val], val_labels),
        "test": (images[n_tr + n_val :], eval_labels),
    }
    work = Path(tempfile.mkdtemp(prefix="lpclip_"))
    feature_dir = work / "clip_feat"
    (feature_dir / "parity").mkdir(parents=True)
    with torch.no_grad():
        for split, (x, labels) in splits.items():
            feature = model.visual(x)  # feat_extractor.py: clip_model.visual(data), then .tolist()
            feature_list = [feature[i].tolist() for i in range(len(x))]
            np.savez(feature_dir / "parity" / split, feature_list=feature_list, label_list=labels)
    log: list = []
    original = sklearn.linear_model.LogisticRegression
    sklearn.linear_model.LogisticRegression = recording_logistic_regression(log)
    argv = ["linear_probe.py", "--dataset", "parity", "--feature_dir", feature_dir.name, "--num_step", str(NUM_STEP),
            "--num_run", "1"]  # fmt: skip
    old_argv, old_cwd = sys.argv, os.getcwd()
    try:
        sys.argv = argv
        os.chdir(work)  # the script writes report/ into the working directory
        with contextlib.redirect_stdout(sys.stderr):
            runpy.run_path(str(ref / "lpclip" / "linear_probe.py"), run_name="__main__")
    finally:
        sys.argv, sys.path[:] = old_argv, [p for p in sys.path if p != str(ref)]
        os.chdir(old_cwd)
        sklearn.linear_model.LogisticRegression = original
    data = {s: np.load(feature_dir / "parity" / f"{s}.npz") for s in splits}
    test_x = data["test"]["feature_list"]
    fits_per_run = len([e for e in log if e[0] == "fit"]) // 5  # shots 1, 2, 4, 8, 16, one seed each
    last_run = [e for e in log if e[0] == "fit"][-fits_per_run:]  # the 16-shot run
    final = [e for e in log if e[0] == "predict" and e[2].shape == test_x.shape][-1][1]
    search_list = [e[1].C for e in last_run[: fits_per_run - 2 * NUM_STEP]]
    train_order = rows_of(last_run[0][2], data["train"]["feature_list"])
    val_x = [e[2] for e in log if e[0] == "predict" and e[1] is last_run[0][1]][0]
    val_order = rows_of(val_x, data["val"]["feature_list"])
    logits = final.decision_function(test_x)
    _, _, final_x, final_y = next(e for e in log if e[0] == "fit" and e[1] is final)
    stability = refit_spread(final_x, final_y, final, test_x, logits)
    if stability > 1e-5:
        raise SystemExit(f"the final fit moves by {stability:.1e} under 1e-6 feature noise: choose other --noise")
    inputs = {
        "images": splits["test"][0].clone(),
        "labels": torch.tensor(eval_labels),
        "train_images": splits["train"][0][train_order].clone(),
        "train_labels": torch.tensor(data["train"]["label_list"][train_order]),
        "val_images": splits["val"][0][val_order].clone(),
        "val_labels": torch.tensor(data["val"]["label_list"][val_order]),
    }
    import sklearn

    reference = {
        "repo": "KaiyangZhou/CoOp",
        "commit": reference_commit(ref) or "ff61507c790454bce7c5052c3ac39e60772f1f89",
        "files": FILES,
        "class": "lpclip/linear_probe.py (script, run through runpy)",
    }
    return {
        **fixture_header("linear_probe", "A", reference, manifest, sklearn_version=sklearn.__version__),
        "trainer_config": {
            "search_list": search_list,
            "num_step": NUM_STEP,
            "num_run": 1,
            "num_shot": SHOTS,
            "val_num_shot": VAL_SHOTS,
            "max_iter": int(final.max_iter),
            "solver": str(final.solver),
            "feature": "clip_model.visual(images), unnormalised, fp32 model",
        },
        "classnames": CLASSES_A,
        "inputs": inputs,
        "data_seed": DATA_SEED,
        "param_plan": [],
        "params": {},
        "modes": {
            "logits": "final_classifier.decision_function(test features) = X @ coef_.T + intercept_",
            "fit": "LogisticRegression(solver='lbfgs', max_iter=1000, penalty='l2', C=c) on float64 features",
        },
        "expected": {
            "logits_eval": torch.tensor(logits, dtype=torch.float32),
            "logits_eval_float64": torch.tensor(logits, dtype=torch.float64),
            "search": {"c": float(final.C), "c_path": [float(e[1].C) for e in last_run]},
        },
        "variants": {},
        "fixture_deviations": [],
        "quirks": [
            "Features are not normalised; train features use the test transform (no augmentation).",
            "C search: first argmax of the validation accuracy over search_list, range [C/10, 10C], then num_step "
            "rounds: left wins ties; the range halves in log10 towards the winner; the final classifier is the last "
            "round's winner, never the grid peak itself.",
            "Validation shots: {1: 1, 2: 2, 4: 4, 8: 4, 16: 4} per class.",
        ],
        "construction_log": f"noise {noise}; final refit under 1e-6 feature noise moves {stability:.1e} (scaled)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path, help="checkout of KaiyangZhou/CoOp")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "parity")
    parser.add_argument("--noise", type=float, default=8.0, help="pixel noise around the class prototypes")
    args = parser.parse_args()
    fixture = build(args.reference, args.noise)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "linear_probe_A.pt"
    digest = save_fixture(fixture, path)
    print(json.dumps({"file": path.name, "sha256": digest, "search": fixture["expected"]["search"]}))


if __name__ == "__main__":
    main()
