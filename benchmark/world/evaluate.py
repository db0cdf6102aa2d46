"""Zero-shot checks of a CLIP on the world's datasets (used by the tests and for style calibration).

Deliberately independent of the harness's data pipeline: it reads the split JSON and images directly and
applies Dassl's test transform (resize shorter side bicubic, centre crop, CLIP normalisation), so it is a
second, simple implementation the harness's numbers can be checked against.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from benchmark.world.datasets import WORLD_DATASETS
from benchmark.world.model import CLIP_MEAN, CLIP_STD

if TYPE_CHECKING:
    import torch

TEMPLATE = "a photo of a {}."
BATCH = 256


def load_split(root: Path, key: str) -> dict[str, list[list]]:
    """The split JSON of dataset ``key`` under data root ``root``."""
    spec = WORLD_DATASETS[key]
    return json.loads((Path(root) / spec.folder / spec.split_file).read_text())


def test_transform(img: Image.Image, size: int) -> np.ndarray:
    """Resize the shorter side to ``size`` (bicubic), centre-crop, normalise; returns ``[3, size, size]``."""
    img = img.convert("RGB")
    w, h = img.size
    if min(w, h) != size:
        scale = size / min(w, h)
        img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.BICUBIC)
        w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    x = np.asarray(img.crop((left, top, left + size, top + size)), np.float32) / 255
    return ((x - np.asarray(CLIP_MEAN, np.float32)) / np.asarray(CLIP_STD, np.float32)).transpose(2, 0, 1)


def encode_images(model, paths: list[Path]) -> torch.Tensor:
    """L2-normalised image features ``[N, D]`` under the test transform."""
    import torch

    size = model.visual.image_size[0] if isinstance(model.visual.image_size, tuple) else model.visual.image_size
    feats = []
    with torch.no_grad():
        for i in range(0, len(paths), BATCH):
            x = torch.from_numpy(np.stack([test_transform(Image.open(p), size) for p in paths[i : i + BATCH]]))
            feats.append(torch.nn.functional.normalize(model.encode_image(x), dim=-1))
    return torch.cat(feats)


def encode_texts(model, texts: list[str]) -> torch.Tensor:
    """L2-normalised text features ``[N, D]``."""
    import open_clip
    import torch

    with torch.no_grad():
        tokens = open_clip.tokenize(texts, context_length=model.context_length)
        return torch.nn.functional.normalize(model.encode_text(tokens), dim=-1)


def zero_shot(model, root: Path, key: str, split: str = "test", template: str = TEMPLATE) -> dict[str, float]:
    """Zero-shot accuracy (%) on all classes, on the base half and on the new half (each among itself).

    Base = the first ceil(n/2) labels, as in the b2n protocol (methods/REFERENCES.md §2).
    """
    items = load_split(root, key)[split]
    spec = WORLD_DATASETS[key]
    folder = Path(root) / spec.folder / "images"
    feats = encode_images(model, [folder / rel for rel, _, _ in items])
    labels = np.asarray([lab for _, lab, _ in items])
    text = encode_texts(model, [template.format(c.replace("_", " ")) for c in spec.classnames])
    sims = (feats @ text.T).numpy()  # [N, C]
    n = len(spec.classnames)
    m = math.ceil(n / 2)
    out = {"all": float((sims.argmax(1) == labels).mean() * 100)}
    for name, lo, hi in (("base", 0, m), ("new", m, n)):
        sel = (labels >= lo) & (labels < hi)
        out[name] = float((sims[sel][:, lo:hi].argmax(1) + lo == labels[sel]).mean() * 100)
    return out
