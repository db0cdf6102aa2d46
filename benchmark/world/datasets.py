"""The eight world datasets: names, folders, split files, class lists (label order) and sensor styles.

They mirror the real RS protocol structure (METHODS.md 6.6): four datasets with their own class subsets and
sensors, partially overlapping (cross-dataset transfer means something), and four v2 sets sharing one
16-class list in the real v2 label order (domain generalisation means something). Label orders are fixed,
non-alphabetical, as in the APPLeNet JSONs, and decide the base/new halves (first ceil(n/2) labels).
Pure Python: importing this module must stay cheap (``python -m benchmark list datasets``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorldDatasetSpec:
    """One world dataset, in the on-disk layout of the real one.

    Attributes:
        name: Registry key (``patternnet``, ``rsicdv2``, ...).
        folder: Folder under the data root (``PatternNet``).
        split_file: Split JSON inside the folder (``patternnet.json``).
        classnames: Class names in label order, spelled as the dataset spells them.
        style: Key of the sensor style in :data:`benchmark.world.sensors.SENSOR_STYLES`.
        captions_file: Per-image captions JSON inside the folder.
        recipes: Canonical scene class drawn for each label (same order as ``classnames``).
    """

    name: str
    folder: str
    split_file: str
    classnames: tuple[str, ...]
    style: str
    captions_file: str = "captions.json"
    recipes: tuple[str, ...] = ()


def _spec(name: str, folder: str, style: str, classes: list[tuple[str, str]]) -> WorldDatasetSpec:
    """Build a spec from (dataset class name, canonical recipe) pairs in label order."""
    return WorldDatasetSpec(
        name=name,
        folder=folder,
        split_file=f"{name}.json",
        classnames=tuple(n for n, _ in classes),
        style=style,
        recipes=tuple(r for _, r in classes),
    )


def _same(*names: str) -> list[tuple[str, str]]:
    return [(n, n) for n in names]


_PATTERNNET = _same(
    "runway",
    "baseball_field",
    "sparse_residential",
    "parking_lot",
    "harbor",
    "intersection",
    "forest",
    "bridge",
    "golf_course",
    "overpass",
    "tennis_court",
    "railway",
    "basketball_court",
    "river",
    "solar_panel",
    "chaparral",
    "storage_tank",
    "dense_residential",
    "beach",
    "airplane",
)
# RSICD spells names without separators (METHODS.md 6.6) and calls a harbor a port.
_RSICD = [
    ("farmland", "farmland"),
    ("baseballfield", "baseball_field"),
    ("industrial", "industrial_area"),
    ("storagetanks", "storage_tank"),
    ("forest", "forest"),
    ("bridge", "bridge"),
    ("port", "harbor"),
    ("sparseresidential", "sparse_residential"),
    ("denseresidential", "dense_residential"),
    ("mountain", "mountain"),
    ("parking", "parking_lot"),
    ("mediumresidential", "medium_residential"),
    ("meadow", "meadow"),
    ("river", "river"),
    ("desert", "desert"),
    ("stadium", "stadium"),
    ("beach", "beach"),
]
_RESISC45 = (
    _same("runway", "lake", "sparse_residential", "wetland", "parking_lot", "roundabout")
    + [("baseball_diamond", "baseball_field")]
    + _same(
        "harbor",
        "forest",
        "golf_course",
        "overpass",
        "industrial_area",
        "tennis_court",
        "basketball_court",
        "circular_farmland",
    )
    + [("rectangular_farmland", "farmland")]
    + _same("mountain", "storage_tank", "dense_residential", "freeway")
)
_MLRSNET = (
    _same("airplane", "chaparral")
    + [("dense_residential_area", "dense_residential")]
    + _same("freeway", "lake", "railway", "golf_course", "tennis_court", "beach", "roundabout")
    + [("sparse_residential_area", "sparse_residential")]
    + _same("farmland", "storage_tank", "mountain")
)
# The real v2 sets' shared list and label order (METHODS.md 6.6).
_V2 = [
    ("baseballfield", "baseball_field"),
    ("sparse_residential", "sparse_residential"),
    ("harbor", "harbor"),
    ("intersection", "intersection"),
    ("forest", "forest"),
    ("bridge", "bridge"),
    ("overpass", "overpass"),
    ("railway", "railway"),
    ("parking", "parking_lot"),
    ("meadow", "meadow"),
    ("river", "river"),
    ("desert", "desert"),
    ("stadium", "stadium"),
    ("storage_tank", "storage_tank"),
    ("dense_residential", "dense_residential"),
    ("beach", "beach"),
]

WORLD_DATASETS: dict[str, WorldDatasetSpec] = {
    "patternnet": _spec("patternnet", "PatternNet", "patternnet", _PATTERNNET),
    "rsicd": _spec("rsicd", "RSICD", "rsicd", _RSICD),
    "resisc45": _spec("resisc45", "RESISC45", "resisc45", _RESISC45),
    "mlrsnet": _spec("mlrsnet", "MLRSNet", "mlrsnet", _MLRSNET),
    "patternnetv2": _spec("patternnetv2", "PatternNetv2", "patternnet", _V2),
    "rsicdv2": _spec("rsicdv2", "RSICDv2", "rsicd", _V2),
    "resisc45v2": _spec("resisc45v2", "RESISC45v2", "resisc45", _V2),
    "mlrsnetv2": _spec("mlrsnetv2", "MLRSNetv2", "mlrsnet", _V2),
}

WORLD_PROTOCOLS: dict = {
    "b2n": ["patternnet", "rsicd", "resisc45", "mlrsnet"],
    "xd": {"source": "patternnet", "targets": ["rsicd", "resisc45", "mlrsnet"]},
    "dg": {"source": "patternnetv2", "targets": ["rsicdv2", "resisc45v2", "mlrsnetv2"]},
}

#: Seed of the whole world; every image's generator derives from it.
WORLD_SEED = 20240601
#: Images per class (train, val, test): small, because the harness evaluates each test split many times.
SPLIT_SIZES = (40, 12, 36)
#: Datasets whose real counterparts are imbalanced get per-class counts varying by up to this fraction.
IMBALANCED = {"rsicd": 0.2, "mlrsnet": 0.15, "rsicdv2": 0.2, "mlrsnetv2": 0.15}


def file_name(spec: WorldDatasetSpec, classname: str, index: int) -> str:
    """Image file name in the real datasets' conventions (PatternNet drops separators, MLRSNetv2 pads 5)."""
    if spec.name == "patternnet":
        return f"{classname.replace('_', '')}{index:03d}.png"
    if spec.name == "mlrsnetv2":
        return f"{classname}_{index:05d}.png"
    return f"{classname}_{index:03d}.png"
