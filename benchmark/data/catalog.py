"""Datasets as a spec table plus one generic loader (no class per dataset).

A dataset lives at `<root>/<folder>/` with images under `images/` and a split file in the format of
`benchmark.data.splits`. The world profile and the paper profile use the same loader; only the
table and the root differ.
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
        source: citation of the split file.
    """

    name: str
    folder: str
    split_file: str
    image_dir: str = "images"
    captions_file: str | None = None
    canonical_sha256: str | None = None
    classnames: tuple[str, ...] = field(default=(), repr=False)
    source: str = ""


@dataclass
class Dataset:
    """A dataset resolved against a data root, with its split read and validated."""

    spec: DatasetSpec
    root: Path  # the dataset folder
    split: Split

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
        """Whether the split file is the public one (None when no digest is known)."""
        if self.spec.canonical_sha256 is None:
            return None
        return self.split.sha256 == self.spec.canonical_sha256

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


def open_dataset(spec: DatasetSpec, data_root: Path) -> Dataset:
    """Resolve `spec` under `data_root` and read its split (UsageError on any problem)."""
    folder = Path(data_root) / spec.folder
    if not folder.is_dir():
        raise UsageError(f"dataset {spec.name}: folder not found: {folder}")
    split = read_split(folder / spec.split_file)
    dataset = Dataset(spec, folder, split)
    if spec.classnames and tuple(spec.classnames) != split.classnames:
        log.warning("dataset %s: class list differs from the known one", spec.name)
    return dataset
