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

The datasets of `RECORDED` (EuroSAT, UC Merced, AID, WHU-RS19, RSSCN7, OPTIMAL-31, RSI-CB256) have no split
file here: their class order, image count and (EuroSAT) subset counts are written from the references named
in each entry's `"source"`, with no digest, so a run on them says "unknown" or "generated", never
"canonical". Should one of their files be put in the folder, its facts are derived from it instead and
must agree with what is recorded.
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

# Not derived from a file: what the references say. Label order is the sorted class-folder order (Python's
# `sorted`, as CoOp's generator and ours list folders) unless a published split says otherwise (EuroSAT:
# CoOp's split keeps the folder order but renames the classes, so its folders are recorded beside the names).
_EUROSAT_FOLDERS = (
    "AnnualCrop Forest HerbaceousVegetation Highway Industrial Pasture PermanentCrop Residential River SeaLake"
)
_EUROSAT_NAMES = (
    "Annual Crop Land",
    "Forest",
    "Herbaceous Vegetation Land",
    "Highway or Road",
    "Industrial Buildings",
    "Pasture Land",
    "Permanent Crop Land",
    "Residential Buildings",
    "River",
    "Sea or Lake",
)
RECORDED: dict[str, dict[str, Any]] = {
    "eurosat": {
        "split_file": "split_zhou_EuroSAT.json",
        "folders": _EUROSAT_FOLDERS,
        "classnames": _EUROSAT_NAMES,
        "counts": {"train": 13500, "val": 5400, "test": 8100},
        "images": 27000,
        "source": "recorded, not derived from a file: CoOp's split_zhou_EuroSAT.json (KaiyangZhou/CoOp "
        "DATASETS.md), published behind a link we cannot reach, so no digest; counts from CoOp's dataset table "
        "(Zhou et al., IJCV 2022), class renames from CoOp's datasets/eurosat.py; EuroSAT RGB, Helber et al., "
        "IEEE JSTARS 2019",
    },
    "ucmerced": {
        "split_file": "ucmerced.json",
        "folders": "agricultural airplane baseballdiamond beach buildings chaparral denseresidential forest freeway"
        " golfcourse harbor intersection mediumresidential mobilehomepark overpass parkinglot river runway"
        " sparseresidential storagetanks tenniscourt",
        "images": 2100,
        "source": "recorded, not derived from a file: class folders of UCMerced_LandUse/Images as loaded by "
        "biasvariancelabs/aitlas (datasets/uc_merced.py); no published split; Yang & Newsam, ACM SIGSPATIAL 2010",
    },
    "aid": {
        "split_file": "aid.json",
        "folders": "Airport BareLand BaseballField Beach Bridge Center Church Commercial DenseResidential Desert"
        " Farmland Forest Industrial Meadow MediumResidential Mountain Park Parking Playground Pond Port"
        " RailwayStation Resort River School SparseResidential Square Stadium StorageTanks Viaduct",
        "images": 10000,
        "source": "recorded, not derived from a file: class folders as loaded by biasvariancelabs/aitlas "
        "(datasets/aid.py); no published split; Xia et al., IEEE TGRS 2017",
    },
    "whurs19": {
        "split_file": "whurs19.json",
        "folders": "Airport Beach Bridge Commercial Desert Farmland footballField Forest Industrial Meadow Mountain"
        " Park Parking Pond Port railwayStation Residential River Viaduct",
        "images": 1005,
        "source": "recorded, not derived from a file: class folders as loaded by biasvariancelabs/aitlas "
        "(datasets/whu_rs19.py); 1,005 images per the jonathan-roberts1/WHU-RS19 mirror; no published split; "
        "Xia et al. 2010, Dai & Yang, IEEE GRSL 2011",
    },
    "rsscn7": {
        "split_file": "rsscn7.json",
        "folders": "aGrass bField cIndustry dRiverLake eForest fResident gParking",
        "images": 2800,
        "source": "recorded, not derived from a file: class folders of the palewithout/RSSCN7 release; "
        "no published split; Zou et al., IEEE GRSL 2015",
    },
    "optimal31": {
        "split_file": "optimal31.json",
        "folders": "airplane airport baseball_diamond basketball_court beach bridge chaparral church"
        " circular_farmland commercial_area dense_residential desert forest freeway golf_course ground_track_field"
        " harbor industrial_area intersection island lake meadow medium_residential mobile_home_park mountain"
        " overpass parking_lot railway rectangular_farmland roundabout runway",
        "images": 1860,
        "source": "recorded, not derived from a file: class folders as loaded by biasvariancelabs/aitlas "
        "(datasets/optimal_31.py); 1,860 images per the jonathan-roberts1/Optimal-31 mirror; no published split; "
        "Wang et al., IEEE TGRS 2019",
    },
    "rsicb256": {
        "split_file": "rsicb256.json",
        "folders": "airplane airport_runway artificial_grassland avenue bare_land bridge city_building coastline"
        " container crossroads dam desert dry_farm forest green_farmland highway hirst lakeshore mangrove marina"
        " mountain parkinglot pipeline residents river river_protection_forest sandbeach sapling sea shrubwood"
        " snow_mountain sparse_forest storage_room stream town",
        "images": 24747,
        "source": "recorded, not derived from a file: the 35 leaf class folders as loaded by biasvariancelabs/aitlas "
        "(datasets/rsi_cb256.py); 24,747 images per the jonathan-roberts1/RSI-CB256 mirror; no published split; "
        "Li et al., Sensors 2020",
    },
}


def recorded_facts(name: str) -> dict[str, Any]:
    """The facts entry of a `RECORDED` dataset (no digest; classes, counts and image count as recorded)."""
    spec = RECORDED[name]
    folders = sorted(spec["folders"].split())  # label order: the sorted folder order
    classnames = list(spec.get("classnames") or folders)
    if len(classnames) != len(folders) or len(set(classnames)) != len(classnames):
        raise ValueError(f"{name}: {len(classnames)} class names for {len(folders)} class folders")
    entry: dict[str, Any] = {"split_file": spec["split_file"], "sha256": None, "classnames": classnames}
    if classnames != folders:
        entry["class_folders"] = folders
    entry.update(counts=spec.get("counts"), per_class=None, disjoint=None)
    entry.update(images=spec["images"], source=spec["source"])
    return entry


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
    for name in RECORDED:
        entry = recorded_facts(name)
        path = folder / entry["split_file"]
        if path.is_file():  # the file became available: derive from it, and it must agree with the record
            facts = dataset_facts(path)
            for key in ("classnames", "counts"):
                if entry[key] is not None and facts[key] != entry[key]:
                    raise ValueError(f"{path}: {key} differ from the recorded ones")
            extra = {k: entry[k] for k in ("class_folders", "images") if k in entry}
            entry = {**facts, **extra, "source": f"derived from {path.name}; recorded: {entry['source']}"}
        datasets[name] = entry
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
