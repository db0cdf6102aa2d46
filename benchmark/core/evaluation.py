"""Evaluation: top-1 accuracy over a test list (Dassl's `Classification` evaluator: micro accuracy)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from benchmark.data.transforms import TEST_VIEW


@dataclass
class Predictions:
    """Per-image outcome of one evaluation."""

    paths: list[str]  # relative paths as in the split file
    labels: np.ndarray  # [N] true labels in the evaluated label space
    predicted: np.ndarray  # [N]
    classnames: tuple[str, ...]

    @property
    def accuracy(self) -> float:
        """Top-1 accuracy in percent (100 * correct / total)."""
        return 100.0 * float((self.labels == self.predicted).mean()) if len(self.labels) else float("nan")


def evaluate(method, bank, classnames: tuple[str, ...], *, batch_size: int) -> Predictions:
    """Predict every item of `bank` under the test transform."""
    bank.prepare([TEST_VIEW])
    predicted = []
    with method.evaluating():
        for start in range(0, len(bank), batch_size):
            indices = range(start, min(start + batch_size, len(bank)))
            logits = method(bank.batch(indices, TEST_VIEW))
            predicted.append(logits.argmax(dim=-1).cpu())
    preds = torch.cat(predicted).numpy() if predicted else np.zeros(0, dtype=np.int64)
    return Predictions(
        paths=[item.path for item in bank.items],
        labels=bank.labels.numpy(),
        predicted=preds,
        classnames=tuple(classnames),
    )
