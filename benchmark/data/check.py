"""`data check`: is a user's dataset folder what a run will assume it is?

Why: the paper profile reads datasets the harness cannot see in advance. A missing or corrupt image
would otherwise surface as a crash deep inside a sweep, a class-order difference would silently change
which classes are base and new, and a modified split file would silently make numbers incomparable.
This module finds, per dataset and in one pass, every problem a run would refuse (`problems`) and every
departure from the published split a run would proceed with, tagging its runs non-canonical (`notes`):

* problems: the split file does not read, or breaks a rule of `benchmark.data.splits.scan_split`
  (malformed entries, paths escaping the dataset root, bad labels, a label with two class names, a class
  with no training image: all of them, not only the first); a listed image is missing, does not decode
  or is truncated. Images are decoded as the sweep's own pre-flight check does
  (`benchmark.data.imagecheck`: JPEGs at 1/8 scale, which still reads every compressed byte);
  `quick=True` only runs `Image.verify` (header and structure, ~20x faster, misses truncation);
* notes: the split file is not the published one (sha256) or was generated; its class list or subset
  sizes differ from the published ones; two subsets share an image (the reference's PatternNet
  generator sets test = val; no published file does).

Each kind keeps its first `MAX_ITEMS` offending items (path or name, reason) and the count of all.
No printing here: `benchmark.data.check_render` renders the reports and `benchmark.cli.data` prints them.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from benchmark.data.catalog import Dataset, DatasetSpec, open_dataset
from benchmark.data.facts import SplitFacts
from benchmark.data.imagecheck import decode
from benchmark.data.splits import ISSUE_KINDS, SUBSETS, Item, SplitIssue, SplitScan, safe_relpath, scan_split
from benchmark.errors import UsageError

log = logging.getLogger(__name__)

# Problem kinds (what a run refuses), in the order they are reported.
KINDS = ("split", "malformed", "escaping", "labels", "conflict", "empty class", "missing", "unreadable", "truncated")
# Note kinds (what a run proceeds with, tagging its runs non-canonical); `strict` makes them problems.
NOTE_KINDS = ("not published", "generated", "classes", "counts", "overlap")
MAX_ITEMS = 10  # offending items kept per kind; the rest are only counted


@dataclass(frozen=True)
class Problem:
    """One kind of problem (or note) in a dataset: a one-line message, how often, the first items."""

    kind: str  # one of KINDS or NOTE_KINDS
    count: int
    message: str
    items: tuple[tuple[str, str], ...] = ()  # (path or name, reason), at most MAX_ITEMS

    @classmethod
    def of(cls, kind: str, message: str, items: Sequence[tuple[str, str]], count: int | None = None) -> Problem:
        """A problem keeping the first `MAX_ITEMS` of `items` (count: len(items) unless given)."""
        return cls(kind, len(items) if count is None else count, message, tuple(items[:MAX_ITEMS]))

    @property
    def more(self) -> int:
        """How many offending items are counted but not listed (0 for a finding without items)."""
        return max(0, self.count - len(self.items)) if self.items else 0


@dataclass
class CheckReport:
    """What `check_dataset` found for one dataset."""

    name: str
    folder: str = ""  # the dataset folder checked
    classes: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    split: str = "?"  # "yes", "no", "unknown", "generated" (canonical?), "?" when the split did not read
    images_checked: int | None = None  # None: images not checked
    problems: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No problem found (notes allowed)."""
        return not self.problems

    def strict(self) -> CheckReport:
        """The report with its notes counted as problems (`data check --strict`)."""
        return replace(self, problems=[*self.problems, *self.notes], notes=[])


def _n(count: int, singular: str, plural: str) -> str:
    return f"{count} {singular if count == 1 else plural}"


