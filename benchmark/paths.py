"""Where caches and results live; file identity and atomic file replacement."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def cache_dir() -> Path:
    """`$BENCHMARK_CACHE`, else `$XDG_CACHE_HOME/benchmark`, else `~/.cache/benchmark`."""
    explicit = os.environ.get("BENCHMARK_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "benchmark"


def results_dir() -> Path:
    """`results/` of the working directory."""
    return Path.cwd() / "results"


def default_tracking_uri() -> str:
    """`$MLFLOW_TRACKING_URI`, else a SQLite store `mlflow.db` in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks (checkpoints can be gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def replace_atomically(path: Path, write: Callable[[str], None]) -> None:
    """Have `write` fill a temporary file beside `path`, then `os.replace` it onto `path`.

    Readers (a dashboard, a concurrent worker) never see half a file, and a failed write leaves the
    old file and no temporary behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
