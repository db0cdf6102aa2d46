"""Tip-Adapter: the cache, the blend, the alpha/beta search and what -F changes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import REPO_PARITY

from benchmark.backbone import ImageFeatures
from benchmark.core.method import Batch, normalize
from benchmark.core.parity import build_clip, load_fixture
from benchmark.core.train import TrainConfig, view_for_epoch
from benchmark.data.batch import TensorSource
from methods.tip_adapter import TipAdapter, TipAdapterConfig

CLASSES = ["forest", "river", "beach"]


class ViewSource:
    """A source whose features differ per augmented view (TensorSource has one view)."""

    def __init__(self, per_view: dict[int, torch.Tensor], labels: torch.Tensor) -> None:
        self.per_view, self.labels = per_view, labels

    def __len__(self) -> int:
        return len(self.labels)

    def prepare(self, views) -> None:
        assert set(views) <= set(self.per_view)

    def batch(self, indices, view: int) -> Batch:
        index = list(indices)
        return Batch(labels=self.labels[index], features=ImageFeatures(self.per_view[view][index]))


def _data(clip, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, clip.image_size, clip.image_size, generator=g), torch.arange(n) % len(CLASSES)


def test_cache_keys_average_unnormalised_views_then_normalise(tiny_clip):
    cfg, seed = TrainConfig(), 3
    method = TipAdapter(tiny_clip, TipAdapterConfig(augment_epoch=2), CLASSES)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, tiny_clip.embed_dim, generator=g)
    b = 5.0 * torch.randn(6, tiny_clip.embed_dim, generator=g)  # a larger norm weighs more before normalising
    views = {view_for_epoch(cfg, 0, seed): a, view_for_epoch(cfg, 1, seed): b}
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    method.prepare_training(ViewSource(views, labels), None, cfg, seed=seed)
    assert torch.allclose(method.cache_keys, normalize((a + b) / 2), atol=1e-6)
    assert not torch.allclose(method.cache_keys, normalize(normalize(a) + normalize(b)), atol=1e-3)
    assert torch.equal(method.cache_values, F.one_hot(labels, 3).float())


def test_logits_are_100_times_the_cosines_plus_alpha_times_the_cache(tiny_clip):
    images, labels = _data(tiny_clip, 6, 1)
    method = TipAdapter(tiny_clip, TipAdapterConfig(search=False, augment_epoch=1), CLASSES)
    zero_shot = method(Batch(images=images))
    method.prepare_training(TensorSource(images, labels), None, TrainConfig(), seed=0)
    with method.evaluating():
        logits = method(Batch(images=images))
    f = normalize(tiny_clip.encode_image(images).pooled)
    keys = f  # the cache holds the same images (one un-augmented view: TensorSource)
    text = method.text_weights()
    expected = 100 * f @ text.t() + 2.0 * torch.exp(-1.0 * (1 - f @ keys.t())) @ F.one_hot(labels, 3).float()
    assert torch.allclose(zero_shot, 100 * f @ text.t(), rtol=1e-5, atol=1e-4)  # no cache yet: zero-shot
    assert torch.allclose(logits, expected, rtol=1e-5, atol=1e-4)
    assert (method.alpha, method.beta) == (2.0, 1.0)  # init values without a search


def test_search_keeps_the_first_best_and_starts_from_zero(tiny_clip):
    method = TipAdapter(tiny_clip, TipAdapterConfig(search_scale=(1.1, 1.1), search_step=(2, 2)), ["a", "b"])
    e = torch.eye(tiny_clip.embed_dim)
    method._fixed_text = e[:2]  # class 0 along e0, class 1 along e1
    method.cache_keys = torch.nn.Parameter(e[:1], requires_grad=False)  # one entry along e0, labelled 1
    method.cache_values = torch.tensor([[0.0, 1.0]])
    image = e[:1]  # clip logits (100, 0), cache logits (0, alpha <= 0.6): always class 0
    assert method.search_alpha_beta(image, torch.tensor([0])) == (0.1, 0.1)  # every cell ties: the first
    assert method.search_alpha_beta(image, torch.tensor([1])) == (0.0, 0.0)  # never better than 0 hits


def test_grid_stops_below_its_scale():
    cfg = TipAdapterConfig()
    (beta_max, _), (n_beta, _) = cfg.search_scale, cfg.search_step
    betas = [i * (beta_max - 0.1) / n_beta + 0.1 for i in range(n_beta)]
    assert betas[0] == 0.1 and betas[-1] < beta_max - 0.05


def test_only_finetune_trains_and_it_searches_after_training(tiny_clip):
    images, labels = _data(tiny_clip, 9, 2)
    train, val = TensorSource(images[:6], labels[:6]), TensorSource(images[6:], labels[6:])
    assert not TipAdapter.config_requirements(TipAdapterConfig()).gradient_training
    assert TipAdapter.config_requirements(TipAdapterConfig(finetune=True)).gradient_training
    free = TipAdapter(tiny_clip, TipAdapterConfig(augment_epoch=1), CLASSES)
    tags = free.prepare_training(train, val, TrainConfig(), seed=0)
    assert tags["tip_search"] == "validation shots" and not free.cache_keys.requires_grad
    assert free.learned_state() == {}

    tuned = TipAdapter(tiny_clip, TipAdapterConfig(augment_epoch=1, finetune=True), CLASSES)
    tuned.prepare_training(train, val, TrainConfig(), seed=0)
    assert (tuned.alpha, tuned.beta) == (2.0, 1.0)  # trained at the initial values
    batch = Batch(labels=labels[:6], images=images[:6])
    tuned.train()
    loss = tuned.loss(tuned(batch), batch.labels)
    loss.backward()
    with torch.no_grad():
        tuned.cache_keys -= 0.05 * tuned.cache_keys.grad / tuned.cache_keys.grad.norm()
    assert float(tuned.loss(tuned(batch), batch.labels).detach()) < float(loss.detach())
    tags = tuned.after_training(train, val, TrainConfig(), seed=0)
    assert tags["tip_search"] == "validation shots"
    assert (tuned.alpha, tuned.beta) == (float(tags["tip_alpha"]), float(tags["tip_beta"]))


def test_the_cache_cannot_score_other_classes(tiny_clip):
    images, labels = _data(tiny_clip, 6, 3)
    method = TipAdapter(tiny_clip, TipAdapterConfig(augment_epoch=1), CLASSES)
    method.set_classnames(["a", "b"])  # unfitted: zero-shot CLIP, any classes
    method.set_classnames(CLASSES)
    method.prepare_training(TensorSource(images, labels), None, TrainConfig(), seed=0)
    assert TipAdapter.config_transfer_error(method.cfg)
    method.set_classnames(CLASSES)
    with pytest.raises(ValueError, match="training classes"):
        method.set_classnames(["a", "b", "c"])


@pytest.mark.parametrize("stem", ["tip_adapter_A", "tip_adapter_F_A"])
def test_search_lands_on_the_references_grid_point(stem):
    fixture = load_fixture(REPO_PARITY / f"{stem}.pt")
    cfg = TipAdapter.from_reference(fixture["trainer_config"])
    method = TipAdapter(build_clip(fixture["clip_weights"]["manifest"]), cfg, fixture["classnames"])
    inputs = fixture["inputs"]
    train = TensorSource(inputs["train_images"], inputs["train_labels"])
    val = TensorSource(inputs["val_images"], inputs["val_labels"])
    method.prepare_training(train, val, TrainConfig(), seed=0)
    if cfg.finetune:
        with torch.no_grad():
            method.cache_keys.copy_(fixture["params"]["adapter.weight"])
        method.after_training(train, val, TrainConfig(), seed=0)
    expected = fixture["expected"]["search"]
    assert (method.beta, method.alpha) == (expected["beta"], expected["alpha"])