_SPLIT_MESSAGES = {
    "split": lambda n: f"the split file is not an object with lists train, val and test ({_n(n, 'issue', 'issues')})",
    "malformed": lambda n: f"{_n(n, 'entry is', 'entries are')} not [path, label, classname]",
    "escaping": lambda n: f"{_n(n, 'path escapes', 'paths escape')} the dataset root",
    "labels": lambda n: f"{_n(n, 'label problem', 'label problems')} (labels must be >= 0 and contiguous from 0)",
    "conflict": lambda n: f"{_n(n, 'extra class name', 'extra class names')} for a label (one name per label)",
    "empty class": lambda n: f"{_n(n, 'class has', 'classes have')} no training image",
}


def _split_problems(issues: Sequence[SplitIssue]) -> list[Problem]:
    """The split file's issues grouped by kind (`format` issues are `split` problems)."""
    problems = []
    for issue_kind in ISSUE_KINDS:
        found = [(i.where, i.reason) for i in issues if i.kind == issue_kind]
        kind = "split" if issue_kind == "format" else issue_kind
        if found:
            problems.append(Problem.of(kind, _SPLIT_MESSAGES[kind](len(found)), found))
    return problems


def _scan_file(path: Path) -> SplitScan | None:
    """Every issue of a split file's content (None when it is absent or not JSON)."""
    try:
        return scan_split(json.loads(path.read_bytes()))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _verify_image(path: Path, quick: bool = False) -> tuple[str, str] | None:
    """None when the image decodes; else (kind, reason) with kind missing, unreadable or truncated."""
    from PIL import Image

    if not path.is_file():
        return ("missing", "is not a file" if path.exists() else "does not exist")
    try:
        if quick:
            with Image.open(path) as image:
                image.verify()
        else:
            decode(path)
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for broken files; all mean "unreadable"
        text = " ".join(str(exc).replace(f" '{path}'", "").split())[:200] or type(exc).__name__
        return ("truncated" if "truncated" in text.lower() else "unreadable", text)
    return None


_IMAGE_MESSAGES = {
    "missing": lambda n: f"{_n(n, 'listed image is', 'listed images are')} missing",
    "unreadable": lambda n: f"{_n(n, 'listed image does', 'listed images do')} not decode",
    "truncated": lambda n: f"{_n(n, 'listed image is', 'listed images are')} truncated",
}


