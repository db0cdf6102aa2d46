"""Captioners: where an image's caption text comes from.

* `dataset`: the captions shipped with the dataset (`captions.json`, `Dataset.captions`), e.g. the
  world's generated descriptions. Reading them is free, so they are not cached.
* `blip2`: BLIP-2 as in BiMoRS's `gen_caption/gen_caption.py` (ipankhi/BiMoRS @ c345cd8, lines 12-40,
  47-90): `Salesforce/blip2-flan-t5-xl` in fp32 by default, or `blip2:<hub name or local folder>`.
  Image pipeline: PIL RGB, `Resize((224, 224))` (bilinear), `ToTensor`, per-image min-max rescale to
  [0, 1], `ToPILImage`, then the BLIP-2 processor's own resize and normalisation; caption =
  `generate(pixel_values, max_length=16, num_beams=4, early_stopping=True)` without a text prompt,
  decoded with `skip_special_tokens=True`. Images are captioned in batches; the device is the run's
  (the reference hard-codes `cuda:1`). The caption text depends on the transformers version
  (methods/REFERENCES.md §4), so the version is part of the captioner's cache identity.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Protocol

from benchmark.data.catalog import Dataset
from benchmark.data.splits import Item
from benchmark.errors import UsageError

log = logging.getLogger(__name__)

BLIP2_DEFAULT = "Salesforce/blip2-flan-t5-xl"
BLIP2_BATCH = 16
BLIP2_GENERATE = {"max_length": 16, "num_beams": 4, "early_stopping": True}


class Captioner(Protocol):
    """What the caption provider needs from a captioner."""

    id: str  # cache identity
    stored: bool  # whether its captions are cached (model output) or re-read (dataset files)

    def caption(self, dataset: Dataset, items: Sequence[Item]) -> list[str]:
        """One caption per item, in order."""
        ...


class DatasetCaptioner:
    """Captions shipped with the dataset, by image path relative to the image folder."""

    id = "dataset"
    stored = False

    def caption(self, dataset: Dataset, items: Sequence[Item]) -> list[str]:
        """The dataset's caption of every item (UsageError naming the first image without one)."""
        captions = dataset.captions
        for item in items:
            if item.path not in captions:
                where = dataset.spec.captions_file or "no captions file in its spec"
                raise UsageError(f"dataset {dataset.name}: no caption for image {item.path} ({where})")
        return [captions[item.path] for item in items]


def reference_image(path: Path):
    """The PIL image BiMoRS hands to the BLIP-2 processor: 224x224 bilinear, min-max rescaled to [0, 1].

    A constant image (max == min, a division by zero in the reference) becomes all zeros.
    """
    from PIL import Image
    from torchvision import transforms

    with Image.open(path) as image:
        pixels = transforms.ToTensor()(transforms.Resize((224, 224))(image.convert("RGB")))
    low, high = pixels.min(), pixels.max()
    pixels = (pixels - low) / (high - low) if high > low else pixels.zero_()
    return transforms.ToPILImage()(pixels)


class Blip2Captioner:
    """BLIP-2 captions (loaded on first use).

    Args:
        source: hub name or local folder of a `Blip2ForConditionalGeneration` checkpoint + processor.
        device: where the model runs (chosen by the run).
        batch_size: images per `generate` call.
    """

    stored = True

    def __init__(self, source: str = BLIP2_DEFAULT, *, device: str = "cpu", batch_size: int = BLIP2_BATCH) -> None:
        self.source = source
        local = Path(source).is_dir()
        try:
            tf_version = version("transformers")
        except PackageNotFoundError:
            tf_version = "unknown"
        name = f"local:{Path(source).resolve()}" if local else source
        self.id = f"blip2:{name}|transformers-{tf_version}"
        self.device = device
        self.batch_size = batch_size
        self._model = None
        self._processor = None

    def _load(self) -> None:
        from transformers import Blip2ForConditionalGeneration, Blip2Processor

        from benchmark.backbone.hub_cache import hf_offline

        # Read now: `benchmark.plan.models` may set HF_HUB_OFFLINE after transformers was imported.
        local = hf_offline()
        try:
            self._processor = Blip2Processor.from_pretrained(self.source, local_files_only=local)
            model = Blip2ForConditionalGeneration.from_pretrained(self.source, local_files_only=local)
        except OSError as exc:
            raise UsageError(f"captioner blip2: cannot load {self.source} ({exc})") from None
        self._model = model.float().to(self.device).eval()
        log.info("BLIP-2 captioner %s loaded on %s", self.source, self.device)

    def caption(self, dataset: Dataset, items: Sequence[Item]) -> list[str]:
        """Generated captions of the items' images."""
        import torch

        if self._model is None:
            self._load()
        texts: list[str] = []
        for start in range(0, len(items), self.batch_size):
            chunk = items[start : start + self.batch_size]
            images = [reference_image(dataset.image_path(item)) for item in chunk]
            pixels = self._processor(images=images, return_tensors="pt")["pixel_values"]
            with torch.no_grad():
                ids = self._model.generate(pixels.to(self.device, torch.float32), **BLIP2_GENERATE)
            texts += self._processor.batch_decode(ids, skip_special_tokens=True)
        return texts


def make_captioner(name: str, *, device: str) -> Captioner:
    """The captioner a profile names: `dataset`, `blip2` or `blip2:<hub name or folder>`."""
    if name == "dataset":
        return DatasetCaptioner()
    kind, _, source = name.partition(":")
    if kind == "blip2":
        return Blip2Captioner(source or BLIP2_DEFAULT, device=device)
    raise UsageError(f"unknown captioner {name!r}: expected 'dataset', 'blip2' or 'blip2:<model folder>'")
