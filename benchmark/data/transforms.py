"""Dassl's train and test image transforms, with the train augmentation made addressable.

Dassl (`dassl/data/transforms/transforms.py` 206-354) trains with `RandomResizedCrop(size,
scale=(0.08, 1), bicubic)`, `RandomHorizontalFlip(0.5)`, `ToTensor`, `Normalize(CLIP mean/std)` and
tests with `Resize(size, bicubic)` on the shorter side, `CenterCrop(size)`, `ToTensor`, `Normalize`.

The reference draws crop parameters from torch's global RNG, which `set_random_seed(seed)` seeds: a
change of run seed changes every augmentation. Here view `v` of an image is drawn with torchvision's
exact algorithm from a generator seeded by (image content digest, v), and a training view index
carries the run seed (`training_view(seed, k)`): a seed still changes every view, as in the
reference, while the view stays addressable, so the frozen-image feature cache serves the training
augmentation exactly (its key is the view index, hence seed-specific). Every method trained with one
seed sees the same views. Which view a training step uses is decided by the trainer.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import asdict, dataclass

from PIL import Image

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
TEST_VIEW = -1  # view index of the deterministic test transform
VIEWS_PER_SEED = 1 << 20  # training view indices of one run seed: seed * VIEWS_PER_SEED + k, 0 <= k < this


def training_view(seed: int, index: int) -> int:
    """The view index of the `index`-th augmented view of a run with seed `seed` (>= 0 both).

    Distinct seeds never share a view, so changing the seed redraws every crop and flip, exactly
    as re-seeding torch's global RNG does in the reference trainers.
    """
    if seed < 0 or not 0 <= index < VIEWS_PER_SEED:
        raise ValueError(f"training views need seed >= 0 and 0 <= index < {VIEWS_PER_SEED}, got {seed}, {index}")
    return seed * VIEWS_PER_SEED + index


@dataclass(frozen=True)
class TransformSpec:
    """Everything that determines the pixels a view produces (part of feature-cache keys)."""

    size: int
    crop_scale: tuple[float, float] = (0.08, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    interpolation: str = "bicubic"

    def digest(self) -> str:
        """Short stable hash of the spec."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CropParams:
    """Crop box (top, left, height, width) and whether to flip."""

    top: int
    left: int
    height: int
    width: int
    flip: bool


def view_rng(image_digest: str, view: int) -> random.Random:
    """The generator of one augmented view: seeded by content, never by global state."""
    seed = hashlib.sha256(f"{image_digest}:{view}".encode()).digest()
    return random.Random(int.from_bytes(seed[:8], "little"))


def random_resized_crop_params(
    height: int, width: int, spec: TransformSpec, rng: random.Random
) -> tuple[int, int, int, int]:
    """Torchvision `RandomResizedCrop.get_params`, drawing from `rng` instead of torch's RNG."""
    area = height * width
    log_lo, log_hi = math.log(spec.crop_ratio[0]), math.log(spec.crop_ratio[1])
    for _ in range(10):
        target_area = area * rng.uniform(*spec.crop_scale)
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = rng.randint(0, height - h)
            left = rng.randint(0, width - w)
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(spec.crop_ratio):
        w, h = width, int(round(width / min(spec.crop_ratio)))
    elif in_ratio > max(spec.crop_ratio):
        h, w = height, int(round(height * max(spec.crop_ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def crop_params(image_digest: str, view: int, height: int, width: int, spec: TransformSpec) -> CropParams:
    """The crop and flip of training view `view` (>= 0) of an image."""
    rng = view_rng(image_digest, view)
    top, left, h, w = random_resized_crop_params(height, width, spec, rng)
    return CropParams(top, left, h, w, rng.random() < spec.flip_p)


def _interp(spec: TransformSpec):
    from torchvision.transforms import InterpolationMode

    return InterpolationMode(spec.interpolation)


def apply_view(image: Image.Image, image_digest: str, view: int, spec: TransformSpec):
    """Pixels of view `view` of `image` as a normalised float tensor [3, size, size].

    `view == TEST_VIEW` is Dassl's test transform; `view >= 0` a training augmentation.
    """
    import torchvision.transforms.functional as F

    if view == TEST_VIEW:
        image = F.resize(image, spec.size, interpolation=_interp(spec))
        image = F.center_crop(image, [spec.size, spec.size])
    else:
        p = crop_params(image_digest, view, image.height, image.width, spec)
        image = F.resized_crop(image, p.top, p.left, p.height, p.width, [spec.size, spec.size], _interp(spec))
        if p.flip:
            image = F.hflip(image)
    tensor = F.to_tensor(image)
    return F.normalize(tensor, spec.mean, spec.std)


def load_rgb(path) -> Image.Image:
    """Open an image as RGB (Dassl `read_image`)."""
    with Image.open(path) as img:
        return img.convert("RGB")
