"""The one training loop every method shares (SGD + Dassl's schedule), in the spirit of minGPT.

Methods supply `forward(batch) -> logits` and `loss`; the loop owns the optimizer, the schedule,
the data order, the augmentation view of each epoch, the NaN guard and per-epoch metrics.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from benchmark.errors import RunFailure

if TYPE_CHECKING:
    from torch import Tensor, nn

log = logging.getLogger(__name__)


# Options added after runs were first stored. A run's spec omits them while they hold these defaults, so
# the run_key of every run stored before they existed is unchanged (resume keeps those runs).
LATER_OPTIONS = {"optimizer": "sgd", "schedule": "dassl", "min_lr": 0.0, "eps": 1e-8}


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (Dassl `OPTIM` plus the few loop options the references use).

    Attributes:
        epochs: MAX_EPOCH.
        batch_size: train batch size; `drop_last` when the set has at least one full batch.
        lr: base learning rate of SGD.
        momentum: SGD momentum (Dassl default 0.9).
        weight_decay: applied to every optimised tensor (Dassl default 5e-4).
        warmup_epochs: epochs at the constant `warmup_lr` before the cosine starts.
        warmup_lr: Dassl WARMUP_CONS_LR.
        aug_views: 0 draws a fresh augmented view of each image every epoch (view = epoch);
            k > 0 cycles through k fixed views (view = epoch mod k), which bounds the feature cache.
            Views are drawn per run seed (`benchmark.data.transforms.training_view`).
        selection: "last" reports the last epoch; "best_val" the epoch with the best accuracy on the
            run's few-shot validation draw; "best_test" keeps the epoch with the best accuracy on the
            training label space's *test* split for the transfer evaluations while the training space
            reports the last epoch (BiMoRS's and APPLeNet's references); "best_test_reported" loads that
            epoch before every reported evaluation (Tip-Adapter-F's reference). Both are leakage, labelled.
        eval_batch_size: test batch size.
        precision: "fp32"; "amp" (bfloat16 autocast on CUDA); or "fp16", the references' `PREC: fp16`:
            a float16 copy of the backbone, float16 learnable tensors and plain SGD, on CUDA. Elsewhere
            fp16 runs fp32 (one log line, and the run's `precision` tag says so).
        optimizer: "sgd" (Dassl, every prompt learner), "adam" (Dassl's OPTIM.NAME adam, TaskRes: betas
            (0.9, 0.999), `eps`, `weight_decay` as L2 added to the gradient) or "adamw" (Tip-Adapter-F,
            CLIP-LoRA: the same with decoupled `weight_decay`).
        schedule: "dassl" (per-epoch constant warm-up + cosine, `dassl_lr`) or "cosine_steps"
            (`CosineAnnealingLR` stepped after every iteration over all of them, down to `min_lr`, no
            warm-up; the adapters' own training scripts).
        min_lr: the floor of "cosine_steps" (CosineAnnealingLR's eta_min).
        eps: AdamW's epsilon.
    """

    epochs: int = 10
    batch_size: int = 32
    lr: float = 0.002
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: int = 1
    warmup_lr: float = 1e-5
    aug_views: int = 0
    selection: Literal["last", "best_val", "best_test", "best_test_reported"] = "last"
    eval_batch_size: int = 100
    precision: Literal["fp32", "amp", "fp16"] = "fp32"
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    schedule: Literal["dassl", "cosine_steps"] = "dassl"
    min_lr: float = 0.0
    eps: float = 1e-8

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.warmup_lr < 0 or self.aug_views < 0 or self.warmup_epochs < 0:
            raise ValueError("lr must be > 0; warmup_lr, warmup_epochs and aug_views >= 0")
        if self.optimizer not in ("sgd", "adam", "adamw") or self.schedule not in ("dassl", "cosine_steps"):
            raise ValueError(f"unknown optimizer {self.optimizer!r} or schedule {self.schedule!r}")
        if self.min_lr < 0 or self.min_lr > self.lr or self.eps <= 0:
            raise ValueError("min_lr must lie in [0, lr] and eps must be > 0")

    def spec_fields(self) -> dict:
        """The plain dict a run's spec stores (later options dropped while at their defaults)."""
        from dataclasses import asdict

        return {k: v for k, v in asdict(self).items() if not (k in LATER_OPTIONS and LATER_OPTIONS[k] == v)}


def dassl_lr(cfg: TrainConfig, epoch: int) -> float:
    """Learning rate used during `epoch` (0-based) under Dassl's constant warm-up + cosine.

    Dassl wraps `CosineAnnealingLR(T_max=epochs)` in `ConstantWarmupScheduler` and steps once per
    epoch: epochs before `warmup_epochs` run at `warmup_lr`, then the cosine restarts from its first
    value, so it is shifted by the warm-up and never reaches zero (methods/REFERENCES.md §1).
    """
    if epoch < cfg.warmup_epochs:
        return cfg.warmup_lr
    t = epoch - cfg.warmup_epochs
    return cfg.lr * (1 + math.cos(math.pi * t / cfg.epochs)) / 2


