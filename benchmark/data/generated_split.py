"""A deterministic split for a dataset folder that has images but no split file.

Why: the reference code regenerates splits when the JSON is absent, and its generators are broken
(`read_and_split_data` returns None for five datasets) or leaky (PatternNet sets test = val, METHODS
§5.5-5). Here a missing split file gives one documented, disjoint, reproducible split, and every run
on it is tagged as generated (its numbers are not comparable with published ones).

The rule (GENERATOR_VERSION 2):

* Classes are the sub-folders of `<dataset>/<image_dir>/` that hold at least one image file (extensions in
  `IMAGE_EXTENSIONS`, files directly inside the class folder). Label order: the dataset's known class
  order (`DatasetSpec.classnames`, i.e. the published or recorded one, through `class_folders` where the
  folders are named otherwise), so base/new stay the published halves. A folder set that is not exactly
  the known one keeps the known order for the known folders present, followed by any unknown folder
  **sorted alphabetically** (a subset's order does not depend on which folders the user happens to have;
  `data check` reports the difference). A dataset with no known order is sorted alphabetically.
  (Version 1 sorted every partial folder set alphabetically.)
* A class whose folder differs from its name (EuroSAT's `AnnualCrop/` is CoOp's "Annual Crop Land") is
  listed under the folder path and named by its known name.
* Per class, the files are sorted by name and shuffled with `random.Random(f"{SEED}:{folder}")` (the
  class folder), SEED = 0 (a per-class stream: adding a class does not move the others). Then
  n_train = max(1, floor(0.5 n)), n_val = floor(0.2 n), test = the rest: the 50/20/30 integer split of
  the reference's MLRSNet generator (`mlrsnet.py`). The three lists are disjoint by construction.
* The split is written in the public JSON format under
  `cache_dir()/splits/<dataset>/<digest>.json`, never into the user's data root; `digest` is the
  sha256 (first 16 hex) of the rule's parameters, the label order (and any folder-to-name renames) and
  the sorted image listing, so a changed folder gives a new file and an unchanged one reuses it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from collections.abc import Mapping, Sequence
from pathlib import Path

from benchmark.errors import UsageError
from benchmark.paths import replace_atomically

log = logging.getLogger(__name__)

GENERATOR_VERSION = 2
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
    """The class-folder order and how it was chosen ("known", "known, partial" or "alphabetical").

    Known folders keep the known order, unknown ones follow sorted, so a partial copy of a dataset is not
    relabelled alphabetically (which would move every published class to another label).
    """
    if not known or len(set(known)) != len(known):
        return tuple(sorted(folders)), "alphabetical"
    present = set(folders)
    ordered = tuple(name for name in known if name in present) + tuple(sorted(present - set(known)))
    return ordered, "known" if sorted(known) == sorted(folders) else "known, partial"


def split_counts(n: int) -> tuple[int, int, int]:
    """(train, val, test) sizes of a class with `n` images: 50/20/30 with integer floors, >= 1 train."""
    n_train = max(1, int(n * RATIOS[0]))
    n_val = min(int(n * RATIOS[1]), n - n_train)
    return n_train, n_val, n - n_train - n_val


def generate_split(
    listing: dict[str, list[str]], classes: Sequence[str], names: Mapping[str, str] | None = None
) -> dict[str, list[list]]:
    """The split JSON object for `listing` with labels in the order of the folders `classes`.

    `names` maps a folder to its class name where they differ; the shuffle is seeded by the folder, so
    renaming a class does not move its images.
    """
    names = names or {}
    split: dict[str, list[list]] = {"train": [], "val": [], "test": []}
    for label, folder in enumerate(classes):
        files = [f"{folder}/{file}" for file in listing[folder]]
        random.Random(f"{SEED}:{folder}").shuffle(files)
        n_train, n_val, _ = split_counts(len(files))
        parts = (files[:n_train], files[n_train : n_train + n_val], files[n_train + n_val :])
        name = names.get(folder, folder)
        for subset, paths in zip(("train", "val", "test"), parts):
            split[subset].extend([path, label, name] for path in paths)
    return split


def listing_digest(
    listing: dict[str, list[str]], classes: Sequence[str], names: Mapping[str, str] | None = None
) -> str:
    """Digest of the rule, the label order, the class names and the image listing (names the cached file)."""
    digest = hashlib.sha256()
    params: list = [GENERATOR_VERSION, SEED, RATIOS, list(classes)]
    if names:
        params.append(sorted(names.items()))
    digest.update(json.dumps(params).encode())
    for name in sorted(listing):
        for file in listing[name]:
            digest.update(f"{name}/{file}\n".encode())
    return digest.hexdigest()[:16]


def ensure_generated_split(
    dataset: str,
    image_dir: Path,
    cache: Path,
    known_classes: Sequence[str] = (),
    class_folders: Sequence[str] = (),
) -> tuple[Path, str]:
    """Write (or reuse) the generated split of a dataset folder.

    Args:
        dataset: dataset key (folder name under `cache`).
        image_dir: the dataset's image folder.
        cache: folder for generated splits (`cache_dir()/splits`).
        known_classes: the dataset's known class order (label 0 first), empty when unknown.
        class_folders: the image folder of each known class where folders and names differ (empty: the
            folders are the class names).

    Returns:
        The path of the split file and how the label order was chosen ("known", "known, partial" or
        "alphabetical").

    Raises:
        UsageError: when there is no image folder or no image in it.
        ValueError: when `class_folders` and `known_classes` differ in length.
    """
    if class_folders and len(class_folders) != len(known_classes):
        raise ValueError(f"{dataset}: {len(class_folders)} class folders for {len(known_classes)} classes")
    if not image_dir.is_dir():
        raise UsageError(f"no images folder to generate a split from: {image_dir}")
    listing = list_images(image_dir)
    if not listing:
        raise UsageError(f"no class folder with images to generate a split from under {image_dir}")
    names = dict(zip(class_folders, known_classes)) if class_folders else {}
    classes, order = label_order(list(listing), tuple(class_folders) or tuple(known_classes))
    path = Path(cache) / dataset / f"{listing_digest(listing, classes, names)}.json"
    if not path.is_file():
        text = json.dumps(generate_split(listing, classes, names), separators=(",", ":"))
        # concurrent workers write identical bytes; each replaces the file whole
        replace_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return path, order
