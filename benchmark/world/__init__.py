"""The embedded remote-sensing world: procedural RS datasets plus a pretrained tiny CLIP (README: Profiles).

Importing this package is cheap and never imports torch (``python -m benchmark list datasets`` relies on
that); generation (numpy, PIL) is imported when :func:`ensure_world` runs, the model from
:mod:`benchmark.world.model`.
"""

from __future__ import annotations

from pathlib import Path

from benchmark.world.datasets import WORLD_DATASETS, WORLD_PROTOCOLS, WorldDatasetSpec
from benchmark.world.version import WORLD_VERSION

__all__ = ["WORLD_DATASETS", "WORLD_PROTOCOLS", "WORLD_VERSION", "WorldDatasetSpec", "ensure_world"]


def ensure_world(cache_dir: Path) -> Path:
    """Return the world's data root under ``cache_dir/world/<WORLD_VERSION>``, generating it on first use.

    Idempotent and safe under concurrent callers: each generates into its own temporary folder and
    renames it into place atomically; a caller that loses the race discards its copy and uses the winner's.

    Args:
        cache_dir: Cache folder (created if missing).

    Returns:
        The data root, holding one folder per dataset (``PatternNet/``, ``RSICDv2/``, ...).
    """
    from benchmark.world.build import ensure_world as _ensure

    return _ensure(Path(cache_dir))
