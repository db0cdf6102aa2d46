"""Derive the facts of the public RS split files (digest, class order, counts) without copying them.

Why: a run must be able to say whether the user's split file is the published one and whether its class
order (which decides base/new) is the published one, yet the project must not ship the split files
themselves (they list every image path). This script reads a folder holding the public files (the
APPLeNet `json/` folder, mirrored in `../shared/splits`) and writes `rs_splits.json` beside itself:
per dataset the split file name, its sha256, the class names in label order, the per-subset counts and
the per-class counts. Regenerate with::

    python -m benchmark.data.facts.build ../shared/splits

A dataset whose file is not in the folder (MLRSNet's 46-class `mlrsnet.json`) is recorded with no digest,
no classes and no counts: only what could be verified is stated.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmark.data.splits import SUBSETS, read_split

log = logging.getLogger(__name__)

FACTS_FILE = Path(__file__).with_name("rs_splits.json")
SOURCE = "APPLeNet split files (mainaksingha01/APPLeNet json/, commit 6819a9b)"

# Dataset key -> split file name, in the order of the published tables.
SPLIT_FILES: dict[str, str] = {
    "patternnet": "patternnet.json",
    "rsicd": "rsicd.json",
    "resisc45": "resisc45.json",
    "mlrsnet": "mlrsnet.json",
    "patternnetv2": "patternnetv2.json",
    "rsicdv2": "rsicdv2.json",
    "resisc45v2": "resisc45v2.json",
    "mlrsnetv2": "mlrsnetv2.json",
}


def _read_sums(folder: Path) -> dict[str, str]:
    """`SHA256SUMS` of the folder as {file name: digest} (empty when absent)."""
    path = folder / "SHA256SUMS"
    if not path.is_file():
        return {}
    sums = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.strip().partition("  ")
        if digest and name:
            sums[name.strip()] = digest
    return sums


def dataset_facts(path: Path) -> dict[str, Any]:
    """The facts of one split file (it is validated by `read_split` first)."""
    split = read_split(path)
    n = len(split.classnames)
    per_class = {}
    for subset in SUBSETS:
        counts = [0] * n
        for item in split.subset(subset):
            counts[item.label] += 1
        per_class[subset] = counts
    paths = {subset: {item.path for item in split.subset(subset)} for subset in SUBSETS}
    return {
        "split_file": path.name,
        "sha256": split.sha256,
        "classnames": list(split.classnames),
        "counts": {subset: len(split.subset(subset)) for subset in SUBSETS},
        "per_class": per_class,
        # the published files have no image in two subsets; recorded so a check can rely on it
        "disjoint": sum(map(len, paths.values())) == len(set().union(*paths.values())),
    }


def build_facts(folder: Path) -> dict[str, Any]:
    """Facts of every known split file found in `folder` (digests cross-checked with its SHA256SUMS)."""
    folder = Path(folder)
    sums = _read_sums(folder)
    datasets: dict[str, Any] = {}
    for name, file in SPLIT_FILES.items():
        path = folder / file
        if not path.is_file():
            log.warning("%s not found in %s: recorded without digest, classes or counts", file, folder)
            datasets[name] = {
                "split_file": file,
                "sha256": None,
                "classnames": [],
                "counts": None,
                "per_class": None,
                "disjoint": None,
            }
            continue
        facts = dataset_facts(path)
        if file in sums and sums[file] != facts["sha256"]:
            raise ValueError(f"{path}: sha256 {facts['sha256']} differs from SHA256SUMS ({sums[file]})")
        datasets[name] = facts
    return {"source": SOURCE, "generated_by": "python -m benchmark.data.facts.build", "datasets": datasets}


def write_facts(facts: dict[str, Any], path: Path = FACTS_FILE) -> Path:
    """Write the facts as stable, diff-friendly JSON (one class list per line)."""
    lines = [
        "{",
        f'  "source": {json.dumps(facts["source"])},',
        f'  "generated_by": {json.dumps(facts["generated_by"])},',
        '  "datasets": {',
    ]
    names = list(facts["datasets"])
    for i, name in enumerate(names):
        entry = facts["datasets"][name]
        lines.append(f"    {json.dumps(name)}: {{")
        keys = list(entry)
        for j, key in enumerate(keys):
            value = entry[key]
            if isinstance(value, dict):
                body = ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in value.items())
                text = "{" + body + "}"
            else:
                text = json.dumps(value)
            lines.append(f"      {json.dumps(key)}: {text}{',' if j < len(keys) - 1 else ''}")
        lines.append(f"    }}{',' if i < len(names) - 1 else ''}")
    lines += ["  }", "}", ""]
    text = "\n".join(lines)
    json.loads(text)  # the hand-laid JSON must round-trip
    Path(path).write_text(text, encoding="utf-8")
    return Path(path)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m benchmark.data.facts.build SPLITS_DIR [--out FILE]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("splits", type=Path, help="folder with the public split files (e.g. ../shared/splits)")
    parser.add_argument("--out", type=Path, default=FACTS_FILE)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    out = write_facts(build_facts(args.splits), args.out)
    log.info("wrote %s", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
