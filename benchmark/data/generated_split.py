"""A deterministic split for a dataset folder that has images but no split file.

Why: the reference code regenerates splits when the JSON is absent, and its generators are broken
(`read_and_split_data` returns None for five datasets) or leaky (PatternNet sets test = val, METHODS
§5.5-5). Here a missing split file gives one documented, disjoint, reproducible split, and every run
on it is tagged as generated (its numbers are not comparable with published ones).

The rule (GENERATOR_VERSION 1):

* Classes are the sub-folders of `<dataset>/images/` that hold at least one image file (extensions in
  `IMAGE_EXTENSIONS`, files directly inside the class folder). Label order: the dataset's known class
  order (`DatasetSpec.classnames`, i.e. the published one) when the folder names are exactly those
  classes, so base/new stay the published halves; otherwise the folder names **sorted alphabetically**.
* Per class, the files are sorted by name and shuffled with `random.Random(f"{SEED}:{classname}")`,
  SEED = 0 (a per-class stream: adding a class does not move the others). Then
  n_train = max(1, floor(0.5 n)), n_val = floor(0.2 n), test = the rest: the 50/20/30 integer split of
  the reference's MLRSNet generator (`mlrsnet.py`). The three lists are disjoint by construction.
* The split is written in the public JSON format under
  `cache_dir()/splits/<dataset>/<digest>.json`, never into the user's data root; `digest` is the
  sha256 (first 16 hex) of the rule's parameters, the label order and the sorted image listing, so a
  changed folder gives a new file and an unchanged one reuses it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from collections.abc import Sequence
from pathlib import Path

from benchmark.errors import UsageError
from benchmark.paths import replace_atomically

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1
SEED = 0
RATIOS = (0.5, 0.2, 0.3)  # train / val / test, per class
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")


def list_images(image_dir: Path) -> dict[str, list[str]]:
    """Image files per class folder: {folder name: sorted file names}, folders without images left out."""
    listing: dict[str, list[str]] = {}
    with os.scandir(image_dir) as entries:
        folders = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    for folder in folders:
        with os.scandir(image_dir / folder) as entries:
            files = sorted(
                e.name
                for e in entries
                if e.is_file() and not e.name.startswith(".") and e.name.lower().endswith(IMAGE_EXTENSIONS)
            )
        if files:
            listing[folder] = files
    return listing


def label_order(folders: Sequence[str], known: Sequence[str]) -> tuple[tuple[str, ...], str]:
    """The class order and how it was chosen ("known" or "alphabetical")."""
    if known and sorted(known) == sorted(folders) and len(set(known)) == len(known):
        return tuple(known), "known"
    return tuple(sorted(folders)), "alphabetical"


def split_counts(n: int) -> tuple[int, int, int]:
    """(train, val, test) sizes of a class with `n` images: 50/20/30 with integer floors, >= 1 train."""
    n_train = max(1, int(n * RATIOS[0]))
    n_val = min(int(n * RATIOS[1]), n - n_train)
    return n_train, n_val, n - n_train - n_val


def generate_split(listing: dict[str, list[str]], classes: Sequence[str]) -> dict[str, list[list]]:
    """The split JSON object for `listing` with labels in the order of `classes`."""
    split: dict[str, list[list]] = {"train": [], "val": [], "test": []}
    for label, name in enumerate(classes):
        files = [f"{name}/{file}" for file in listing[name]]
        random.Random(f"{SEED}:{name}").shuffle(files)
        n_train, n_val, _ = split_counts(len(files))
        parts = (files[:n_train], files[n_train : n_train + n_val], files[n_train + n_val :])
        for subset, paths in zip(("train", "val", "test"), parts):
            split[subset].extend([path, label, name] for path in paths)
    return split


def listing_digest(listing: dict[str, list[str]], classes: Sequence[str]) -> str:
    """Digest of the rule, the label order and the image listing (names the cached file)."""
    digest = hashlib.sha256()
    digest.update(json.dumps([GENERATOR_VERSION, SEED, RATIOS, list(classes)]).encode())
    for name in sorted(listing):
        for file in listing[name]:
            digest.update(f"{name}/{file}\n".encode())
    return digest.hexdigest()[:16]


def ensure_generated_split(
    dataset: str, image_dir: Path, cache: Path, known_classes: Sequence[str] = ()
) -> tuple[Path, str]:
    """Write (or reuse) the generated split of a dataset folder.

    Args:
        dataset: dataset key (folder name under `cache`).
        image_dir: the dataset's image folder.
        cache: folder for generated splits (`cache_dir()/splits`).
        known_classes: the dataset's known class order, used when the folders match it.

    Returns:
        The path of the split file and how the label order was chosen ("known" or "alphabetical").

    Raises:
        UsageError: when there is no image folder or no image in it.
    """
    if not image_dir.is_dir():
        raise UsageError(f"no images folder to generate a split from: {image_dir}")
    listing = list_images(image_dir)
    if not listing:
        raise UsageError(f"no class folder with images to generate a split from under {image_dir}")
    classes, order = label_order(list(listing), known_classes)
    path = Path(cache) / dataset / f"{listing_digest(listing, classes)}.json"
    if not path.is_file():
        text = json.dumps(generate_split(listing, classes), separators=(",", ":"))
        # concurrent workers write identical bytes; each replaces the file whole
        replace_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return path, order
