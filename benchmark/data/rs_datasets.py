"""The real RS datasets of the paper profile, described by their public split files.

Folder and split-file names follow the reference layout (APPLeNet / BiMoRS dataset classes):
`<root>/PatternNet/images/...` with `<root>/PatternNet/patternnet.json`. The sha256 digests and class
orders come from `benchmark/data/facts/rs_splits.json`, recorded from the split files published in
`mainaksingha01/APPLeNet/json/` (commit 6819a9b); a run records whether the file in use is that
canonical one. MLRSNet's 46-class file was not available to us: its digest and classes are unknown,
so its class order comes from the user's file (or a generated split when the file is absent).
"""

from __future__ import annotations

from benchmark.data.catalog import DatasetSpec
from benchmark.data.facts import load_facts

_SOURCE = "APPLeNet split files (mainaksingha01/APPLeNet json/, commit 6819a9b)"

# name, folder under the data root (reference layout), split file inside that folder
_TABLE = (
    ("patternnet", "PatternNet", "patternnet.json"),
    ("rsicd", "RSICD", "rsicd.json"),
    ("resisc45", "RESISC45", "resisc45.json"),
    ("mlrsnet", "MLRSNet", "mlrsnet.json"),
    ("patternnetv2", "PatternNetv2", "patternnetv2.json"),
    ("rsicdv2", "RSICDv2", "rsicdv2.json"),
    ("resisc45v2", "RESISC45v2", "resisc45v2.json"),
    ("mlrsnetv2", "MLRSNetv2", "mlrsnetv2.json"),
)


def _spec(name: str, folder: str, split_file: str) -> DatasetSpec:
    facts = load_facts().get(name)
    if facts is not None and facts.split_file != split_file:
        raise RuntimeError(f"facts for {name} describe {facts.split_file}, the table says {split_file}")
    return DatasetSpec(
        name=name,
        folder=folder,
        split_file=split_file,
        canonical_sha256=facts.sha256 if facts else None,
        classnames=facts.classnames if facts else (),
        source=_SOURCE,
    )


PAPER_DATASETS: dict[str, DatasetSpec] = {name: _spec(name, folder, split) for name, folder, split in _TABLE}
