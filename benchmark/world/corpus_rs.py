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

from benchmark.world.corpus import Corpus, generic_style, load_or_build_corpus, render_range
from benchmark.world.sensors import SENSOR_STYLES
from benchmark.world.styles import SensorStyle
from benchmark.world.version import CORPUS_MODULES

log = logging.getLogger(__name__)

#: Share of corpus images rendered through an evaluation sensor (uniform over the four).
SENSOR_SHARE = 0.5
#: Modules whose source decides this corpus's bytes.
RS_CORPUS_MODULES = (*CORPUS_MODULES, "sensors", "corpus_rs")


_SENSORS = sorted(SENSOR_STYLES)


def _rs_style(rng: np.random.Generator) -> SensorStyle:
    """An evaluation sensor at its calibrated strength (`SENSOR_SHARE`), else the generic corpus's draw."""
    if rng.random() < SENSOR_SHARE:
        return SENSOR_STYLES[_SENSORS[int(rng.integers(len(_SENSORS)))]]
    return generic_style(rng)


def _render_chunk(args: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    seed, start, stop = args
    return render_range(seed, start, stop, "corpus-rs", _rs_style)


def load_or_build_rs_corpus(cache_dir: Path | None, size: int, seed: int) -> Corpus:
    """The RS corpus from ``cache_dir`` if cached there (same source, seed and size), else render it."""
    return load_or_build_corpus(
        cache_dir, size, seed, render_chunk=_render_chunk, name="corpus-rs", modules=RS_CORPUS_MODULES
    )
