"""Per-image captions: what is visible, never the class name (the stand-in for BLIP-2 output).

A caption joins the recipe's facts (shapes, layout, materials) with what the final, styled pixels look like
(overall tone, brightness, sharpness), so the same scene reads differently under different sensors, as a
captioning model's output would. Wording varies per image from the image's own generator.
"""

from __future__ import annotations

import colorsys

import numpy as np

OPENINGS = (
    "an aerial view of {}",
    "an overhead image showing {}",
    "a top-down picture of {}",
    "a satellite image with {}",
    "a view from above of {}",
)
TONE = ("in {} tones", "with a {} cast", "mostly {}")
#: Luminance thresholds (0-255) for "dark" and "bright" images.
DARK, BRIGHT = 80.0, 170.0
#: Mean absolute Laplacian below which an image reads as blurry.
BLURRY = 4.0
#: Chroma below which a colour is called grey.
GREY_CHROMA = 0.12


def colour_name(rgb: np.ndarray) -> str:
    """A coarse everyday name for an RGB colour in [0, 255]."""
    r, g, b = (float(v) / 255 for v in rgb)
    h, lum, s = colorsys.rgb_to_hls(r, g, b)
    if s < GREY_CHROMA or max(r, g, b) - min(r, g, b) < 0.05:
        return "grey" if 0.25 < lum < 0.75 else ("dark grey" if lum <= 0.25 else "pale grey")
    hue = h * 360
    names = (
        (20, "reddish"),
        (45, "brownish"),
        (70, "yellowish"),
        (160, "greenish"),
        (200, "teal"),
        (260, "bluish"),
        (320, "purplish"),
        (360, "reddish"),
    )
    name = next(n for bound, n in names if hue < bound)
    if name in ("yellowish", "reddish") and lum < 0.4:
        name = "brownish"
    return name


def visual_notes(img: np.ndarray) -> list[str]:
    """Phrases about the pixels themselves: tone, brightness, sharpness."""
    x = img.astype(np.float32)
    notes = [colour_name(x.reshape(-1, 3).mean(0))]
    lum = x.mean()
    if lum < DARK:
        notes.append("dark")
    elif lum > BRIGHT:
        notes.append("bright")
    g = x.mean(-1)
    lap = np.abs(4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]).mean()
    if lap < BLURRY:
        notes.append("blurry")
    return notes


def caption(facts: list[str], img: np.ndarray, rng: np.random.Generator) -> str:
    """Compose one caption from scene facts and the final image.

    Args:
        facts: Recipe facts, most defining first.
        img: The final ``[64, 64, 3]`` uint8 image.
        rng: The image's generator (chooses wording and which facts to mention).

    Returns:
        A one-sentence lower-case description without the class name.
    """
    k = int(rng.integers(2, 4)) if len(facts) >= 2 else len(facts)
    chosen = [facts[0]] + [facts[i] for i in sorted(rng.permutation(np.arange(1, len(facts)))[: k - 1])]
    body = chosen[0] if len(chosen) == 1 else ", ".join(chosen[:-1]) + " and " + chosen[-1]
    tone, *extra = visual_notes(img)
    text = OPENINGS[int(rng.integers(len(OPENINGS)))].format(body)
    text += ", " + TONE[int(rng.integers(len(TONE)))].format(tone)
    if extra:
        text += ", " + " and ".join(extra)
    return text
