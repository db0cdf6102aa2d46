"""One image end to end: per-image generator, scene recipe, sensor style, caption facts.

Both the evaluation datasets and the pretraining corpus go through :func:`render_image`, so the backbone is
pretrained on exactly the scene distribution it is evaluated on, minus the evaluation sensors' styles.
"""

from __future__ import annotations

import zlib

import numpy as np

from benchmark.world.captions import caption
from benchmark.world.scenes import render_scene
from benchmark.world.styles import SensorStyle, apply_style, canvas_size


def image_rng(world_seed: int, domain: str, cls: str, index: int) -> np.random.Generator:
    """The generator of one image, derived from (world seed, domain, class, index) only.

    Why crc32 and not ``hash``: Python salts string hashes per process; crc32 is stable everywhere.
    """
    return np.random.default_rng([world_seed, zlib.crc32(domain.encode()), zlib.crc32(cls.encode()), index])


def render_image(cls: str, style: SensorStyle, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """Render one scene of canonical class ``cls`` through a sensor style.

    Returns:
        The ``[64, 64, 3]`` uint8 image and the scene's caption facts.
    """
    canvas = render_scene(cls, rng, canvas_size(style, rng))
    return apply_style(canvas.img, style, rng), canvas.facts


def render_captioned(cls: str, style: SensorStyle, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Render one image and its class-free caption."""
    img, facts = render_image(cls, style, rng)
    return img, caption(facts, img, rng)
