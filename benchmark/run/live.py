"""What a running cell sends while it runs: its epoch metrics in batches, and a heartbeat.

Workers on other hosts judge a run or a claim alive by its heartbeat (`benchmark.run.liveness`), and users
watch the training curves live in MLflow; both must arrive without costing the cell a request per epoch.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger(__name__)


class Heartbeat:
    """Refreshes a running cell's heartbeat (run and claim) every `EVERY_S` seconds from a background thread.

    Workers on other hosts judge a run or claim alive by its heartbeat; epoch logs refresh it too, but a cell
    can go long without an epoch (captioning, feature extraction, one long epoch).
    """

    EVERY_S = 300.0

    def __init__(self, tracker, run_id: str) -> None:

        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(tracker, run_id), name="heartbeat", daemon=True)
        self._thread.start()

    def _beat(self, tracker, run_id: str) -> None:
        while not self._stop.wait(self.EVERY_S):
            try:
                tracker.heartbeat(run_id)
            except Exception:  # noqa: BLE001 - a missed beat is retried at the next one
                log.debug("heartbeat of %s failed", run_id, exc_info=True)

    def stop(self) -> None:
        """End the beats (the cell is over)."""
        self._stop.set()


class EpochBuffer:
    """Per-epoch training metrics, sent to the tracker in batches instead of one request per epoch.

    One MLflow request per epoch cost 20-30 ms, a quarter of a short world cell. The buffer sends what it
    holds at most every `FLUSH_EVERY_S` seconds (so long runs still show their curve and heartbeat
    live) and when the cell ends, in any way.
    """

    FLUSH_EVERY_S = 30.0

    def __init__(self, tracker, run_id: str) -> None:
        self.tracker, self.run_id = tracker, run_id
        self.pending: list[tuple[int, dict[str, float], int]] = []
        self.last_flush = time.monotonic()

    def add(self, entry) -> None:
        """Keep one epoch's metrics (`benchmark.core.train.EpochLog`); flush when the last flush is old."""
        values = {"train_loss": entry.train_loss, "train_acc": entry.train_acc, "lr": entry.lr}
        self.pending.append((entry.epoch, values, int(time.time() * 1000)))
        if time.monotonic() - self.last_flush >= self.FLUSH_EVERY_S:
            self.flush()

    def flush(self, *, quietly: bool = False) -> None:
        """Send every pending epoch; `quietly` on a failing cell (the failure, not this, is reported)."""
        pending, self.pending = self.pending, []
        self.last_flush = time.monotonic()
        if not pending:
            return
        try:
            self.tracker.log_epochs(self.run_id, pending)
        except Exception:  # noqa: BLE001
            if not quietly:
                raise
            log.debug("could not log the epochs of a failing cell", exc_info=True)
