"""A catalogue of bad inputs: each is one line on stderr, exit code 2, no traceback, before any work.

"Before any work" is checked by the absence of an MLflow store in the working directory: every
case fails before the sweep opens one. The split-file and image cases use a tiny dataset laid out
like the paper profile's (`<root>/PatternNet/patternnet.json`, images under `images/`), and a
Hugging Face cache holding a stand-in for the paper backbone's weights (models are checked before
the images are; nothing here loads them).
"""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.cli.main import main

PAPER = ["run", "--profile", "paper", "--datasets", "patternnet", "--methods", "zeroshot", "--seeds", "1"]
CLASSES = ("forest", "river", "beach")
VIT_WEIGHTS = "hf/hub/models--timm--vit_base_patch16_clip_224.openai/snapshots/abc123/open_clip_pytorch_model.bin"


@pytest.fixture(autouse=True)
def hub_cache(tmp_path, monkeypatch):
    """A Hugging Face cache (offline, as in every test) with the paper backbone's weights file, a stand-in."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # open_clip's own cache is ~/.cache/clip
    weights = tmp_path / VIT_WEIGHTS
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"x")
    (weights.parents[2] / "refs").mkdir()
    (weights.parents[2] / "refs" / "main").write_text("abc123")


def _dataset(root: Path) -> Path:
    """`<root>/PatternNet`: 3 classes, 2 train / 1 val / 1 test image each, as JPEGs."""
    base = root / "PatternNet"
    split = {"train": [], "val": [], "test": []}
    rng = np.random.default_rng(0)
    for label, name in enumerate(CLASSES):
        (base / "images" / name).mkdir(parents=True, exist_ok=True)
        for k, subset in enumerate(("train", "train", "val", "test")):
            rel = f"{name}/{name}_{k}.jpg"
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(base / "images" / rel)
            split[subset].append([rel, label, name])
    (base / "patternnet.json").write_text(json.dumps(split))
    return base


def _split(root: Path) -> dict:
    return json.loads((root / "PatternNet" / "patternnet.json").read_text())


def _write_split(root: Path, split) -> None:
    (root / "PatternNet" / "patternnet.json").write_text(split if isinstance(split, str) else json.dumps(split))


# Each case: (name, argv, setup(tmp root) or None, expected message fragment).
def _config(text):
    def setup(root):
        (root / "sweep.yaml").write_text(text)

    return setup


def _edit_split(edit):
    def setup(root):
        _dataset(root)
        split = _split(root)
        _write_split(root, edit(split) or split)

    return setup


def _image(action):
    def setup(root):
        _dataset(root)
        path = root / "PatternNet" / "images" / "river" / "river_1.jpg"
        action(path)

    return setup


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _without_backbone_weights(root: Path) -> None:
    _dataset(root)
    (root / VIT_WEIGHTS).unlink()


CASES = [
    ("yaml syntax", ["run", "--config", "sweep.yaml"], _config("methods: [coop\nseeds: 1\n"), "invalid YAML at line"),
    ("yaml unknown key", ["run", "--config", "sweep.yaml"], _config("method: coop\n"), "did you mean 'methods'"),
    ("yaml wrong type", ["run", "--config", "sweep.yaml"], _config("seeds: one\n"), "'seeds' expects an integer"),
    ("yaml not a mapping", ["run", "--config", "sweep.yaml"], _config("- coop\n"), "expected a mapping"),
    ("yaml missing", ["run", "--config", "nope.yaml"], None, "config file not found"),
    ("yaml bad override", ["run", "--config", "sweep.yaml"], _config("methods: coop\nset: {n_cxt: 4}\n"), "n_cxt"),
    (
        "yaml override type",
        ["run", "--config", "sweep.yaml"],
        _config("methods: coop\nset: {coop.n_ctx: four}\n"),
        "n_ctx='four': expected int",
    ),
    ("workers zero", ["run", "--workers", "0"], None, "--workers must be a positive integer or auto, got 0"),
    ("workers text", ["run", "--workers", "x"], None, "--workers expects an integer, got 'x'"),
    ("workers negative yaml", ["run", "--config", "sweep.yaml"], _config("workers: -2\n"), "got -2"),
    ("seeds negative", ["run", "--seeds", "-1", "--dry-run"], None, "seeds must be non-negative integers"),
    ("shots text", ["run", "--shots", "many"], None, "--shots expects comma-separated integers, got 'many'"),
    ("shots zero", ["run", "--shots", "4,0"], None, "shots must be positive integers, got 0"),
    ("executor typo", ["run", "--executor", "rey"], None, "unknown executor 'rey'; did you mean 'ray'"),
    ("tracking unreachable", ["run", "--tracking-uri", "http://127.0.0.1:9"], None, "tracking server unreachable"),
    ("server host foreign", ["run", "--executor", "local", "--server-host", "203.0.113.7"], None, "cannot listen"),
    ("ray unreachable", ["run", "--executor", "ray", "--ray-address", "127.0.0.1:9"], None, "Ray cluster unreachable"),
    ("paper without root", PAPER, None, "the paper profile needs a data root"),
    ("data root missing", [*PAPER, "--data-root", "nowhere"], None, "data root not found"),
    ("split missing", [*PAPER, "--data-root", "."], lambda r: (r / "PatternNet").mkdir(), "split file not found"),
    ("split malformed", [*PAPER, "--data-root", "."], _edit_split(lambda s: "{not json"), "malformed JSON"),
    (
        "split path escapes",
        [*PAPER, "--data-root", "."],
        _edit_split(lambda s: s["test"].append(["../../etc/passwd", 0, "forest"])),
        "escapes the dataset root",
    ),
    (
        "split two class names",
        [*PAPER, "--data-root", "."],
        _edit_split(lambda s: s["val"].append(["forest/forest_0.jpg", 0, "woods"])),
        "label 0 has two class names, 'forest' and 'woods'",
    ),
    (
        "split empty class",
        [*PAPER, "--data-root", "."],
        _edit_split(lambda s: s.update(train=[e for e in s["train"] if e[2] != "beach"])),
        "class 'beach' has no training image",
    ),
    ("image missing", [*PAPER, "--data-root", "."], _image(lambda p: p.unlink()), "image not found"),
    (
        "image corrupt",
        [*PAPER, "--data-root", "."],
        _image(lambda p: p.write_bytes(b"not an image")),
        "corrupt or unreadable image",
    ),
    (
        "image truncated",
        [*PAPER, "--data-root", "."],
        _image(_truncate),
        "corrupt or unreadable image PatternNet/images/river/river_1.jpg (",
    ),
    (
        "captioner not cached",
        [*PAPER, "--data-root", ".", "--methods", "bimors"],
        _dataset,
        "captioner blip2 needs Salesforce/blip2-flan-t5-xl and caption encoder bert-base-uncased, which the Hugging",
    ),
    (
        "backbone weights not cached",
        [*PAPER, "--data-root", "."],
        _without_backbone_weights,
        "backbone ViT-B-16:openai needs timm/vit_base_patch16_clip_224.openai, which the Hugging Face cache",
    ),
]


@pytest.mark.parametrize("argv, setup, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(argv, setup, message, isolated, monkeypatch, capsys):
    monkeypatch.delenv("BENCHMARK_DATA", raising=False)
    if setup is not None:
        setup(isolated)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (isolated / "mlflow.db").exists()  # nothing started


def test_catalogue_is_large_and_distinct():
    assert len(CASES) >= 15 and len({c[0] for c in CASES}) == len(CASES)


def test_good_dataset_passes_validation_and_the_image_check_is_cached(isolated, monkeypatch):
    from benchmark.data.catalog import open_dataset
    from benchmark.data.imagecheck import check_dataset_images
    from benchmark.plan.profiles import get_profile

    _dataset(isolated)
    dataset = open_dataset(get_profile("paper").dataset("patternnet"), isolated)
    check_dataset_images(dataset, isolated / "cache")
    markers = list((isolated / "cache" / "checks").glob("images-patternnet-*.json"))
    assert len(markers) == 1
    calls = []
    monkeypatch.setattr("benchmark.data.imagecheck._verify", lambda path: calls.append(path))
    check_dataset_images(dataset, isolated / "cache")
    assert calls == []  # unchanged files: no decode
    path = isolated / "PatternNet" / "images" / "river" / "river_1.jpg"
    path.write_bytes(path.read_bytes() + b"\0")  # a changed file is checked again
    check_dataset_images(dataset, isolated / "cache")
    assert len(calls) == 3 * 4
