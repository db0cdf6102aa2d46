"""Sensor styles: how each dataset's "camera" turns a rendered scene into 64x64 pixels.

A style is a ground-sample scale plus a chain of radiometric effects (colour matrix, gamma, saturation,
contrast, haze, illumination gradient, blur, noise). Every effect is a deviation from the identity scaled by
one ``strength``, so a dataset's difficulty is one calibrated number (WORLD_NOTES: the style shift is what
makes zero-shot hard; in the neutral style the tiny CLIP is near-perfect). The pretraining corpus samples
random styles of the same family at strengths up to 1; the evaluation datasets use fixed styles
(:mod:`benchmark.world.sensors`) at larger strengths, i.e. a domain shift the backbone has not seen, as
with real RS sensors vs web photos.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

#: Output image side in pixels.
IMAGE_SIZE = 64
#: Relative per-image wobble of the ground-sample scale (altitude and sensor differences within a set).
GSD_JITTER = 0.12
#: Gaussian kernel radius in sigmas.
BLUR_RADIUS_SIGMAS = 3.0
#: Largest per-image brightness wobble.
EXPOSURE_JITTER = 0.06


@dataclass(frozen=True)
class SensorStyle:
    """One sensor's rendering parameters (deviations from identity, scaled by ``strength``).

    Attributes:
        name: Style key.
        gsd: Canvas pixels per output pixel; > 1 shows more ground with smaller objects.
        matrix: Row-major 3x3 deviation D of the colour matrix M = I + strength * D.
        bias: Additive colour offset per channel.
        log_gamma: Natural log of the gamma exponent.
        saturation: Saturation change (0 = unchanged, negative = washed out).
        contrast: Contrast change around the image mean.
        haze: Blend toward ``haze_color``.
        haze_color: Colour of the atmospheric haze.
        gradient: Amplitude of a linear illumination gradient across the image.
        blur: Gaussian blur sigma in output pixels.
        noise: Gaussian sensor-noise standard deviation.
        strength: Global multiplier of all radiometric deviations.
    """

    name: str
    gsd: float = 1.0
    matrix: tuple[float, ...] = (0.0,) * 9
    bias: tuple[float, float, float] = (0.0, 0.0, 0.0)
    log_gamma: float = 0.0
    saturation: float = 0.0
    contrast: float = 0.0
    haze: float = 0.0
    haze_color: tuple[float, float, float] = (0.75, 0.78, 0.82)
    gradient: float = 0.0
    blur: float = 0.0
    noise: float = 0.0
    strength: float = 1.0

    def with_strength(self, strength: float) -> SensorStyle:
        """The same style at another strength."""
        return replace(self, strength=strength)


NEUTRAL = SensorStyle("neutral")


def canvas_size(style: SensorStyle, rng: np.random.Generator) -> int:
    """Canvas side for one image: the style's ground-sample scale with a small per-image wobble."""
    return int(round(IMAGE_SIZE * style.gsd * (1 + GSD_JITTER * rng.uniform(-1, 1))))


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    """Antialiased bilinear resize of a float image, channel by channel (PIL mode F is deterministic)."""
    if img.shape[0] == size:
        return img
    chans = [
        np.asarray(Image.fromarray(np.ascontiguousarray(img[..., k])).resize((size, size), Image.Resampling.BILINEAR))
        for k in range(3)
    ]
    return np.stack(chans, -1)


def _gauss_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur with reflect padding (numpy only)."""
    if sigma < 0.2:
        return img
    r = int(np.ceil(BLUR_RADIUS_SIGMAS * sigma))
    x = np.arange(-r, r + 1, dtype=np.float32)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k /= k.sum()
    pad = np.pad(img, ((r, r), (r, r), (0, 0)), mode="reflect")
    tmp = sum(k[i] * pad[i : i + img.shape[0], :, :] for i in range(2 * r + 1))
    return sum(k[i] * tmp[:, i : i + img.shape[1], :] for i in range(2 * r + 1))


def apply_style(img: np.ndarray, style: SensorStyle, rng: np.random.Generator) -> np.ndarray:
    """Turn a rendered canvas into the sensor's 64x64 uint8 image.

    Args:
        img: ``[S, S, 3]`` float canvas (S from :func:`canvas_size`).
        style: The sensor style (with its strength).
        rng: The image's generator (illumination direction, exposure, noise).

    Returns:
        ``[64, 64, 3]`` uint8 RGB image.
    """
    s = style.strength
    x = _resize(np.clip(img, 0, 1).astype(np.float32), IMAGE_SIZE)
    m = np.eye(3, dtype=np.float32) + s * np.asarray(style.matrix, np.float32).reshape(3, 3)
    x = x @ m.T + s * np.asarray(style.bias, np.float32)
    x = np.clip(x, 0, 1) ** np.float32(np.exp(s * style.log_gamma))
    grey = x.mean(-1, keepdims=True)
    x = grey + (1 + s * style.saturation) * (x - grey)
    x = x.mean() + (1 + s * style.contrast) * (x - x.mean())
    x = x + min(s * style.haze, 0.9) * (np.asarray(style.haze_color, np.float32) - x)
    ang = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(ang) * (np.arange(IMAGE_SIZE) / IMAGE_SIZE - 0.5))[None, :, None] + (
        np.sin(ang) * (np.arange(IMAGE_SIZE) / IMAGE_SIZE - 0.5)
    )[:, None, None]
    x = x * (1 + s * style.gradient * ramp) * (1 + EXPOSURE_JITTER * rng.uniform(-1, 1))
    x = _gauss_blur(x.astype(np.float32), s * style.blur)
    if style.noise:
        x = x + rng.normal(0, s * style.noise, x.shape).astype(np.float32)
    return np.clip(np.round(x * 255), 0, 255).astype(np.uint8)


def random_style(rng: np.random.Generator, max_strength: float = 1.0) -> SensorStyle:
    """A random style of the family for the pretraining corpus (strength uniform up to ``max_strength``)."""
    return SensorStyle(
        name="random",
        gsd=float(rng.uniform(0.8, 1.3)),
        matrix=tuple(float(v) for v in rng.normal(0, 0.08, 9)),
        bias=tuple(float(v) for v in rng.normal(0, 0.03, 3)),
        log_gamma=float(rng.normal(0, 0.15)),
        saturation=float(rng.normal(0, 0.25)),
        contrast=float(rng.normal(0, 0.15)),
        haze=float(abs(rng.normal(0, 0.1))),
        gradient=float(rng.normal(0, 0.15)),
        blur=float(abs(rng.normal(0, 0.4))),
        noise=float(abs(rng.normal(0, 0.015))),
        strength=float(rng.uniform(0, max_strength)),
    )
