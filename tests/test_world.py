"""Tests of the embedded RS world: API contract, determinism, on-disk format, captions, ensure_world."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from benchmark.world import WORLD_DATASETS, WORLD_PROTOCOLS, WORLD_VERSION, WorldDatasetSpec
from benchmark.world.build import MANIFEST, build_world, ensure_world
from benchmark.world.scenes import ALIASES, CLASS_POOL, RECIPES

SMALL = (3, 1, 2)
SMALL_KEYS = ("patternnet", "rsicd", "mlrsnetv2")

EXPECTED = [
    ("patternnet", "PatternNet", "patternnet.json"),
    ("rsicd", "RSICD", "rsicd.json"),
    ("resisc45", "RESISC45", "resisc45.json"),
    ("mlrsnet", "MLRSNet", "mlrsnet.json"),
    ("patternnetv2", "PatternNetv2", "patternnetv2.json"),
    ("rsicdv2", "RSICDv2", "rsicdv2.json"),
    ("resisc45v2", "RESISC45v2", "resisc45v2.json"),
    ("mlrsnetv2", "MLRSNetv2", "mlrsnetv2.json"),
]


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def small_world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("world_a")
    build_world(root, keys=SMALL_KEYS, sizes=SMALL, workers=1)
    return root


def test_import_does_not_pull_torch():
    code = "import sys, benchmark.world as w; w.WORLD_DATASETS; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_specs_match_contract():
    assert [(k, s.folder, s.split_file) for k, s in WORLD_DATASETS.items()] == EXPECTED
    for key, spec in WORLD_DATASETS.items():
        assert isinstance(spec, WorldDatasetSpec) and spec.name == key
        assert len(set(spec.classnames)) == len(spec.classnames)
        assert len(spec.recipes) == len(spec.classnames)
        assert all(r in RECIPES for r in spec.recipes)
        assert list(spec.classnames) != sorted(spec.classnames), "label order must not be alphabetical"
    v2 = [WORLD_DATASETS[k].classnames for k in ("patternnetv2", "rsicdv2", "resisc45v2", "mlrsnetv2")]
    assert all(c == v2[0] for c in v2) and 8 <= len(v2[0]) <= 16
    for key in WORLD_PROTOCOLS["b2n"]:
        assert 12 <= len(WORLD_DATASETS[key].classnames) <= 20
    assert all("_" not in c for c in WORLD_DATASETS["rsicd"].classnames)
    assert WORLD_PROTOCOLS["xd"] == {"source": "patternnet", "targets": ["rsicd", "resisc45", "mlrsnet"]}
    assert WORLD_PROTOCOLS["dg"]["source"] == "patternnetv2"
    assert 24 <= len(CLASS_POOL) <= 32
    assert re.fullmatch(r"v\d+-[0-9a-f]{10}", WORLD_VERSION)


def test_generation_is_byte_deterministic(small_world, tmp_path):
    again = tmp_path / "world_b"
    again.mkdir()
    build_world(again, keys=SMALL_KEYS, sizes=SMALL, workers=2)  # another worker count, same bytes
    assert tree_digest(small_world) == tree_digest(again)


@pytest.mark.parametrize("key", SMALL_KEYS)
def test_split_file_format(small_world, key):
    spec = WORLD_DATASETS[key]
    folder = small_world / spec.folder
    split = json.loads((folder / spec.split_file).read_text())
    assert set(split) == {"train", "val", "test"}
    seen: set[str] = set()
    for name, items in split.items():
        labels = [lab for _, lab, _ in items]
        assert labels == sorted(labels), f"{name}: items must be grouped by label in label order"
        assert sorted(set(labels)) == list(range(len(spec.classnames))), "labels must be contiguous 0..C-1"
        for rel, lab, cname in items:
            assert isinstance(rel, str) and isinstance(lab, int) and cname == spec.classnames[lab]
            assert rel.startswith(f"{cname}/") and rel.endswith(".png")
            assert (folder / "images" / rel).is_file()
        rels = {rel for rel, _, _ in items}
        assert not rels & seen, "train/val/test must be disjoint"
        seen |= rels


def _forbidden_names() -> list[str]:
    names = {a for k in CLASS_POOL for a in ALIASES[k]}
    names |= {c.replace("_", " ") for s in WORLD_DATASETS.values() for c in s.classnames}
    names |= {c for s in WORLD_DATASETS.values() for c in s.classnames}
    return sorted(names)


@pytest.mark.parametrize("key", SMALL_KEYS)
def test_captions_cover_every_image_and_never_name_a_class(small_world, key):
    spec = WORLD_DATASETS[key]
    folder = small_world / spec.folder
    split = json.loads((folder / spec.split_file).read_text())
    captions = json.loads((folder / spec.captions_file).read_text())
    rels = [rel for items in split.values() for rel, _, _ in items]
    assert sorted(captions) == sorted(rels)
    pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in _forbidden_names()) + r")\b")
    for rel, text in captions.items():
        assert text and text == text.strip()
        assert not pattern.search(text.lower()), f"{rel}: caption names a class: {text!r}"


def test_captions_of_a_full_pool_never_name_a_class():
    import numpy as np

    from benchmark.world.render import render_captioned
    from benchmark.world.sensors import SENSOR_STYLES
    from benchmark.world.styles import NEUTRAL

    pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in _forbidden_names()) + r")\b")
    for i, cls in enumerate(CLASS_POOL):
        style = [NEUTRAL, *SENSOR_STYLES.values()][i % 5]
        img, text = render_captioned(cls, style, np.random.default_rng(i))
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8
        assert not pattern.search(text), f"{cls}: {text!r}"


def test_ensure_world_is_idempotent_and_race_safe(tmp_path):
    roots: list[Path] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            roots.append(ensure_world(tmp_path, keys=("rsicdv2",), sizes=(1, 1, 1), workers=1))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(roots) == 2 and roots[0] == roots[1]
    root = roots[0]
    assert root == tmp_path / "world" / WORLD_VERSION and (root / MANIFEST).is_file()
    assert not [p for p in (tmp_path / "world").iterdir() if p.name.startswith(".tmp")]
    stamp = (root / MANIFEST).stat().st_mtime_ns
    assert ensure_world(tmp_path) == root  # complete: nothing regenerated
    assert (root / MANIFEST).stat().st_mtime_ns == stamp
