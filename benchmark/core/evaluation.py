"""Evaluation: top-1 accuracy over a test list (Dassl's `Classification` evaluator: micro accuracy).

The same pass records the softmax calibration (`benchmark.core.calibration`) and its wall time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from benchmark.core.calibration import expected_calibration_error, softmax_stats
from benchmark.data.transforms import TEST_VIEW


@dataclass
class Predictions:
    """Per-image outcome of one evaluation.

    `confidence` and `nll` are per image (max softmax probability, -log p(true class)); empty when the
    predictions were not made from logits (tests, artifacts read back). `seconds` is the wall time of
    the pass and `encode_seconds` the part of it spent filling the shared frozen-feature cache.
    """

    paths: list[str]  # relative paths as in the split file
    labels: np.ndarray  # [N] true labels in the evaluated label space
    predicted: np.ndarray  # [N]
    classnames: tuple[str, ...]
    confidence: np.ndarray = field(default_factory=lambda: np.zeros(0))
    nll: np.ndarray = field(default_factory=lambda: np.zeros(0))
    seconds: float = 0.0
    encode_seconds: float = 0.0

    @property
    def accuracy(self) -> float:
        """Top-1 accuracy in percent (100 * correct / total)."""
        return 100.0 * float((self.labels == self.predicted).mean()) if len(self.labels) else float("nan")

    @property
    def ece(self) -> float:
        """Expected calibration error in percent (15 bins; `benchmark.core.calibration`); NaN without logits."""
        if len(self.confidence) != len(self.labels) or not len(self.labels):
            return float("nan")
        return expected_calibration_error(self.confidence, self.labels == self.predicted)

    @property
    def mean_nll(self) -> float:
        """Mean negative log-likelihood of the true class in nats; NaN without logits."""
        if len(self.nll) != len(self.labels) or not len(self.labels):
            return float("nan")
        return float(np.mean(self.nll))


def evaluate(method, bank, classnames: tuple[str, ...], *, batch_size: int) -> Predictions:
    """Predict every item of `bank` under the test transform."""
    from benchmark.data.pipeline import encode_seconds

    start, encode_start = time.perf_counter(), encode_seconds()
    bank.prepare([TEST_VIEW])
    predicted, confidence, nll = [], [], []
    with method.evaluating():
        for start_index in range(0, len(bank), batch_size):
            indices = range(start_index, min(start_index + batch_size, len(bank)))
            batch = bank.batch(indices, TEST_VIEW)
            logits = method(batch)
            predicted.append(logits.argmax(dim=-1).cpu())
            conf, loss = softmax_stats(logits, batch.labels)
            confidence.append(conf)
            nll.append(loss)
    preds = torch.cat(predicted).numpy() if predicted else np.zeros(0, dtype=np.int64)
    return Predictions(
        paths=[item.path for item in bank.items],
        labels=bank.labels.numpy(),
        predicted=preds,
        classnames=tuple(classnames),
        confidence=np.concatenate(confidence) if confidence else np.zeros(0),
        nll=np.concatenate(nll) if nll else np.zeros(0),
        seconds=time.perf_counter() - start,
        encode_seconds=encode_seconds() - encode_start,
    )
