"""Datasets as a spec table plus one generic loader (no class per dataset).

A dataset lives at `<root>/<folder>/` with images under `images/` and a split file in the format of
`benchmark.data.splits`. The world profile and the paper profile use the same loader; only the
table and the root differ. A dataset folder with images but no split file gets a deterministic generated
split (`benchmark.data.generated_split`, written under the cache, never into the data root), and the
`Dataset` says so (`generated_split`, `split_status`, `split_tags`) so runs on it can be told apart.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from benchmark.data.splits import Item, Split, read_split
from benchmark.errors import UsageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset lives and what is known about it.

    Attributes:
        name: registry key, as in the published tables (`patternnet`, `rsicdv2`, ...).
        folder: the dataset folder under the data root (`PatternNet`).
        split_file: the split JSON inside the folder (`patternnet.json`).
        image_dir: the image folder inside the dataset folder.
        captions_file: a JSON `{relative_path: caption}` shipped with the dataset, if any.
        canonical_sha256: digest of the public split file, when one is known.
        classnames: the known class order (label 0 first), when known.
        class_folders: the image folder of each class in `classnames` order, where folders and names differ
            (EuroSAT: CoOp names `AnnualCrop/` "Annual Crop Land"); a generated split needs it to name its
            classes as the published split does. Empty: each folder is its class name.
        source: citation of the split file (or of the dataset, when it has no published split).
    """

    name: str
    folder: str
    split_file: str
    image_dir: str = "images"
    captions_file: str | None = None
    canonical_sha256: str | None = None
    classnames: tuple[str, ...] = field(default=(), repr=False)
    class_folders: tuple[str, ...] = field(default=(), repr=False)
    source: str = ""


SPLIT_STATUSES = ("canonical", "modified", "unknown", "generated")


@dataclass
class Dataset:
    """A dataset resolved against a data root, with its split read and validated."""

    spec: DatasetSpec
    root: Path  # the dataset folder
    split: Split
    generated_split: bool = False  # True: the split file was absent and a generated one is used
    split_path: Path | None = None  # the split file actually read

    @property
    def name(self) -> str:
        """The dataset key."""
        return self.spec.name

    @property
    def classnames(self) -> tuple[str, ...]:
        """Class names in label order."""
        return self.split.classnames

    @property
    def canonical(self) -> bool | None:
        """Whether the split file is the public one (None when no digest is known; False when generated)."""
        if self.generated_split:
            return False
        if self.spec.canonical_sha256 is None:
            return None
        return self.split.sha256 == self.spec.canonical_sha256

    @property
    def split_status(self) -> str:
        """One of `SPLIT_STATUSES`: the public file, a modified file, no known digest, or generated."""
        if self.generated_split:
            return "generated"
        canonical = self.canonical
        return "unknown" if canonical is None else "canonical" if canonical else "modified"

    def split_tags(self) -> dict[str, str]:
        """Run tags describing the split: `split_canonical` (yes/no/unknown) and `split_generated` (yes/no)."""
        canonical = self.canonical
        return {
            "split_canonical": "unknown" if canonical is None else "yes" if canonical else "no",
            "split_generated": "yes" if self.generated_split else "no",
        }

    def image_path(self, item: Item) -> Path:
        """Absolute path of an item's image."""
        return self.root / self.spec.image_dir / item.path

    @cached_property
    def captions(self) -> dict[str, str]:
        """Dataset-provided captions by relative path (empty when the dataset ships none)."""
        if not self.spec.captions_file:
            return {}
        path = self.root / self.spec.captions_file
        if not path.is_file():
            raise UsageError(f"captions file not found: {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"captions file {path}: malformed JSON ({exc})") from None
        if not isinstance(data, dict):
            raise UsageError(f"captions file {path}: expected an object {{relative_path: caption}}")
        return data


def open_dataset(spec: DatasetSpec, data_root: Path, *, split_cache: Path | None = None) -> Dataset:
    """Resolve `spec` under `data_root` and read its split (UsageError on any problem).

    When the split file is absent but the images folder is there, a generated split is used (written under
    `split_cache`, default `cache_dir()/splits`) and a warning is logged.
    """
    folder = Path(data_root) / spec.folder
    if not folder.is_dir():
        raise UsageError(f"dataset {spec.name}: folder not found: {folder}")
    path = folder / spec.split_file
    if path.exists():
        dataset = Dataset(spec, folder, read_split(path), split_path=path)
    else:
        dataset = _open_generated(spec, folder, split_cache)
    if spec.classnames and tuple(spec.classnames) != dataset.split.classnames:
        log.warning("dataset %s: class list differs from the known one", spec.name)
    return dataset


def _open_generated(spec: DatasetSpec, folder: Path, split_cache: Path | None) -> Dataset:
    """The dataset with a generated split, when its split file is absent."""
    from benchmark.data.generated_split import RATIOS, SEED, ensure_generated_split
    from benchmark.paths import cache_dir

    missing = folder / spec.split_file
    cache = Path(split_cache) if split_cache is not None else cache_dir() / "splits"
    try:
        path, order = ensure_generated_split(
            spec.name, folder / spec.image_dir, cache, spec.classnames, spec.class_folders
        )
    except UsageError as exc:
        raise UsageError(f"dataset {spec.name}: split file not found: {missing}, and {exc}") from None
    log.warning(
        "dataset %s: split file %s not found; using a GENERATED split (seed %d, %d/%d/%d per class, %s class order)"
        " cached at %s; its results are not comparable with published ones",
        spec.name,
        missing,
        SEED,
        *(round(100 * r) for r in RATIOS),
        order,
        path,
    )
    return Dataset(spec, folder, read_split(path), generated_split=True, split_path=path)
