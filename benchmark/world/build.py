"""Writing the world to disk in the real datasets' layout, and ``ensure_world`` (atomic, idempotent).

Layout per dataset (METHODS.md 6.6): ``<root>/<Folder>/images/<class>/<file>.png``, the split JSON
``<root>/<Folder>/<split_file>`` = ``{"train": [[relpath, label, classname], ...], "val": ..., "test": ...}``
with relpaths relative to ``images/`` and items grouped by label in label order, and
``<root>/<Folder>/captions.json`` = ``{relpath: caption}``. Work is split per (dataset, class) over a
process pool; every image depends only on its own seed, so the bytes do not depend on scheduling.
"""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import os
import shutil
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from benchmark.world.datasets import (
    IMBALANCED,
    SPLIT_SIZES,
    WORLD_DATASETS,
    WORLD_SEED,
    WorldDatasetSpec,
    file_name,
)
from benchmark.world.render import image_rng, render_captioned
from benchmark.world.sensors import SENSOR_STYLES
from benchmark.world.version import WORLD_VERSION

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
MANIFEST = "world.json"
#: zlib level for PNGs: fixed so the bytes are reproducible.
PNG_COMPRESS_LEVEL = 6


def pool_context() -> multiprocessing.context.BaseContext:
    """Start method of the render workers: fork where available, else spawn.

    Why fork: spawn re-imports the caller's ``__main__``, which breaks (and re-runs) scripts without an
    ``if __name__ == "__main__"`` guard. Fork is safe here because the workers only run numpy and PIL;
    the parent's torch/OpenMP threads, the usual hazard of forking, are never touched in the child.
    """
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def png_bytes(img: np.ndarray) -> bytes:
    """Encode an RGB uint8 image as PNG with fixed settings and no metadata chunks."""
    buf = io.BytesIO()
    Image.fromarray(img, mode="RGB").save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def class_counts(spec: WorldDatasetSpec, label: int, sizes: tuple[int, int, int], seed: int) -> list[int]:
    """Per-split image counts of one class; imbalanced datasets vary them per class, deterministically."""
    spread = IMBALANCED.get(spec.name, 0.0)
    if not spread:
        return list(sizes)
    rng = np.random.default_rng([seed, label, len(spec.name)])
    f = 1 + spread * rng.uniform(-1, 1)
    return [max(1, int(round(n * f))) for n in sizes]


def _write_class(args: tuple[str, int, Path, tuple[int, int, int], int, tuple[str, ...]]) -> dict:
    """Render and write one class of one dataset; returns its split items and captions.

    Only images of the splits in ``args[-1]`` are rendered (tests that need just the test split); the split
    lists always cover every split, so they do not depend on that choice.
    """
    key, label, root, sizes, seed, render_splits = args
    spec = WORLD_DATASETS[key]
    name, recipe = spec.classnames[label], spec.recipes[label]
    style = SENSOR_STYLES[spec.style]
    counts = class_counts(spec, label, sizes, seed)
    total = sum(counts)
    # Which files land in which split: a per-class permutation, as the real JSONs list shuffled files.
    order = np.random.default_rng([seed, label, 7]).permutation(total)
    bounds = np.cumsum([0] + counts)
    split_of = {int(order[j]): s for k, s in enumerate(SPLITS) for j in range(bounds[k], bounds[k + 1])}
    out_dir = root / spec.folder / "images" / name
    out_dir.mkdir(parents=True, exist_ok=True)
    captions: dict[str, str] = {}
    for i in range(total):
        if split_of[i] not in render_splits:
            continue
        img, text = render_captioned(recipe, style, image_rng(seed, key, name, i))
        fname = file_name(spec, name, i)
        (out_dir / fname).write_bytes(png_bytes(img))
        captions[f"{name}/{fname}"] = text
    rel = [f"{name}/{file_name(spec, name, int(i))}" for i in order]
    split_items = {s: [[rel[j], label, name] for j in range(bounds[k], bounds[k + 1])] for k, s in enumerate(SPLITS)}
    return {"key": key, "label": label, "items": split_items, "captions": captions}


def build_world(
    root: Path,
    *,
    keys: Iterable[str] | None = None,
    sizes: tuple[int, int, int] = SPLIT_SIZES,
    seed: int = WORLD_SEED,
    workers: int | None = None,
    splits: Iterable[str] = SPLITS,
) -> dict:
    """Generate datasets into ``root`` (which should be empty) and return a manifest.

    Args:
        root: Output data root.
        keys: Dataset keys to build (default all eight).
        sizes: Images per class for (train, val, test).
        seed: World seed.
        workers: Processes (default: up to 2, the CPU count permitting); 1 renders in-process.
        splits: Splits whose images are rendered (all by default; split files always list all).

    Returns:
        The manifest written to ``root/world.json``.
    """
    keys = list(keys) if keys is not None else list(WORLD_DATASETS)
    workers = workers or min(2, os.cpu_count() or 1)
    jobs = [
        (k, lab, root, tuple(sizes), seed, tuple(splits))
        for k in keys
        for lab in range(len(WORLD_DATASETS[k].classnames))
    ]
    t0 = time.perf_counter()
    if workers == 1:
        results = [_write_class(j) for j in jobs]
    else:
        with ProcessPoolExecutor(workers, mp_context=pool_context()) as ex:
            results = list(ex.map(_write_class, jobs, chunksize=4))
    counts = {}
    for k in keys:
        spec = WORLD_DATASETS[k]
        mine = sorted((r for r in results if r["key"] == k), key=lambda r: r["label"])
        split = {s: [it for r in mine for it in r["items"][s]] for s in SPLITS}
        caps = {
            rel: r["captions"][rel] for r in mine for s in SPLITS for rel, _, _ in r["items"][s] if rel in r["captions"]
        }
        folder = root / spec.folder
        (folder / spec.split_file).write_text(json.dumps(split))
        (folder / spec.captions_file).write_text(json.dumps(caps, indent=0, ensure_ascii=True))
        counts[k] = {s: len(v) for s, v in split.items()}
    manifest = {"version": WORLD_VERSION, "seed": seed, "sizes": list(sizes), "datasets": counts}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    n = sum(sum(v.values()) for v in counts.values())
    log.info("generated %d images in %d datasets in %.1f s", n, len(keys), time.perf_counter() - t0)
    return manifest


def ensure_world(cache_dir: Path, **build_kwargs) -> Path:
    """See :func:`benchmark.world.ensure_world`; ``build_kwargs`` go to :func:`build_world` (tests)."""
    parent = cache_dir / "world"
    root = parent / WORLD_VERSION
    if (root / MANIFEST).is_file():
        log.debug("world %s already at %s", WORLD_VERSION, root)
        return root
    parent.mkdir(parents=True, exist_ok=True)
    if root.exists():
        # A folder without a manifest cannot come from us (we rename complete folders only): set it aside.
        log.warning("incomplete world folder %s; regenerating", root)
        shutil.rmtree(root, ignore_errors=True)
    tmp = parent / f".tmp-{WORLD_VERSION}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    log.info("generating the embedded RS world %s into %s", WORLD_VERSION, root)
    try:
        build_world(tmp, **build_kwargs)
        try:
            os.rename(tmp, root)
        except OSError:
            if not (root / MANIFEST).is_file():
                raise
            log.info("another process generated world %s first; using its copy", WORLD_VERSION)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root
