"""Cross-dataset transfer (CoCoOp Sec. 4.2; on RS: APPLeNet, C-SAW, BiMoRS).

Train on PatternNet with all 38 classes (16 shots), evaluate on the PatternNet test split and on the full
test splits of RSICD, RESISC45 and MLRSNet with their own class names (new label spaces).
"""

from __future__ import annotations

from benchmark.registry import PROTOCOLS
from protocols.transfer import SourceToTargets


class CrossDataset(SourceToTargets):
    """Source with all classes -> targets with different label spaces."""

    name = "xd"
    title = "cross-dataset"

    def defaults(self, profile) -> tuple[str, tuple[str, ...]]:
        """PatternNet -> RSICD, RESISC45, MLRSNet (or the world's counterparts)."""
        return profile.protocols.xd_source, profile.protocols.xd_targets


PROTOCOLS.register("xd")(CrossDataset())
