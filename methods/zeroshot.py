"""Zero-shot CLIP (Radford et al., ICML 2021) with the template "a photo of a {}.".

The baseline row of every table in CoOp, CoCoOp, MaPLe and the RS papers (APPLeNet Table 1). Class
names have `_` read as a space. Nothing is trained, so every protocol only evaluates it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor

from benchmark.backbone import FrozenClip
from benchmark.core.method import Batch, Preset, PromptMethod, Requirements, normalize
from benchmark.core.train import TrainConfig
from benchmark.registry import METHODS


@dataclass(frozen=True)
class ZeroShotConfig:
    """Attributes: template: the prompt, `{}` is replaced by the class name."""

    template: str = "a photo of a {}."


@METHODS.register("zeroshot")
class ZeroShotCLIP(PromptMethod):
    """CLIP's zero-shot classifier: logits = scale * cos(image, text("a photo of a {class}."))."""

    config_cls = ZeroShotConfig
    presets = {
        "paper": Preset(ZeroShotConfig(), TrainConfig(epochs=1), "CoOp (IJCV'22) Sec. 4.1, CLIP hand-crafted prompt"),
    }
    default_presets = {"paper": "paper", "world": "paper"}
    requirements = Requirements(trainable=False)

    def __init__(self, clip: FrozenClip, cfg: ZeroShotConfig, classnames: Sequence[str]) -> None:
        super().__init__(clip, cfg, classnames)
        self.set_classnames(classnames)

    def set_classnames(self, classnames: Sequence[str]) -> None:
        """Rebuild the class prompts."""
        self.texts = [self.cfg.template.format(name.replace("_", " ")) for name in classnames]
        self._text_cache = None

    def compute_class_text(self) -> Tensor:
        """Text features of the filled-in template."""
        fast = self.fast
        return self.clip.encode_text(
            self.texts, truncate=fast.truncate_text, pooled_only=fast.pooled_rows_only, fused=fast.fused_blocks
        )

    def forward(self, batch: Batch) -> Tensor:
        """Logits [B, C]."""
        image = normalize(self.image_features(batch).pooled)
        return self.clip.logit_scale * image @ self.class_text_features().t()
