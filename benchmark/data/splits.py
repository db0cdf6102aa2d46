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


ISSUE_KINDS = ("format", "malformed", "escaping", "labels", "conflict", "empty class")


@dataclass(frozen=True)
class SplitIssue:
    """One problem of a split file's content.

    `where` and `reason` locate and explain it for a listing (`where` is an entry such as `test[3]`, a
    label or a class name); `message` is the one-line text the raising validation reports.
    """

    kind: str  # one of ISSUE_KINDS
    where: str
    reason: str
    message: str


@dataclass
class SplitScan:
    """Every problem of a split file's content, plus the well-formed entries (for checking the rest)."""

    lists: dict[str, tuple[Item, ...]]
    names: dict[int, str]  # class name by label, first one seen
    issues: list[SplitIssue]


def _entry_ok(entry: object) -> bool:
    return (
        isinstance(entry, (list, tuple))
        and len(entry) == 3
        and isinstance(entry[0], str)
        and not isinstance(entry[1], bool)
        and isinstance(entry[1], int)
        and isinstance(entry[2], str)
    )


def scan_split(data: object) -> SplitScan:
    """Validate the decoded JSON of a split file, collecting every problem instead of stopping at one.

    The rules (each problem's kind): an object with lists train, val and test (`format`); every entry
    `[path, label, classname]` (`malformed`, the entry is left out); no path escaping the image folder
    (`escaping`); no negative label, labels contiguous from 0 (`labels`); one class name per label
    (`conflict`, once per extra name); every class with a training image (`empty class`). Issues come in
    that order per entry, entries in file order, then the label and class rules.
    """
    issues: list[SplitIssue] = []
    if not isinstance(data, dict) or any(k not in data for k in SUBSETS):
        text = "expected an object with keys train, val, test"
        return SplitScan({}, {}, [SplitIssue("format", "file", text, text)])
    for subset in SUBSETS:
        if not isinstance(data[subset], list):
            issues.append(SplitIssue("format", subset, "is not a list", f"{subset!r} is not a list"))
    if issues:
        return SplitScan({}, {}, issues)
    names: dict[int, str] = {}
    conflicts: set[tuple[int, str]] = set()
    lists: dict[str, tuple[Item, ...]] = {}
    for subset in SUBSETS:
        items = []
        for pos, entry in enumerate(data[subset]):
            where = f"{subset}[{pos}]"
            if not _entry_ok(entry):
                reason = f"is not [path, label, classname]: {entry!r}"
                issues.append(SplitIssue("malformed", where, reason, f"{where} {reason}"))
                continue
            path, label, classname = entry
            if not safe_relpath(path):
                reason = f"path {path!r} escapes the dataset root"
                issues.append(SplitIssue("escaping", where, reason, f"{where} {reason}"))
            if label < 0:
                reason = f"has a negative label {label}"
                issues.append(SplitIssue("labels", where, reason, f"{where} {reason}"))
                continue
            known = names.setdefault(label, classname)
            if known != classname and (label, classname) not in conflicts:
                conflicts.add((label, classname))
                reason = f"has two class names, {known!r} and {classname!r}"
                issues.append(
                    SplitIssue("conflict", f"label {label}", f"{reason} (at {where})", f"label {label} {reason}")
                )
            items.append(Item(path, label, classname))
        lists[subset] = tuple(items)
    n_classes = max(names) + 1 if names else 0
    missing = sorted(set(range(n_classes)) - set(names))
    if not names or missing:
        reason = f"not contiguous from 0 (missing {missing[:5]})"
        issues.append(SplitIssue("labels", "labels", reason, f"labels are {reason}"))
    train_labels = {item.label for item in lists["train"]}
    for label in sorted(set(names) - train_labels):
        name = names[label]
        issues.append(SplitIssue("empty class", name, "has no training image", f"class {name!r} has no training image"))
    return SplitScan(lists, names, issues)


def parse_split(data: object, *, source: str, sha256: str = "") -> Split:
    """Validate the decoded JSON of a split file and build a `Split`.

    Raises:
        UsageError: naming the file and the first problem `scan_split` finds (missing list, malformed
            item, path escaping the image folder, a label with two class names, non-contiguous labels,
            a class with no training image).
    """
    scan = scan_split(data)
    if scan.issues:
        raise UsageError(f"split file {source}: {scan.issues[0].message}")
    return Split(
        train=scan.lists["train"],
        val=scan.lists["val"],
        test=scan.lists["test"],
        classnames=tuple(scan.names[label] for label in range(len(scan.names))),
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
