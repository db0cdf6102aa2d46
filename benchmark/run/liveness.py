"""Whether the worker behind a RUNNING run or a cell claim still lives.

On the worker's own host an flock held for the life of the worker process answers exactly (the kernel
drops it when the process dies, however it dies); from another host only a heartbeat can, so a run or
claim whose worker is elsewhere counts as live while its heartbeat is younger than `STALE_HEARTBEAT_S`.
"""

from __future__ import annotations

import fcntl
import os
import socket
import tempfile
import time
from pathlib import Path

STALE_HEARTBEAT_S = 3600.0  # a RUNNING run on another host with no heartbeat for this long is stale


def now_ms() -> int:
    """Wall-clock milliseconds (MLflow's timestamps)."""
    return int(time.time() * 1000)


class WorkerLock:
    """An flock held for the life of a worker process: while it is held, the worker is alive."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix=f"worker-{os.getpid()}-", suffix=".lock", dir=folder)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.fd, self.path = fd, path

    @staticmethod
    def is_held(path: str) -> bool:
        """True when some live process holds the lock at `path`."""
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)
        return False

    @staticmethod
    def prune(folder: Path, *, min_age_s: float = 3600.0) -> int:
        """Delete lock files nobody holds (one is left per finished process); return how many.

        Only files older than `min_age_s` go, so a lock between its creation and its flock is safe.
        A run whose lock file is gone reads as stale, exactly as when the file is there unheld.
        """
        removed, cutoff = 0, time.time() - min_age_s
        for path in Path(folder).glob("worker-*.lock"):
            try:
                if path.stat().st_mtime < cutoff and not WorkerLock.is_held(str(path)):
                    path.unlink()
                    removed += 1
            except OSError:
                continue
        return removed


def worker_tags(lock: WorkerLock) -> dict[str, str]:
    """The tags that let others judge this worker's liveness."""
    return {"worker_host": socket.gethostname(), "worker_lock": lock.path, "heartbeat": str(now_ms())}


def worker_alive(tags: dict[str, str], stale_after_s: float = STALE_HEARTBEAT_S) -> bool:
    """Whether the worker that wrote `tags` still lives: its lock (this host) or a recent heartbeat."""
    if tags.get("worker_host") == socket.gethostname():
        return WorkerLock.is_held(tags.get("worker_lock", ""))
    return now_ms() - int(tags.get("heartbeat", "0")) <= stale_after_s * 1000
