"""Find missing, unreadable or corrupt images before a sweep starts, not in the middle of it.

Every image listed in the split file of a dataset a sweep reads (train, val and test: the few-shot
draw depends on the seed, and the test lists are evaluated whole) is decoded once. JPEGs are
decoded in draft mode (1/8 scale), which still reads every byte of the entropy-coded data, so
truncated files are caught at a fraction of a full decode. A passed check is remembered in a small
JSON marker under the cache, keyed by the dataset folder and split digest and valid while no
listed file changes size or mtime, so reruns pay only one `stat` per image.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmark.data.catalog import Dataset
from benchmark.data.splits import SUBSETS
from benchmark.errors import UsageError
from benchmark.paths import replace_atomically

log = logging.getLogger(__name__)

DRAFT_SIZE = (64, 64)
MAX_THREADS = 8  # PIL releases the GIL while decoding


def decode(path: Path) -> None:
    """Decode an image, JPEGs at 1/8 scale; raises whatever PIL raises for a broken file.

    `Image.draft` still reads every compressed byte, so a truncated file fails.
    """
    from PIL import Image

    with Image.open(path) as img:
        img.draft("RGB", DRAFT_SIZE)
        img.load()


def listed_paths(dataset: Dataset) -> list[str]:
    """Every distinct image path of the split file, in split order (train, val, test)."""
    return list(dict.fromkeys(item.path for subset in SUBSETS for item in dataset.split.subset(subset)))


def _verify(path: Path) -> str | None:
    """None if the image decodes, else a one-line reason."""
    try:
        decode(path)
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for broken files
        text = " ".join(str(exc).replace(f" '{path}'", "").split()) or type(exc).__name__
        return text[:200]
    return None


def _fingerprint(dataset: Dataset, relpaths: list[str]) -> str:
    """Digest of every listed file's (path, size, mtime); UsageError naming the first missing one."""
    digest = hashlib.sha256()
    for rel in relpaths:
        path = dataset.root / dataset.spec.image_dir / rel
        try:
            st = path.stat()
        except OSError:
            split_file = dataset.root / dataset.spec.split_file
            raise UsageError(f"dataset {dataset.name}: image not found: {path} (listed in {split_file})") from None
        digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _marker(dataset: Dataset, cache_root: Path) -> Path:
    key = hashlib.sha256(f"{dataset.root.resolve()}|{dataset.split.sha256}".encode()).hexdigest()[:24]
    return cache_root / "checks" / f"images-{dataset.name}-{key}.json"


def check_dataset_images(dataset: Dataset, cache_root: Path) -> None:
    """Decode every image a dataset's split file lists (once per version of the files).

    Raises:
        UsageError: naming the first missing, unreadable or corrupt image, in split-file order.
    """
    relpaths = listed_paths(dataset)
    fingerprint = _fingerprint(dataset, relpaths)
    marker = _marker(dataset, cache_root)
    try:
        if json.loads(marker.read_text()).get("fingerprint") == fingerprint:
            return
    except (OSError, ValueError, AttributeError):
        pass
    start = time.perf_counter()
    paths = [dataset.root / dataset.spec.image_dir / rel for rel in relpaths]
    threads = max(1, min(MAX_THREADS, os.cpu_count() or 1))
    with ThreadPoolExecutor(threads) as pool:
        try:
            for path, problem in zip(paths, pool.map(_verify, paths)):
                if problem is not None:
                    raise UsageError(f"dataset {dataset.name}: corrupt or unreadable image {path} ({problem})")
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    record = {"fingerprint": fingerprint, "images": len(paths), "checked_at": time.time()}
    replace_atomically(marker, lambda tmp: Path(tmp).write_text(json.dumps(record)))
    log.info("checked %d images of %s in %.1f s", len(paths), dataset.name, time.perf_counter() - start)


def check_images(datasets: Iterable[Dataset], cache_root: Path) -> None:
    """`check_dataset_images` for each dataset."""
    for dataset in datasets:
        check_dataset_images(dataset, cache_root)
