"""Reading and validating split files in the format of the public RS split JSONs.

Format (APPLeNet `json/*.json`, used by BiMoRS, C-SAW, FrogDogNet): `{"train"|"val"|"test":
[[relative_path, label, classname], ...]}` with paths relative to `<Dataset>/images/`. The label
order in the file, not the alphabet, decides class order and hence the base/new split.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from dataclasses import dataclass
from pathlib import Path

from benchmark.errors import UsageError

SUBSETS = ("train", "val", "test")


@dataclass(frozen=True)
class Item:
    """One labelled image: `path` is relative to the dataset's image folder, as in the split file."""

    path: str
    label: int
    classname: str


@dataclass(frozen=True)
class Split:
    """The three lists of a split file plus what is derived from them."""

    train: tuple[Item, ...]
    val: tuple[Item, ...]
    test: tuple[Item, ...]
    classnames: tuple[str, ...]  # indexed by label id
    sha256: str  # digest of the file bytes

    def subset(self, name: str) -> tuple[Item, ...]:
        """The list named `name` ("train", "val" or "test")."""
        return getattr(self, name)


def safe_relpath(path: str) -> bool:
    """True if `path` stays inside the folder it is relative to (no absolute path, no `..`)."""
    if not path or path.startswith(("/", "\\")) or ":" in path.split("/")[0]:
        return False
    norm = posixpath.normpath(path.replace("\\", "/"))
    return not (norm == ".." or norm.startswith("../") or norm == ".")


def parse_split(data: object, *, source: str, sha256: str = "") -> Split:
    """Validate the decoded JSON of a split file and build a `Split`.

    Raises:
        UsageError: naming the file and the first problem found (missing list, malformed item,
            path escaping the image folder, a label with two class names, a class with no
            training image, non-contiguous labels).
    """
    if not isinstance(data, dict) or any(k not in data for k in SUBSETS):
        raise UsageError(f"split file {source}: expected an object with keys train, val, test")
    names: dict[int, str] = {}
    lists: dict[str, tuple[Item, ...]] = {}
    for subset in SUBSETS:
        entries = data[subset]
        if not isinstance(entries, list):
            raise UsageError(f"split file {source}: {subset!r} is not a list")
        items = []
        for pos, entry in enumerate(entries):
            if (
                not isinstance(entry, (list, tuple))
                or len(entry) != 3
                or not isinstance(entry[0], str)
                or isinstance(entry[1], bool)
                or not isinstance(entry[1], int)
                or not isinstance(entry[2], str)
            ):
                raise UsageError(f"split file {source}: {subset}[{pos}] is not [path, label, classname]: {entry!r}")
            path, label, classname = entry
            if not safe_relpath(path):
                raise UsageError(f"split file {source}: {subset}[{pos}] path {path!r} escapes the dataset root")
            if label < 0:
                raise UsageError(f"split file {source}: {subset}[{pos}] has a negative label {label}")
            known = names.setdefault(label, classname)
            if known != classname:
                raise UsageError(f"split file {source}: label {label} has two class names, {known!r} and {classname!r}")
            items.append(Item(path, label, classname))
        lists[subset] = tuple(items)
    n_classes = max(names) + 1 if names else 0
    missing = sorted(set(range(n_classes)) - set(names))
    if not names or missing:
        raise UsageError(f"split file {source}: labels are not contiguous from 0 (missing {missing[:5]})")
    train_labels = {item.label for item in lists["train"]}
    empty = [names[label] for label in range(n_classes) if label not in train_labels]
    if empty:
        raise UsageError(f"split file {source}: class {empty[0]!r} has no training image")
    return Split(
        train=lists["train"],
        val=lists["val"],
        test=lists["test"],
        classnames=tuple(names[label] for label in range(n_classes)),
        sha256=sha256,
    )


def read_split(path: Path) -> Split:
    """Read and validate a split file; every problem becomes a one-line `UsageError`."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"split file not found: {path}")
    try:
        raw = path.read_bytes()
        data = json.loads(raw)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"split file {path}: malformed JSON ({exc})") from None
    return parse_split(data, source=str(path), sha256=hashlib.sha256(raw).hexdigest())
