"""Linear-probe CLIP: logistic regression on frozen image features (CLIP, ICML 2021, App. A.3).

The few-shot baseline of CoOp (Zhou et al., IJCV 2022, Fig. 3), as its `lpclip/` scripts run it.

The classifier is fitted by scikit-learn's L-BFGS multinomial logistic regression on the *unnormalised*
projected image features of the training shots, under the test transform (no augmentation), and its
inverse regularisation C is chosen on the validation shots. Nothing is trained by gradient steps in the
shared loop: `prepare_training` fits everything, and the logits are `features @ coef.T + intercept`
(scikit-learn's `decision_function`).

Checked against KaiyangZhou/CoOp `lpclip/linear_probe.py` and `lpclip/feat_extractor.py` @ ff61507
(parity fixture linear_probe_A: the reference script itself, run on features of the parity CLIP):
* solver lbfgs, max_iter 1000, L2 penalty, scikit-learn's other defaults (tol 1e-4, intercept fitted);
* C search: accuracy on the validation shots for C in (1e6, 1e4, 1e2, 1, 1e-2, 1e-4, 1e-6); the first best
  C_p gives the range [C_p / 10, 10 C_p]; then `num_step` = 8 rounds: fit both ends, keep the better
  (the left one on a tie), and halve the range in log10 towards it. The classifier kept is the last round's
  winner (C_p itself is never the final model).
The probe has one row per training class, so it cannot score other classes.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from benchmark.backbone import FrozenClip
from benchmark.core.method import Batch, Preset, PromptMethod, Requirements, normalize
from benchmark.core.train import BatchSource, TrainConfig
from benchmark.data.transforms import TEST_VIEW
from benchmark.registry import METHODS

log = logging.getLogger(__name__)

_CHUNK = 256


@dataclass(frozen=True)
class LinearProbeConfig:
    """The options of `lpclip/linear_probe.py`.

    Attributes:
        c_grid: inverse regularisation strengths tried first on the validation shots (its `search_list`).
        search_steps: rounds of the log-scale bisection after the grid (`--num_step`, 8 in linear_probe.sh).
        default_c: C when the draw has no validation shots (scikit-learn's default; the reference always
            searches, so this is ours, and the run is tagged).
        max_iter: L-BFGS iterations.
        init_template: the unfitted probe's rows are the normalised text features of this prompt (ours: the
            reference never predicts before fitting), so it then predicts what zero-shot CLIP predicts.
    """

    c_grid: tuple[float, ...] = (1e6, 1e4, 1e2, 1.0, 1e-2, 1e-4, 1e-6)
    search_steps: int = 8
    default_c: float = 1.0
    max_iter: int = 1000
    init_template: str = "a photo of a {}."

    def __post_init__(self) -> None:
        if not self.c_grid or min(self.c_grid) <= 0 or self.search_steps < 0 or self.default_c <= 0:
            raise ValueError("linear probe needs a non-empty positive c_grid, search_steps >= 0 and default_c > 0")


_SOURCE = "CoOp IJCV'22 linear-probe baseline, lpclip/linear_probe.py + linear_probe.sh (num_step 8)"
PRESETS = {
    # The reference extracts features with CLIP in fp16 on CUDA (clip.load(..., "cuda")).
    "paper": Preset(LinearProbeConfig(), TrainConfig(epochs=1, precision="fp16"), _SOURCE),
    "world": Preset(
        LinearProbeConfig(),
        TrainConfig(epochs=1),
        _SOURCE + "; schedule: none to choose (a closed fit on un-augmented features; C is searched on the validation "
        "shots inside every run)",
    ),
}


def _fit(features: np.ndarray, labels: np.ndarray, c: float, max_iter: int):
    """One reference fit: multinomial L-BFGS logistic regression with an L2 penalty of strength 1/C."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf = LogisticRegression(solver="lbfgs", max_iter=max_iter, C=c).fit(features, labels)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        log.debug("linear probe: L-BFGS stopped at max_iter=%d for C=%g (as the reference would)", max_iter, c)
    return clf


def _hits(clf, features: np.ndarray, labels: np.ndarray) -> int:
    return int((clf.predict(features) == labels).sum())


