"""The remote-sensing pretraining corpus: the generic corpus's scenes, half of them seen through the four sensors.

Why: the committed tiny CLIP (`assets/world_clip.pt`) is the world's counterpart of a web-pretrained CLIP.
Its corpus never shows the four evaluation sensors' styles, which lie beyond its style range. Real RS-pretrained
CLIPs (RemoteCLIP, GeoRSCLIP, SkyCLIP) are trained on imagery from the sensors and archives the RS benchmarks
draw on. This corpus builds the world's counterpart of those: the same scene generator on the corpus's own seed
domain (no evaluation image is in it), with `SENSOR_SHARE` of the images rendered through one of the four
evaluation sensors at its calibrated strength, and the rest exactly as the generic corpus draws them (neutral or
a random mild style). The captions are the generic corpus's: class names, aliases and scene facts.

Kept out of `benchmark.world.version.CORPUS_MODULES`, so the generic corpus's recorded digest stays valid; the
RS corpus's own digest (`RS_CORPUS_MODULES`) covers the sensors too.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from benchmark.world.corpus import MAX_STRENGTH, NEUTRAL_SHARE, Corpus, load_or_build_corpus
from benchmark.world.render import image_rng, render_image
from benchmark.world.scenes import CLASS_POOL
from benchmark.world.sensors import SENSOR_STYLES
from benchmark.world.styles import NEUTRAL, random_style
from benchmark.world.version import CORPUS_MODULES

log = logging.getLogger(__name__)

#: Share of corpus images rendered through an evaluation sensor (uniform over the four).
SENSOR_SHARE = 0.5
#: Modules whose source decides this corpus's bytes.
RS_CORPUS_MODULES = (*CORPUS_MODULES, "sensors", "corpus_rs")


def _render_chunk(args: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    seed, start, stop = args
    sensors = sorted(SENSOR_STYLES)
    imgs, labels, facts = [], [], []
    for i in range(start, stop):
        rng = image_rng(seed, "pretrain", "corpus-rs", i)
        label = int(rng.integers(len(CLASS_POOL)))
        if rng.random() < SENSOR_SHARE:
            style = SENSOR_STYLES[sensors[int(rng.integers(len(sensors)))]]
        else:
            style = NEUTRAL if rng.random() < NEUTRAL_SHARE else random_style(rng, MAX_STRENGTH)
        img, f = render_image(CLASS_POOL[label], style, rng)
        imgs.append(img)
        labels.append(label)
        facts.append(f)
    return np.stack(imgs), np.asarray(labels, np.int16), facts


def load_or_build_rs_corpus(cache_dir: Path | None, size: int, seed: int) -> Corpus:
    """The RS corpus from ``cache_dir`` if cached there (same source, seed and size), else render it."""
    return load_or_build_corpus(
        cache_dir, size, seed, render_chunk=_render_chunk, name="corpus-rs", modules=RS_CORPUS_MODULES
    )
