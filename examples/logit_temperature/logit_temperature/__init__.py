"""Zero-shot CLIP with one learned number: the temperature of its logits (an example plugin method).

The smallest method that exercises the whole interface: a config dataclass whose type hints drive `--set`,
cited presets, the default preset per profile, a trainable parameter, class prompts rebuilt by
`set_classnames`, text features from `compute_class_text` (cached by the base class), `forward` giving logits.
Calibration is what it can change (ECE, NLL); its accuracy is zero-shot's, since one temperature reorders
no class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from benchmark.backbone import FrozenClip
from benchmark.core.method import Batch, Preset, PromptMethod, normalize
from benchmark.core.train import TrainConfig
from benchmark.registry import METHODS


@dataclass(frozen=True)
class LogitTemperatureConfig:
    """Attributes: template: the class prompt, `{}` is the class name; init: the starting log-temperature."""

    template: str = "a photo of a {}."
    init: float = 0.0


@METHODS.register("logit_temperature")
class LogitTemperature(PromptMethod):
    """logits = exp(t) * CLIP's scale * cos(image, text(template)); only t is trained."""

    config_cls = LogitTemperatureConfig
    presets = {
        "example": Preset(
            LogitTemperatureConfig(),
            TrainConfig(epochs=5, lr=0.01, batch_size=32),
            "example plugin (rs-prompt-bench docs/adding_a_method.md); schedule chosen for the example only",
        ),
    }
    default_presets = {"world": "example", "paper": "example"}

    def __init__(self, clip: FrozenClip, cfg: LogitTemperatureConfig, classnames: Sequence[str]) -> None:
        super().__init__(clip, cfg, classnames)
        self.log_temperature = nn.Parameter(torch.tensor(float(cfg.init)))
        self.set_classnames(classnames)

    def set_classnames(self, classnames: Sequence[str]) -> None:
        """Rebuild the class prompts (the temperature is class-free: it carries over to unseen classes)."""
        self.texts = [self.cfg.template.format(name.replace("_", " ")) for name in classnames]
        self._text_cache = None

    def compute_class_text(self) -> Tensor:
        """Text features of the filled-in template (no learned part: the base class caches them)."""
        fast = self.fast
        return self.clip.encode_text(
            self.texts, truncate=fast.truncate_text, pooled_only=fast.pooled_rows_only, fused=fast.fused_blocks
        )

    def forward(self, batch: Batch) -> Tensor:
        """Logits [B, C]."""
        image = normalize(self.image_features(batch).pooled)
        scale = self.clip.logit_scale * self.log_temperature.exp()
        return scale * image @ self.class_text_features().t()