def step_lr(cfg: TrainConfig, epoch: int, step: int, steps: int) -> float:
    """Learning rate of iteration `step` (0-based) of `epoch` when each epoch has `steps` iterations.

    "dassl" is constant within an epoch. "cosine_steps" is the closed form of `CosineAnnealingLR`
    with T_max = epochs * steps, stepped once after every iteration (iteration t runs at its value at t).
    """
    if cfg.schedule == "dassl":
        return dassl_lr(cfg, epoch)
    t, total = epoch * steps + step, cfg.epochs * steps
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * t / total)) / 2


def make_optimizer(cfg: TrainConfig, params: list):
    """SGD with Dassl's settings, or Adam / AdamW with betas (0.9, 0.999), for `params`."""
    import torch

    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=(0.9, 0.999), eps=cfg.eps, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=(0.9, 0.999), eps=cfg.eps, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(
        params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, dampening=0, nesterov=False
    )


def view_for_epoch(cfg: TrainConfig, epoch: int, seed: int = 0) -> int:
    """Index of the augmented view every image shows in `epoch` of a run with seed `seed`."""
    from benchmark.data.transforms import training_view

    return training_view(seed, epoch % cfg.aug_views if cfg.aug_views else epoch)


class BatchSource(Protocol):
    """What the loop needs from the data pipeline."""

    def __len__(self) -> int: ...

    def batch(self, indices: Sequence[int], view: int):
        """The batch of items `indices` under augmented view `view`."""

    def prepare(self, views: Sequence[int]) -> None:
        """Precompute whatever the given views need."""


@dataclass
class EpochLog:
    """Per-epoch training metrics (logged to the tracker with step = epoch)."""

    epoch: int
    train_loss: float
    train_acc: float
    lr: float
    seconds: float
    images: int = 0  # images the epoch's steps saw (for images per second)


def steps_per_epoch(n_items: int, batch_size: int) -> int:
    """Dassl's RandomSampler with drop_last = (n >= batch)."""
    return n_items // batch_size if n_items >= batch_size else 1


def fit(
    method: nn.Module,
    source: BatchSource,
    cfg: TrainConfig,
    *,
    seed: int,
    on_epoch: Callable[[EpochLog], None] | None = None,
    progress: bool = False,
) -> list[EpochLog]:
    """Train `method`'s trainable parameters on `source`.

    Raises:
        RunFailure: when the loss is not finite (the reference's `model_backward_and_update`
            check), naming the epoch and step.
    """
    import torch
    from tqdm import tqdm

    params = [p for p in method.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{type(method).__name__} has no trainable parameters")
    optimizer = make_optimizer(cfg, params)
    n_items = len(source)
    steps = steps_per_epoch(n_items, cfg.batch_size)
    generator = torch.Generator().manual_seed(seed)
    source.prepare(sorted({view_for_epoch(cfg, e, seed) for e in range(cfg.epochs)}))
    history: list[EpochLog] = []
    method.train()
    for epoch in range(cfg.epochs):
        start = time.perf_counter()
        lr = step_lr(cfg, epoch, 0, steps)
        order = torch.randperm(n_items, generator=generator).tolist()
        view = view_for_epoch(cfg, epoch, seed)
        total_loss, correct, seen = 0.0, 0, 0
        bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False, disable=not progress)
        for step in bar:
            for group in optimizer.param_groups:
                group["lr"] = step_lr(cfg, epoch, step, steps)
            batch = source.batch(order[step * cfg.batch_size : (step + 1) * cfg.batch_size], view)
            loss, logits = _step(method, optimizer, batch, cfg)
            if not math.isfinite(loss):
                raise RunFailure(f"non-finite loss ({loss}) at epoch {epoch + 1}, step {step + 1}")
            total_loss += loss * len(batch.labels)
            correct += int((logits.argmax(dim=-1) == batch.labels).sum())
            seen += len(batch.labels)
        entry = EpochLog(epoch, total_loss / seen, 100.0 * correct / seen, lr, time.perf_counter() - start, seen)
        history.append(entry)
        end_epoch = getattr(method, "end_epoch", None)
        if end_epoch is not None:
            end_epoch(epoch, cfg)
        log.debug("epoch %d: loss %.4f acc %.1f lr %.2e", epoch + 1, entry.train_loss, entry.train_acc, lr)
        if on_epoch is not None:
            on_epoch(entry)
    method.eval()
    return history


def _step(method: nn.Module, optimizer, batch, cfg: TrainConfig) -> tuple[float, Tensor]:
    import torch

    device = next(iter(method.parameters())).device
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "amp"):
        logits = method(batch)
        loss = method.loss(logits, batch.labels)
    value = float(loss.detach())
    if math.isfinite(value):
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return value, logits.detach()