def _image_problems(base: Path, paths: Sequence[str], workers: int, quick: bool) -> list[Problem]:
    """Check every path (relative to `base`) once, keeping split order within each kind."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        outcomes = list(pool.map(lambda rel: _verify_image(base / rel, quick), paths, chunksize=64))
    problems = []
    for kind, message in _IMAGE_MESSAGES.items():
        found = [(str(base / rel), o[1]) for rel, o in zip(paths, outcomes) if o is not None and o[0] == kind]
        if found:
            problems.append(Problem.of(kind, message(len(found)), found))
    return problems


def _class_note(found: Sequence[str], known: Sequence[str]) -> Problem | None:
    """A `classes` note when the class list in label order differs from the known (published) one."""
    if not known or tuple(found) == tuple(known):
        return None
    if len(found) != len(known):
        items = [(name, "not in the published split") for name in found if name not in set(known)]
        items += [(name, "not in the split file") for name in known if name not in set(found)]
        message = f"{len(found)} classes in the split file, the published split has {len(known)}"
        return Problem.of("classes", message, items)
    diffs = [label for label, (a, b) in enumerate(zip(found, known)) if a != b]
    what = "class order" if sorted(found) == sorted(known) else "class names"
    items = [(f"label {label}", f"{found[label]!r}, published {known[label]!r}") for label in diffs]
    return Problem.of("classes", f"{what} differ from the published split at {len(diffs)} label(s)", items)


def _count_note(counts: Mapping[str, int], facts: SplitFacts) -> Problem | None:
    """A `counts` note when the subset sizes differ from the published ones."""
    items = [
        (subset, f"{counts[subset]} (published {facts.counts[subset]})")
        for subset in SUBSETS
        if subset in facts.counts and facts.counts[subset] != counts[subset]
    ]
    return Problem.of("counts", "subset sizes differ from the published split", items) if items else None


def _overlap_note(dataset: Dataset, base: Path) -> Problem | None:
    """An `overlap` note when two subsets list the same image."""
    owner: dict[str, str] = {}
    shared: list[tuple[str, str]] = []
    for subset in SUBSETS:
        for item in dataset.split.subset(subset):
            first = owner.setdefault(item.path, subset)
            if first != subset:
                shared.append((str(base / item.path), f"in {first} and {subset}"))
    message = f"{_n(len(shared), 'listed image is', 'listed images are')} in two subsets"
    return Problem.of("overlap", message, shared) if shared else None


def _notes(dataset: Dataset, facts: SplitFacts | None, base: Path) -> list[Problem]:
    """What differs from the published split (a run proceeds with it and tags its runs)."""
    notes = []
    spec = dataset.spec
    if dataset.split_status == "modified":
        message = (
            f"not the published split: the sha256 of {spec.split_file} differs from the published file's; "
            "runs proceed, tagged split_canonical=no"
        )
        notes.append(Problem("not published", 1, message))
    if dataset.generated_split:
        message = (
            f"split file {spec.split_file} is absent, so not the published split: runs use the generated split "
            f"{dataset.split_path}, tagged split_generated=yes"
        )
        notes.append(Problem("generated", 1, message))
    known = spec.classnames or (facts.classnames if facts else ())
    counts = {subset: len(dataset.split.subset(subset)) for subset in SUBSETS}
    noted = [_class_note(dataset.classnames, known), _overlap_note(dataset, base)]
    if facts is not None and facts.known and dataset.split_status in ("modified", "generated"):
        noted.insert(1, _count_note(counts, facts))
    return notes + [note for note in noted if note is not None]


def _listed(lists: Mapping[str, Sequence[Item]]) -> list[str]:
    """Every distinct image path, in split order, leaving out paths that escape the root."""
    return list(dict.fromkeys(i.path for s in SUBSETS for i in lists.get(s, ()) if safe_relpath(i.path)))


def check_dataset(
    spec: DatasetSpec,
    data_root: Path,
    facts: SplitFacts | None = None,
    *,
    images: bool = True,
    quick: bool = False,
    workers: int | None = None,
    split_cache: Path | None = None,
) -> CheckReport:
    """Check one dataset under `data_root` against its split file and what is known about it.

    Args:
        spec: the dataset's spec (its `classnames`, when set, are the known class order).
        data_root: folder holding the dataset folders.
        facts: the recorded facts of the published split file, if any (for class and count notes).
        images: open every listed image (False: only the split file is checked).
        quick: only `Image.verify` each image instead of decoding it at 1/8 scale.
        workers: threads for image checks (default: min(8, CPU count)).
        split_cache: where a generated split is written when the split file is absent.
    """
    folder = Path(data_root) / spec.folder
    base = folder / spec.image_dir
    report = CheckReport(spec.name, folder=str(folder))
    try:
        dataset = open_dataset(spec, data_root, split_cache=split_cache)
    except UsageError as exc:
        scan = _scan_file(folder / spec.split_file)
        if scan is None or not scan.issues:  # not a content problem: the folder or file is absent or not JSON
            message = str(exc).removeprefix(f"dataset {spec.name}: ")
            report.problems.append(Problem("split", 1, message))
            return report
        report.problems.extend(_split_problems(scan.issues))
        lists: Mapping[str, Sequence[Item]] = scan.lists
        report.classes = len(scan.names)
    else:
        lists = {subset: dataset.split.subset(subset) for subset in SUBSETS}
        report.classes = len(dataset.classnames)
        report.split = {"canonical": "yes", "modified": "no"}.get(dataset.split_status, dataset.split_status)
        report.notes = _notes(dataset, facts, base)
    report.counts = {subset: len(lists.get(subset, ())) for subset in SUBSETS}
    if images:
        paths = _listed(lists)
        report.images_checked = len(paths)
        report.problems.extend(_image_problems(base, paths, workers or min(8, os.cpu_count() or 1), quick))
    return report
