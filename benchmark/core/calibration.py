"""Calibration of a classifier's softmax: expected calibration error (ECE) and negative log-likelihood (NLL).

Prompt learners are known to grow over-confident on classes they did not train on; accuracy alone does
not show it. Both numbers are computed from the softmax of the logits a method returns (CLIP's logit
scale included), per evaluated subset:

* ECE (Guo et al., ICML 2017): the confidences (max softmax probability) fall into 15 equal-width bins
  (lo, hi] over [0, 1]; ECE = sum over bins of (share of images in the bin) * |accuracy - mean confidence|
  in the bin. Reported in percent, like accuracy (0 = perfectly calibrated).
* NLL: the mean of -log p(true class) in nats (lower is better; it punishes confident mistakes).
"""

from __future__ import annotations

import numpy as np

ECE_BINS = 15


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE in percent over `bins` equal-width confidence bins; NaN for no images.

    Args:
        confidence: [N] max softmax probability of each image, in [0, 1].
        correct: [N] whether the top-1 prediction was right.
        bins: the number of equal-width bins (lo, hi]; a confidence of exactly 0 joins the first bin.
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if confidence.size == 0:
        return float("nan")
    index = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        members = index == b
        count = int(members.sum())
        if count:
            total += count / confidence.size * abs(correct[members].mean() - confidence[members].mean())
    return 100.0 * total


def softmax_stats(logits, labels) -> tuple[np.ndarray, np.ndarray]:
    """Per-image (max softmax probability, -log p(true class)) of a batch of logits, in float64.

    Computed from float32 (or wider) logits with log-softmax, so a confident wrong prediction gives a
    large finite NLL instead of an infinite one.
    """
    import torch

    log_p = torch.log_softmax(logits.detach().double(), dim=-1)
    confidence = log_p.max(dim=-1).values.exp()
    nll = -log_p.gather(1, labels.detach().long().view(-1, 1).to(log_p.device)).squeeze(1)
    return confidence.cpu().numpy(), nll.cpu().numpy()
