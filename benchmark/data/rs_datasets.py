"""The real RS datasets of the paper profile, described by their public split files.

Folder and split-file names follow the reference layout (APPLeNet / BiMoRS dataset classes):
`<root>/PatternNet/images/...` with `<root>/PatternNet/patternnet.json`. The sha256 digests are those
of the split files published in `mainaksingha01/APPLeNet/json/` (commit 6819a9b); a run records
whether the file in use is that canonical one.
"""

from __future__ import annotations

from benchmark.data.catalog import DatasetSpec

_SOURCE = "APPLeNet split files (mainaksingha01/APPLeNet json/, commit 6819a9b)"

# name, folder, split file, sha256 of the public split file (None: not available to us)
_TABLE = (
    ("patternnet", "PatternNet", "patternnet.json", "db971a7a485c8c1d2d2e6e962e8bbadb5ec36977b4947c42bdad3c0168db29e4"),
    ("rsicd", "RSICD", "rsicd.json", "9d31238de620ab89152bd9ed2897ff8b3552d7bddf88a9c00b0e342c86a96a97"),
    ("resisc45", "RESISC45", "resisc45.json", "9458dfb3e0c5cff5bfc305398d1237f2bb6bf6adb199c09229c3df0417ec1a70"),
    ("mlrsnet", "MLRSNet", "mlrsnet.json", None),
    (
        "patternnetv2",
        "PatternNetv2",
        "patternnetv2.json",
        "2db9f8f14226c52f5d857e0d323b1cc21761ed2d1a378b7cd520e52d1c1b8df0",
    ),
    ("rsicdv2", "RSICDv2", "rsicdv2.json", "191adf02a1a76d64e4e840fa8383bd141ab2b45f93ef29263a5d5fc25ea2ea77"),
    ("resisc45v2", "RESISC45v2", "resisc45v2.json", "8e8c7bf1b316e0c6936dcba33a393903c52910ba375ef5fed47bf577319d0f49"),
    ("mlrsnetv2", "MLRSNetv2", "mlrsnetv2.json", "759e826e7f706afc822253947c4dd6926a9e5906664685b4f5d44dcdf12ca4d6"),
)

PAPER_DATASETS: dict[str, DatasetSpec] = {
    name: DatasetSpec(name=name, folder=folder, split_file=split, canonical_sha256=sha, source=_SOURCE)
    for name, folder, split, sha in _TABLE
}
