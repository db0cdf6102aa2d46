"""What a cell costs: trainable parameters, training and evaluation wall time, images per second, memory.

Researchers choose a method by accuracy and by what it costs, so every run records its cost beside its
accuracy (result rows of subset `run`, `benchmark.plan.specs.COST_METRICS`), and the leaderboards carry
the means over seeds.

Time that fills the shared frozen-feature cache is not charged to the method that happened to ask first:
it is subtracted from `train_s` / `eval_s` and reported as `cache_fill_s` (a method whose image tower is
frozen pays for its features once per dataset and view, whichever method runs first).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class CellCost:
    """Cost counters of one cell (filled by `fit_on` and `CellOutput.add`).

    Attributes:
        params: values the method fits on the training shots (`PromptMethod.fitted_parameter_count`).
        train_s: wall seconds of fitting: training-free fits, every epoch and step, per-epoch selection
            evaluations and the validation evaluation, without the cache fill.
        eval_s: wall seconds of the reported evaluations, without the cache fill.
        train_images: images the training steps processed (epochs x steps x batch).
        eval_images: images the reported evaluations scored.
        cache_fill_s: seconds spent computing frozen features missing from the shared cache.
    """

    params: int = 0
    train_s: float = 0.0
    eval_s: float = 0.0
    train_images: int = 0
    eval_images: int = 0
    cache_fill_s: float = 0.0

    @contextlib.contextmanager
    def training(self, method: Any) -> Iterator[None]:
        """Time the fit of `method` (cache fill excluded) and count its fitted parameters afterwards."""
        from benchmark.data.pipeline import encode_seconds

        start, encoded = time.perf_counter(), encode_seconds()
        try:
            yield
        finally:
            filled = encode_seconds() - encoded
            self.cache_fill_s += filled
            self.train_s += time.perf_counter() - start - filled
            self.params = int(method.fitted_parameter_count())

    def add_evaluation(self, predictions: Any) -> None:
        """Charge one reported evaluation (`benchmark.core.evaluation.Predictions`)."""
        self.eval_s += predictions.seconds - predictions.encode_seconds
        self.cache_fill_s += predictions.encode_seconds
        self.eval_images += len(predictions.labels)

    def metrics(self) -> dict[str, float]:
        """The run's cost metrics (peak memory is measured by the worker around the whole cell)."""
        return {
            "params": float(self.params),
            "train_s": self.train_s,
            "eval_s": self.eval_s,
            "train_ips": self.train_images / self.train_s if self.train_s > 0 and self.train_images else 0.0,
            "eval_ips": self.eval_images / self.eval_s if self.eval_s > 0 else 0.0,
            "cache_fill_s": self.cache_fill_s,
        }


class PeakMemory:
    """Peak memory of one cell in MB: CUDA's peak allocation on a GPU, else the worker's peak RSS.

    On Linux the RSS high-water mark (VmHWM) is reset before the cell by writing 5 to
    /proc/self/clear_refs, so a worker that runs many cells reports the peak during each cell; where that
    is not possible the process's lifetime peak (`getrusage`) is reported, an upper bound. The RSS peak
    includes what the worker already holds (libraries, the backbone, the datasets and feature banks of
    earlier cells, about 1 GB on the world profile): it answers "how much memory does a worker need",
    and differences between methods are small beside it.
    """

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")
        self.device = device
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats(device)
        else:
            with contextlib.suppress(OSError):
                Path("/proc/self/clear_refs").write_text("5")

    def peak_mb(self) -> float:
        """The peak since construction (MB = 2**20 bytes)."""
        if self.cuda:
            import torch

            return torch.cuda.max_memory_allocated(self.device) / 2**20
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024
