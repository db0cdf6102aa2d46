"""Few-shot sampling and the base/new class split, exactly as Dassl and CoOp do them.

Dassl `DatasetBase.generate_fewshot_dataset` (Dassl.pytorch @ c61a1b5, `base_dataset.py` 167-209)
groups items by label in first-appearance order and draws `random.sample(items, k)` per label from
Python's global `random`, seeded by `set_random_seed(seed)` just before the dataset is built. The
train draw (k = shots) comes first and the val draw (k = min(shots, 4)) continues the same stream.
Sampling happens before the base/new split, so the base and new runs of a seed share the shots.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from benchmark.data.splits import Item, Split

log = logging.getLogger(__name__)

VAL_SHOTS_CAP = 4  # Dassl datasets draw min(NUM_SHOTS, 4) validation images per class


def group_by_label(items: Sequence[Item]) -> dict[int, list[Item]]:
    """Items grouped by label, labels in order of first appearance (a dict keeps insertion order)."""
    groups: dict[int, list[Item]] = {}
    for item in items:
        groups.setdefault(item.label, []).append(item)
    return groups


def sample_per_label(items: Sequence[Item], shots: int, rng: random.Random) -> tuple[list[Item], list[str]]:
    """Draw `shots` items per label with `rng.sample`; classes with fewer items keep them all.

    Returns:
        The sampled items and the names of classes that had fewer than `shots` items.
    """
    if shots < 1:
        return list(items), []
    out: list[Item] = []
    short: list[str] = []
    for group in group_by_label(items).values():
        if len(group) >= shots:
            out.extend(rng.sample(group, shots))
        else:
            out.extend(group)
            short.append(group[0].classname)
    return out, short


@dataclass(frozen=True)
class FewShot:
    """The few-shot train and val lists of one (split, shots, seed), in Dassl's draw order."""

    train: tuple[Item, ...]
    val: tuple[Item, ...]
    short_classes: tuple[str, ...]  # classes with fewer training images than shots (all kept)


def dassl_few_shot(split: Split, shots: int, seed: int) -> FewShot:
    """The images Dassl's sampler picks for `seed`: train first, then val, one RNG stream."""
    rng = random.Random(seed)
    train, short = sample_per_label(split.train, shots, rng)
    val, _ = sample_per_label(split.val, min(shots, VAL_SHOTS_CAP), rng)
    if short:
        log.warning(
            "%d class(es) have fewer than %d training images; using all of them (as Dassl does): %s",
            len(short),
            shots,
            ", ".join(short[:5]),
        )
    return FewShot(tuple(train), tuple(val), tuple(short))


@dataclass(frozen=True)
class ClassSubset:
    """A subset of a dataset's classes, relabelled 0..k-1 in label order."""

    name: str  # "all", "base" or "new"
    labels: tuple[int, ...]  # original label ids, sorted
    classnames: tuple[str, ...]

    def select(self, items: Sequence[Item]) -> list[Item]:
        """Items of these classes with labels remapped to 0..k-1."""
        relabel = {label: new for new, label in enumerate(self.labels)}
        return [Item(i.path, relabel[i.label], i.classname) for i in items if i.label in relabel]


def split_base_new(classnames: Sequence[str]) -> tuple[ClassSubset, ClassSubset]:
    """Base = the first ceil(n/2) labels, new = the rest (CoOp `subsample_classes`)."""
    n = len(classnames)
    m = math.ceil(n / 2)
    base = ClassSubset("base", tuple(range(m)), tuple(classnames[:m]))
    new = ClassSubset("new", tuple(range(m, n)), tuple(classnames[m:]))
    return base, new


def all_classes(classnames: Sequence[str]) -> ClassSubset:
    """Every class, labels unchanged."""
    return ClassSubset("all", tuple(range(len(classnames))), tuple(classnames))
