"""The real RS datasets of the paper profile: the paper's eight and the seven scene sets peers report on.

Why a table: every dataset is read by the one generic loader (`benchmark.data.catalog`); what differs is
where it lives, which split file it is looked up by, and what is known about it (class order, digest,
counts), which comes from `benchmark/data/facts/rs_splits.json`, never from the user's folders.

* The paper's datasets (PatternNet, RSICD, RESISC45, MLRSNet and their v2 sets) follow the reference
  layout (APPLeNet / BiMoRS dataset classes): `<root>/PatternNet/images/...` with
  `<root>/PatternNet/patternnet.json`. Their digests and class orders were recorded from the split files
  published in `mainaksingha01/APPLeNet/json/` (commit 6819a9b); a run records whether the file in use is
  that canonical one. MLRSNet's 46-class file was not available to us: its digest and classes are
  unknown, so its class order comes from the user's file (or a generated split when the file is absent).
* EuroSAT uses CoOp's layout and canonical split: `<root>/eurosat/2750/<ClassFolder>/...` with
  `<root>/eurosat/split_zhou_EuroSAT.json`. Its class order, class renames and counts are recorded; the
  file's digest is not (it is published only behind a link we cannot reach), so the split is "unknown"
  until checked, and "generated" (with CoOp's class names) when the file is absent.
* UC Merced, AID, WHU-RS19, RSSCN7, OPTIMAL-31 and RSI-CB256 have no published split in the RS
  prompt-learning repositories we know: `<root>/<Folder>/images/<class folder>/...`, and without a split
  file (`<key>.json`, if the user has one of their own) a deterministic generated split is used and tagged.
  Class folders must sit directly under `images/` (RSI-CB256 ships them under six category folders:
  move the 35 leaf folders up).
"""

from __future__ import annotations

from benchmark.data.catalog import DatasetSpec
from benchmark.data.facts import load_facts

_APPLENET = "APPLeNet split files (mainaksingha01/APPLeNet json/, commit 6819a9b)"
_GENERATED = "no published split: a generated split is used unless the user supplies one"

# name, folder under the data root, split file inside it, image folder inside it, source of the split
_TABLE = (
    ("patternnet", "PatternNet", "patternnet.json", "images", _APPLENET),
    ("rsicd", "RSICD", "rsicd.json", "images", _APPLENET),
    ("resisc45", "RESISC45", "resisc45.json", "images", _APPLENET),
    ("mlrsnet", "MLRSNet", "mlrsnet.json", "images", _APPLENET),
    ("patternnetv2", "PatternNetv2", "patternnetv2.json", "images", _APPLENET),
    ("rsicdv2", "RSICDv2", "rsicdv2.json", "images", _APPLENET),
    ("resisc45v2", "RESISC45v2", "resisc45v2.json", "images", _APPLENET),
    ("mlrsnetv2", "MLRSNetv2", "mlrsnetv2.json", "images", _APPLENET),
    (
        "eurosat",
        "eurosat",
        "split_zhou_EuroSAT.json",
        "2750",
        "EuroSAT RGB (Helber et al., IEEE JSTARS 2019); split: CoOp's split_zhou_EuroSAT.json (Zhou et al., IJCV 2022)",
    ),
    ("ucmerced", "UCMerced", "ucmerced.json", "images", f"UC Merced Land Use (Yang & Newsam, 2010); {_GENERATED}"),
    ("aid", "AID", "aid.json", "images", f"AID (Xia et al., IEEE TGRS 2017); {_GENERATED}"),
    ("whurs19", "WHU-RS19", "whurs19.json", "images", f"WHU-RS19 (Dai & Yang, IEEE GRSL 2011); {_GENERATED}"),
    ("rsscn7", "RSSCN7", "rsscn7.json", "images", f"RSSCN7 (Zou et al., IEEE GRSL 2015); {_GENERATED}"),
    ("optimal31", "OPTIMAL-31", "optimal31.json", "images", f"OPTIMAL-31 (Wang et al., IEEE TGRS 2019); {_GENERATED}"),
    ("rsicb256", "RSI-CB256", "rsicb256.json", "images", f"RSI-CB256 (Li et al., Sensors 2020); {_GENERATED}"),
)


def _spec(name: str, folder: str, split_file: str, image_dir: str, source: str) -> DatasetSpec:
    """The spec of one table row, with what the recorded facts know about its split."""
    facts = load_facts().get(name)
    if facts is not None and facts.split_file != split_file:
        raise RuntimeError(f"facts for {name} describe {facts.split_file}, the table says {split_file}")
    return DatasetSpec(
        name=name,
        folder=folder,
        split_file=split_file,
        image_dir=image_dir,
        canonical_sha256=facts.sha256 if facts else None,
        classnames=facts.classnames if facts else (),
        class_folders=facts.class_folders if facts else (),
        source=source,
    )


PAPER_DATASETS: dict[str, DatasetSpec] = {row[0]: _spec(*row) for row in _TABLE}
