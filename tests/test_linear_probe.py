"""Linear probe: scikit-learn's decision function as logits, the reference's C search, its limits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import REPO_PARITY

import methods.linear_probe as lp
from benchmark.core.method import Batch
from benchmark.core.parity import build_clip, load_fixture
from benchmark.core.train import TrainConfig
from benchmark.data.batch import TensorSource
from methods.linear_probe import LinearProbe, LinearProbeConfig
from methods.zeroshot import ZeroShotCLIP, ZeroShotConfig

CLASSES = ["forest", "river", "beach"]


def _data(clip, labels: list[int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    protos = torch.randn(3, 3, clip.image_size, clip.image_size, generator=torch.Generator().manual_seed(99))
    y = torch.tensor(labels)
    return protos[y] + torch.randn(len(y), 3, clip.image_size, clip.image_size, generator=g), y


def test_logits_are_the_decision_function_of_unnormalised_features(tiny_clip):
    from sklearn.linear_model import LogisticRegression

    images, labels = _data(tiny_clip, [0, 1, 2] * 4, 1)
    method = LinearProbe(tiny_clip, LinearProbeConfig(), CLASSES)
    source = TensorSource(images, labels)
    tags = method.prepare_training(source, None, TrainConfig(), seed=0)
    assert tags == {"lp_c": "1.0", "lp_c_source": "default"}  # no validation shots: scikit-learn's default C
    # The same float64 features (L-BFGS at tol 1e-4 can stop an iteration apart on features 1e-7 away).
    features, _ = method._features(source)
    assert np.array_equal(features, tiny_clip.encode_image(images, pooled_only=True, fused=True).pooled.double())
    clf = LogisticRegression(solver="lbfgs", max_iter=1000, C=1.0).fit(features, labels.numpy())
    with method.evaluating():
        logits = method(Batch(images=images))
    expected = torch.as_tensor(clf.decision_function(features), dtype=torch.float32)
    assert torch.allclose(logits, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))


def test_two_classes_score_zero_and_the_decision(tiny_clip):
    images, labels = _data(tiny_clip, [0, 1] * 4, 2)
    method = LinearProbe(tiny_clip, LinearProbeConfig(), CLASSES[:2])
    method.prepare_training(TensorSource(images, labels), None, TrainConfig(), seed=0)
    with method.evaluating():
        logits = method(Batch(images=images))
    assert logits.shape == (8, 2) and torch.equal(logits[:, 0], torch.zeros(8))


def test_unfitted_probe_ranks_classes_as_zero_shot(tiny_clip):
    images, _ = _data(tiny_clip, [0, 1, 2, 0], 3)
    probe = LinearProbe(tiny_clip, LinearProbeConfig(), CLASSES)
    zero_shot = ZeroShotCLIP(tiny_clip, ZeroShotConfig(), CLASSES)
    with torch.no_grad():
        assert torch.equal(probe(Batch(images=images)).argmax(-1), zero_shot(Batch(images=images)).argmax(-1))


def test_fitted_probe_cannot_score_other_classes(tiny_clip):
    images, labels = _data(tiny_clip, [0, 1, 2] * 2, 4)
    method = LinearProbe(tiny_clip, LinearProbeConfig(), CLASSES)
    method.prepare_training(TensorSource(images, labels), None, TrainConfig(), seed=0)
    assert LinearProbe.config_transfer_error(method.cfg)
    method.set_classnames(CLASSES)
    with pytest.raises(ValueError, match="training classes"):
        method.set_classnames(["a", "b", "c"])
    assert not any(p.requires_grad for p in method.parameters())


def test_c_search_follows_the_reference_path(monkeypatch):
    """The fixture records every C the reference script fitted in its run; ours fits the same ones in order."""
    fixture = load_fixture(REPO_PARITY / "linear_probe_A.pt")
    cfg = LinearProbe.from_reference(fixture["trainer_config"])
    method = LinearProbe(build_clip(fixture["clip_weights"]["manifest"]), cfg, fixture["classnames"])
    fitted: list[float] = []
    real_fit = lp._fit

    def recording_fit(features: np.ndarray, labels: np.ndarray, c: float, max_iter: int):
        fitted.append(c)
        return real_fit(features, labels, c, max_iter)

    monkeypatch.setattr(lp, "_fit", recording_fit)
    inputs = fixture["inputs"]
    tags = method.prepare_training(
        TensorSource(inputs["train_images"], inputs["train_labels"]),
        TensorSource(inputs["val_images"], inputs["val_labels"]),
        TrainConfig(),
        seed=0,
    )
    expected = fixture["expected"]["search"]
    assert fitted == expected["c_path"]
    assert method.chosen_c == expected["c"] and tags["lp_c"] == repr(expected["c"])
