"""Single-source domain generalization (APPLeNet Table 3, C-SAW, BiMoRS).

Train on PatternNetv2 (16 shared classes, 16 shots), evaluate on the PatternNetv2 test split and on
RSICDv2, RESISC45v2 and MLRSNetv2: the same label space in shifted domains.
"""

from __future__ import annotations

from benchmark.registry import PROTOCOLS
from protocols.transfer import SourceToTargets


class DomainGeneralization(SourceToTargets):
    """Source v2 set -> the other v2 sets (same classes, new domains)."""

    name = "dg"
    title = "domain generalization"

    def defaults(self, profile) -> tuple[str, tuple[str, ...]]:
        """PatternNetv2 -> RSICDv2, RESISC45v2, MLRSNetv2 (or the world's counterparts)."""
        return profile.protocols.dg_source, profile.protocols.dg_targets


PROTOCOLS.register("dg")(DomainGeneralization())