@METHODS.register("linear_probe")
class LinearProbe(PromptMethod):
    """Logistic regression on frozen, unnormalised CLIP image features; C chosen on validation shots."""

    config_cls = LinearProbeConfig
    presets = PRESETS
    default_presets = {"paper": "paper", "world": "world"}
    requirements = Requirements(gradient_training=False)

    def __init__(self, clip: FrozenClip, cfg: LinearProbeConfig, classnames: Sequence[str]) -> None:
        super().__init__(clip, cfg, classnames)
        # Until `prepare_training` the rows are zero-shot text directions: |f| * cos(f, t_c) ranks classes as
        # zero-shot CLIP does, so an unfitted probe gives meaningful logits.
        self.register_buffer("weight", torch.zeros(len(classnames), clip.embed_dim, device=clip.device))
        self.register_buffer("bias", torch.zeros(len(classnames), device=clip.device))
        self.fitted_classes: tuple[str, ...] | None = None
        self.chosen_c: float | None = None
        self.set_classnames(classnames)

    def fitted_parameter_count(self) -> int:
        """The logistic regression's weights and biases (fitted without gradients)."""
        return self.weight.numel() + self.bias.numel()

    @classmethod
    def from_reference(cls, trainer_config: dict, variant: str | None = None) -> LinearProbeConfig:
        """Our config for the reference script's settings (parity fixtures)."""
        if variant is not None:
            raise ValueError(f"linear probe has no variant {variant!r}")
        return LinearProbeConfig(
            c_grid=tuple(float(c) for c in trainer_config["search_list"]),
            search_steps=int(trainer_config["num_step"]),
            max_iter=int(trainer_config["max_iter"]),
        )

    @classmethod
    def config_transfer_error(cls, cfg: LinearProbeConfig) -> str | None:
        """One weight row per training class."""
        return "a linear probe has weights only for its training classes"

    def set_classnames(self, classnames: Sequence[str]) -> None:
        """A fitted probe scores only its own classes; an unfitted one takes the classes' text directions."""
        if self.fitted_classes is not None and tuple(classnames) != self.fitted_classes:
            raise ValueError(self.config_transfer_error(self.cfg))
        if self.fitted_classes is None:
            texts = [self.cfg.init_template.format(name.replace("_", " ")) for name in classnames]
            with torch.no_grad():
                text = normalize(self.clip.encode_text(texts, fused=self.fast.fused_blocks))
            self.weight = text.to(self.weight.dtype)
            self.bias = self.bias.new_zeros(len(classnames))
        self.classnames = tuple(classnames)

    def forward(self, batch: Batch) -> Tensor:
        """Logits [B, C] = features @ coef.T + intercept (scikit-learn's decision function), in fp32."""
        features = self.image_features(batch).pooled.float()
        return features @ self.weight.float().t() + self.bias.float()

    def _features(self, source: BatchSource) -> tuple[np.ndarray, np.ndarray]:
        """Unnormalised features [N, D] (float64, as the reference's saved lists) and labels [N]."""
        source.prepare([TEST_VIEW])
        feats, labels = [], []
        with torch.no_grad():
            for start in range(0, len(source), _CHUNK):
                batch = source.batch(range(start, min(start + _CHUNK, len(source))), TEST_VIEW)
                feats.append(self.image_features(batch).pooled.double().cpu())
                labels.append(batch.labels.cpu())
        return torch.cat(feats).numpy(), torch.cat(labels).numpy()

    def prepare_training(self, train: BatchSource, val: BatchSource | None, cfg: TrainConfig, *, seed: int) -> dict:
        """Fit the probe on the training shots, C searched on the validation shots."""
        x_train, y_train = self._features(train)
        n_cls = len(self.classnames)
        if sorted(set(y_train.tolist())) != list(range(n_cls)):
            raise ValueError(f"the linear probe needs training shots of all {n_cls} classes")
        if val is None or len(val) == 0:
            clf, c, source = (
                _fit(x_train, y_train, self.cfg.default_c, self.cfg.max_iter),
                self.cfg.default_c,
                "default",
            )
        else:
            x_val, y_val = self._features(val)
            clf, c = self.search(x_train, y_train, x_val, y_val)
            source = "validation shots"
        coef, intercept = np.asarray(clf.coef_), np.asarray(clf.intercept_)
        if n_cls == 2:  # scikit-learn keeps one row (class 1 against class 0): softmax([0, d]) = sigmoid(d)
            coef, intercept = np.concatenate([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
        dtype, device = self.weight.dtype, self.weight.device
        self.weight = torch.as_tensor(coef, dtype=torch.float32).to(device, dtype)
        self.bias = torch.as_tensor(intercept, dtype=torch.float32).to(device, dtype)
        self.fitted_classes, self.chosen_c = self.classnames, c
        return {"lp_c": repr(c), "lp_c_source": source}

    def search(self, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray):
        """The reference's C search on the validation shots; returns (classifier, C)."""

        def fit(c: float):
            return _fit(x_train, y_train, c, self.cfg.max_iter)

        grid_fits = [fit(c) for c in self.cfg.c_grid]
        grid_hits = [_hits(clf, x_val, y_val) for clf in grid_fits]
        peak = int(np.argmax(grid_hits))  # the first best, as np.argmax
        if self.cfg.search_steps == 0:
            return grid_fits[peak], self.cfg.c_grid[peak]
        c_peak = self.cfg.c_grid[peak]
        left, right = 1e-1 * c_peak, 1e1 * c_peak
        for _ in range(self.cfg.search_steps):
            clf_left, clf_right = fit(left), fit(right)
            if _hits(clf_left, x_val, y_val) < _hits(clf_right, x_val, y_val):
                clf, c = clf_right, right
                left, right = 0.5 * (np.log10(right) + np.log10(left)), np.log10(right)
            else:
                clf, c = clf_left, left
                left, right = np.log10(left), 0.5 * (np.log10(right) + np.log10(left))
            left, right = np.power(10, left), np.power(10, right)
        return clf, float(c)
