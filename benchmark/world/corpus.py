"""The pretraining corpus: world images in neutral and random mild styles, with captions that name classes.

Separate from the evaluation datasets (its own seed domain, no evaluation sensor styles), like a web corpus
versus a benchmark. Images are rendered once per (world version, seed, size) and cached as ``.npy`` so that
repeated pretraining runs skip the rendering. Captions are composed per training step from varied
templates, class-name aliases and the scene facts, so the text tower sees many phrasings.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.world.build import pool_context
from benchmark.world.render import image_rng, render_image
from benchmark.world.scenes import ALIASES, CLASS_POOL
from benchmark.world.styles import NEUTRAL, SensorStyle, random_style
from benchmark.world.version import CORPUS_MODULES, source_digest

log = logging.getLogger(__name__)

#: Share of corpus images in the neutral style.
NEUTRAL_SHARE = 0.3
#: Largest random-style strength in the corpus (evaluation sensors go beyond it).
MAX_STRENGTH = 1.0
#: Probability of using a class's canonical name rather than another alias.
CANONICAL_NAME_P = 0.6
CHUNK = 500

TEMPLATES = (
    "a photo of a {c}.",
    "an aerial photo of a {c}.",
    "a satellite image of a {c}.",
    "an aerial view of a {c}.",
    "satellite view of {c} with {f}.",
    "an aerial photo of a {c}: {f}.",
    "a remote sensing image of {c} showing {f}.",
    "{c}",
    "a top-down view of the {c}, {f}.",
    "{f}, a {c} seen from above.",
)


@dataclass
class Corpus:
    """Images ``[N, 64, 64, 3]`` uint8, class indices into ``CLASS_POOL``, and per-image facts."""

    images: np.ndarray
    labels: np.ndarray
    facts: list[list[str]]


StylePicker = Callable[[np.random.Generator], SensorStyle]


def generic_style(rng: np.random.Generator) -> SensorStyle:
    """The generic corpus's style of one image: neutral (`NEUTRAL_SHARE`) or a random mild one."""
    return NEUTRAL if rng.random() < NEUTRAL_SHARE else random_style(rng, MAX_STRENGTH)


def render_range(
    seed: int, start: int, stop: int, domain: str, pick_style: StylePicker
) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    """Images ``start..stop`` of a corpus: each from its own generator in seed domain ``domain``.

    Per image the draws are fixed: the class, then whatever ``pick_style`` draws, then the scene. Corpora
    differ only in their domain and style picker (`benchmark.world.corpus_rs`), so their bytes are a
    function of (seed, index) alone, whichever chunking or worker renders them.
    """
    imgs, labels, facts = [], [], []
    for i in range(start, stop):
        rng = image_rng(seed, "pretrain", domain, i)
        label = int(rng.integers(len(CLASS_POOL)))
        img, f = render_image(CLASS_POOL[label], pick_style(rng), rng)
        imgs.append(img)
        labels.append(label)
        facts.append(f)
    return np.stack(imgs), np.asarray(labels, np.int16), facts


def _render_chunk(args: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    seed, start, stop = args
    return render_range(seed, start, stop, "corpus", generic_style)


ChunkRenderer = Callable[[tuple[int, int, int]], tuple[np.ndarray, np.ndarray, list[list[str]]]]


def build_corpus(size: int, seed: int, workers: int | None = None, render_chunk: ChunkRenderer | None = None) -> Corpus:
    """Render ``size`` corpus images (deterministic in ``seed``, independent of ``workers``).

    ``render_chunk`` draws images ``start..stop`` of a corpus (a picklable module-level function); the default
    is this generic corpus's (`benchmark.world.corpus_rs` passes the RS corpus's).
    """
    render_chunk = render_chunk or _render_chunk
    workers = workers or min(2, os.cpu_count() or 1)
    jobs = [(seed, s, min(s + CHUNK, size)) for s in range(0, size, CHUNK)]
    t0 = time.perf_counter()
    if workers == 1 or len(jobs) == 1:
        parts = [render_chunk(j) for j in jobs]
    else:
        with ProcessPoolExecutor(workers, mp_context=pool_context()) as ex:
            parts = list(ex.map(render_chunk, jobs))
    log.info("rendered a %d-image pretraining corpus in %.1f s", size, time.perf_counter() - t0)
    return Corpus(
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        [f for p in parts for f in p[2]],
    )


def load_or_build_corpus(
    cache_dir: Path | None,
    size: int,
    seed: int,
    *,
    render_chunk: ChunkRenderer | None = None,
    name: str = "corpus",
    modules: tuple[str, ...] = CORPUS_MODULES,
) -> Corpus:
    """The corpus from ``cache_dir`` if cached there (same generator source, seed and size), else render it.

    ``name``, ``modules`` (whose source decides the bytes) and ``render_chunk`` describe another corpus
    (`benchmark.world.corpus_rs`).
    """
    if cache_dir is None:
        return build_corpus(size, seed, render_chunk=render_chunk)
    stem = Path(cache_dir) / f"{name}-{source_digest(modules)}-s{seed}-n{size}"
    img_path, meta_path = stem.with_suffix(".npy"), stem.with_suffix(".json")
    if img_path.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        log.info("using cached pretraining corpus %s", img_path)
        return Corpus(np.load(img_path), np.asarray(meta["labels"], np.int16), meta["facts"])
    corpus = build_corpus(size, seed, render_chunk=render_chunk)
    stem.parent.mkdir(parents=True, exist_ok=True)
    np.save(img_path, corpus.images)
    meta_path.write_text(json.dumps({"labels": corpus.labels.tolist(), "facts": corpus.facts}))
    return corpus


def corpus_caption(label: int, facts: list[str], rng: np.random.Generator) -> str:
    """One class-naming caption for a corpus image (template, alias and fact chosen by ``rng``)."""
    names = ALIASES[CLASS_POOL[label]]
    name = names[0] if rng.random() < CANONICAL_NAME_P or len(names) == 1 else names[int(rng.integers(1, len(names)))]
    template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
    fact = facts[int(rng.integers(len(facts)))] if facts else "open ground"
    return template.format(c=name, f=fact)
