"""Where caches and results live."""

from __future__ import annotations

import os
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
