import math

import pytest
import torch
from torch import nn

from benchmark.core.train import TrainConfig, dassl_lr, fit, steps_per_epoch, view_for_epoch
from benchmark.data.transforms import VIEWS_PER_SEED, training_view
from benchmark.errors import RunFailure

# methods/REFERENCES.md §1, per-epoch learning rates of Dassl's constant warm-up + cosine
TABLE = {
    (0.002, 10): [1e-5, 0.002, 0.0019511, 0.0018090, 0.0015878, 0.0013090, 0.001, 0.00069098, 0.00041221, 0.00019098],
    (0.009, 10): [1e-5, 0.009, 0.0087798, 0.0081406, 0.0071450, 0.0058906, 0.0045, 0.0031094, 0.0018550, 0.00085942],
    (0.0035, 5): [1e-5, 0.0035, 0.0031658, 0.0022908, 0.0012092],
    (0.0026, 2): [1e-5, 0.0026],
}


@pytest.mark.parametrize("key", TABLE)
def test_lr_schedule_matches_dassl(key):
    lr, epochs = key
    cfg = TrainConfig(lr=lr, epochs=epochs)
    got = [dassl_lr(cfg, e) for e in range(epochs)]
    assert got == pytest.approx(TABLE[key], rel=5e-5)


def test_schedule_equals_torch_schedulers_stepped_like_dassl():
    """Cross-check with torch's CosineAnnealingLR driven the way Dassl's warm-up wrapper drives it."""
    cfg = TrainConfig(lr=0.002, epochs=7)
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    lrs = [cfg.warmup_lr, cfg.lr]
    for _ in range(cfg.epochs - 2):
        opt.step()  # an epoch's updates come before the scheduler step, as in Dassl
        cosine.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert [dassl_lr(cfg, e) for e in range(cfg.epochs)] == pytest.approx(lrs, rel=1e-9)


def test_steps_and_views():
    assert steps_per_epoch(304, 4) == 76 and steps_per_epoch(30, 32) == 1 and steps_per_epoch(65, 32) == 2
    assert [view_for_epoch(TrainConfig(aug_views=3), e) for e in range(5)] == [0, 1, 2, 0, 1]
    assert [view_for_epoch(TrainConfig(), e) for e in range(3)] == [0, 1, 2]
    # a run seed redraws every view, as re-seeding torch's RNG does in the references
    seed_2 = [view_for_epoch(TrainConfig(aug_views=3), e, seed=2) for e in range(4)]
    assert seed_2 == [2 * VIEWS_PER_SEED, 2 * VIEWS_PER_SEED + 1, 2 * VIEWS_PER_SEED + 2, 2 * VIEWS_PER_SEED]


class _Source:
    def __init__(self, n=8):
        self.x = torch.randn(n, 3)
        self.y = torch.arange(n) % 2
        self.prepared = []

    def __len__(self):
        return len(self.x)

    def prepare(self, views):
        self.prepared = list(views)

    def batch(self, indices, view):
        from benchmark.core.method import Batch

        return Batch(labels=self.y[indices], images=self.x[indices])


class _Linear(nn.Module):
    def __init__(self, scale=1.0):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(3, 2))
        self.scale = scale

    def forward(self, batch):
        return batch.images @ self.w * self.scale

    def loss(self, logits, labels):
        return nn.functional.cross_entropy(logits, labels)


def test_fit_uses_sgd_with_dassl_settings_and_reports_epochs():
    source = _Source()
    model = _Linear()
    seen = []
    history = fit(model, source, TrainConfig(epochs=3, batch_size=4, lr=0.5), seed=1, on_epoch=seen.append)
    assert [h.epoch for h in history] == [0, 1, 2] and len(seen) == 3
    assert history[0].lr == 1e-5 and history[1].lr == 0.5
    assert source.prepared == [training_view(1, e) for e in range(3)]  # views of seed 1
    assert model.w.abs().sum() > 0


def test_non_finite_loss_raises_run_failure():
    with pytest.raises(RunFailure, match="non-finite loss"):
        fit(_Linear(scale=math.nan), _Source(), TrainConfig(epochs=1, batch_size=4), seed=0)


def test_bad_train_config_is_rejected():
    with pytest.raises(ValueError):
        TrainConfig(epochs=0)


def test_cosine_steps_is_torch_cosine_annealing_stepped_every_iteration():
    import torch

    from benchmark.core.train import TrainConfig, step_lr

    cfg = TrainConfig(epochs=3, lr=0.01, min_lr=1e-4, schedule="cosine_steps", warmup_epochs=0)
    steps = 4
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs * steps, eta_min=cfg.min_lr)
    for epoch in range(cfg.epochs):
        for step in range(steps):
            assert abs(step_lr(cfg, epoch, step, steps) - optimizer.param_groups[0]["lr"]) < 1e-12
            optimizer.step()
            scheduler.step()


def test_adam_and_adamw_are_torch_optimizers_with_the_config_values():
    import torch

    from benchmark.core.train import TrainConfig, make_optimizer

    params = [torch.nn.Parameter(torch.zeros(2))]
    adam = make_optimizer(TrainConfig(optimizer="adam", lr=0.002, weight_decay=5e-4), params)
    adamw = make_optimizer(TrainConfig(optimizer="adamw", lr=0.001, weight_decay=0.01, eps=1e-4), params)
    assert type(adam) is torch.optim.Adam and adam.defaults["weight_decay"] == 5e-4
    assert type(adamw) is torch.optim.AdamW and adamw.defaults["eps"] == 1e-4


def test_options_added_later_stay_out_of_specs_at_their_defaults():
    # so the run_key of every run stored before they existed is unchanged
    from benchmark.core.train import LATER_OPTIONS, TrainConfig

    assert not set(LATER_OPTIONS) & set(TrainConfig().spec_fields())
    assert TrainConfig(optimizer="adamw").spec_fields()["optimizer"] == "adamw"
