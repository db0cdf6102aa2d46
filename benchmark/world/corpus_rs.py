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

import json
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from benchmark.world.build import pool_context
from benchmark.world.corpus import CHUNK, MAX_STRENGTH, NEUTRAL_SHARE, Corpus
from benchmark.world.render import image_rng, render_image
from benchmark.world.scenes import CLASS_POOL
from benchmark.world.sensors import SENSOR_STYLES
from benchmark.world.styles import NEUTRAL, random_style
from benchmark.world.version import CORPUS_MODULES, source_digest

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


def build_rs_corpus(size: int, seed: int, workers: int | None = None) -> Corpus:
    """Render ``size`` RS corpus images (deterministic in ``seed``, independent of ``workers``)."""
    workers = workers or min(2, os.cpu_count() or 1)
    jobs = [(seed, s, min(s + CHUNK, size)) for s in range(0, size, CHUNK)]
    t0 = time.perf_counter()
    if workers == 1 or len(jobs) == 1:
        parts = [_render_chunk(j) for j in jobs]
    else:
        with ProcessPoolExecutor(workers, mp_context=pool_context()) as ex:
            parts = list(ex.map(_render_chunk, jobs))
    log.info("rendered a %d-image RS pretraining corpus in %.1f s", size, time.perf_counter() - t0)
    return Corpus(
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        [f for p in parts for f in p[2]],
    )


def load_or_build_rs_corpus(cache_dir: Path | None, size: int, seed: int) -> Corpus:
    """The RS corpus from ``cache_dir`` if cached there (same source, seed and size), else render it."""
    if cache_dir is None:
        return build_rs_corpus(size, seed)
    stem = Path(cache_dir) / f"corpus-rs-{source_digest(RS_CORPUS_MODULES)}-s{seed}-n{size}"
    img_path, meta_path = stem.with_suffix(".npy"), stem.with_suffix(".json")
    if img_path.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        log.info("using cached RS pretraining corpus %s", img_path)
        return Corpus(np.load(img_path), np.asarray(meta["labels"], np.int16), meta["facts"])
    corpus = build_rs_corpus(size, seed)
    stem.parent.mkdir(parents=True, exist_ok=True)
    np.save(img_path, corpus.images)
    meta_path.write_text(json.dumps({"labels": corpus.labels.tolist(), "facts": corpus.facts}))
    return corpus
