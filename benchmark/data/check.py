"""`data check`: is a user's dataset folder what a run will assume it is?

Why: the paper profile reads datasets the harness cannot see in advance. A missing or corrupt image
would otherwise surface as a crash deep inside a sweep, a class-order difference would silently change
which classes are base and new, and a modified split file would silently make numbers incomparable.
This module verifies, per dataset, before anything trains:

* the split file reads and validates (paths stay inside the dataset folder, labels contiguous, ...);
* the class names in label order equal the known ones (the published order, from the recorded facts);
* train, val and test share no image (the reference's PatternNet generator sets test = val);
* every listed image exists and decodes: JPEGs at 1/8 scale (`Image.draft`), which still reads every
  byte of the compressed data, so truncated downloads are caught at a fraction of a full decode (the
  same standard as the sweep's own pre-flight check, `benchmark.data.imagecheck`); `quick=True` only
  runs `Image.verify` (header and structure, ~20x faster, misses truncation);
* whether the file is the canonical published one (sha256), and how its counts differ from the
  published counts when it is not (a note, not an error: a modified split is a legitimate choice).

No printing here: the command in `benchmark.cli.data` renders the reports.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.data.catalog import Dataset, DatasetSpec, open_dataset
from benchmark.data.facts import SplitFacts
from benchmark.data.imagecheck import decode, listed_paths
from benchmark.data.splits import SUBSETS
from benchmark.errors import UsageError

log = logging.getLogger(__name__)

# Problem kinds in the order they are looked for; the first one found names the dataset's error line.
KINDS = ("split", "classes", "overlap", "missing", "unreadable")


@dataclass(frozen=True)
class Problem:
    """One kind of problem in a dataset, with how often it occurs and a precise one-line message."""

    kind: str  # one of KINDS
    count: int
    message: str


@dataclass
class CheckReport:
    """What `check_dataset` found for one dataset."""

    name: str
    classes: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    split: str = "?"  # "yes", "no", "unknown", "generated" (canonical?), "?" when the split did not read
    images_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems

    @property
    def first_problem(self) -> Problem | None:
        """The first kind of problem found (the one the error line reports)."""
        return self.problems[0] if self.problems else None


def _status_word(dataset: Dataset) -> str:
    return {"canonical": "yes", "modified": "no", "unknown": "unknown", "generated": "generated"}[dataset.split_status]


def _class_problem(found: Sequence[str], known: Sequence[str]) -> Problem | None:
    """A `classes` problem when the class order differs from the known one."""
    if not known or tuple(found) == tuple(known):
        return None
    if len(found) != len(known):
        extra = sorted(set(found) - set(known))
        lacking = sorted(set(known) - set(found))
        detail = f"; not known: {extra[:3]}" if extra else f"; lacking: {lacking[:3]}" if lacking else ""
        return Problem(
            "classes", 1, f"{len(found)} classes in the split file, the published split has {len(known)}{detail}"
        )
    diffs = [label for label, (a, b) in enumerate(zip(found, known)) if a != b]
    label = diffs[0]
    what = "class order" if sorted(found) == sorted(known) else "class names"
    return Problem(
        "classes",
        len(diffs),
        f"{what} differ from the published split at {len(diffs)} label(s), first: label {label} is "
        f"{found[label]!r}, published {known[label]!r}",
    )


def _overlap_problem(dataset: Dataset) -> Problem | None:
    """An `overlap` problem when two subsets list the same image."""
    owner: dict[str, str] = {}
    shared: list[tuple[str, str, str]] = []  # (path, first subset, second subset)
    for subset in SUBSETS:
        for item in dataset.split.subset(subset):
            first = owner.setdefault(item.path, subset)
            if first != subset:
                shared.append((item.path, first, subset))
    if not shared:
        return None
    path, first, second = shared[0]
    return Problem(
        "overlap",
        len(shared),
        f"{len(shared)} listed images are in two subsets, first: "
        f"{dataset.spec.image_dir}/{path} ({first} and {second})",
    )


def _verify_image(path: Path, quick: bool = False) -> str | None:
    """None when the image decodes; "missing" or the reason it cannot be read otherwise."""
    from PIL import Image

    if not path.is_file():
        return "missing"
    try:
        if quick:
            with Image.open(path) as image:
                image.verify()
        else:
            decode(path)
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for broken files; all mean "unreadable"
        text = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        return f"unreadable: {text}"
    return None


def _image_problems(dataset: Dataset, workers: int, quick: bool) -> tuple[int, list[Problem]]:
    """Check every distinct listed image once, in split order (train, val, test)."""
    paths = listed_paths(dataset)
    base = dataset.root / dataset.spec.image_dir
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        outcomes = list(pool.map(lambda rel: _verify_image(base / rel, quick), paths, chunksize=64))
    missing = [p for p, o in zip(paths, outcomes) if o == "missing"]
    broken = [(p, o) for p, o in zip(paths, outcomes) if o and o != "missing"]
    problems = []
    image_dir = dataset.spec.image_dir
    if missing:
        message = f"{len(missing)} listed images are missing, first: {image_dir}/{missing[0]}"
        problems.append(Problem("missing", len(missing), message))
    if broken:
        path, reason = broken[0]
        problems.append(
            Problem(
                "unreadable",
                len(broken),
                f"{len(broken)} listed images cannot be read, first: {image_dir}/{path} ({reason.split(': ', 1)[-1]})",
            )
        )
    return len(paths), problems


def _count_notes(dataset: Dataset, facts: SplitFacts) -> list[str]:
    """How the counts differ from the published ones (only meaningful for a non-canonical file)."""
    diffs = []
    for subset in SUBSETS:
        published = facts.counts.get(subset)
        found = len(dataset.split.subset(subset))
        if published is not None and published != found:
            diffs.append(f"{subset} {found} (published {published})")
    return [f"not the published split; counts differ: {', '.join(diffs)}"] if diffs else []


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
        facts: the recorded facts of the published split file, if any (for count notes).
        images: open every listed image (False: only the split file is checked).
        quick: only `Image.verify` each image instead of decoding it at 1/8 scale.
        workers: threads for image checks (default: min(8, CPU count)).
        split_cache: where a generated split is written when the split file is absent.
    """
    report = CheckReport(spec.name)
    try:
        dataset = open_dataset(spec, data_root, split_cache=split_cache)
    except UsageError as exc:
        message = str(exc)
        prefix = f"dataset {spec.name}: "
        report.problems.append(Problem("split", 1, message[len(prefix) :] if message.startswith(prefix) else message))
        return report
    report.classes = len(dataset.classnames)
    report.counts = {subset: len(dataset.split.subset(subset)) for subset in SUBSETS}
    report.split = _status_word(dataset)
    known = spec.classnames or (facts.classnames if facts else ())
    for problem in (_class_problem(dataset.classnames, known), _overlap_problem(dataset)):
        if problem is not None:
            report.problems.append(problem)
    if images:
        checked, problems = _image_problems(dataset, workers or min(8, os.cpu_count() or 1), quick)
        report.images_checked = checked
        report.problems.extend(problems)
    if facts is not None and facts.known and dataset.split_status == "modified":
        report.notes.extend(_count_notes(dataset, facts))
    if dataset.generated_split:
        report.notes.append(f"split file {spec.split_file} is absent; using the generated split {dataset.split_path}")
    return report
