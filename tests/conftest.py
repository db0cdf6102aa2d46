"""Shared fixtures: a random tiny CLIP, a tiny split-format dataset, an isolated cache and store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

SHARED = Path(__file__).resolve().parents[2] / "shared"
TINY_CLASSES = ("forest", "river", "dense_residential", "beach", "runway")
PARITY_DIR_ENV = "BENCHMARK_PARITY_DIR"  # points the parity tests elsewhere (e.g. at nothing, to test the absent case)


def parity_dir() -> Path:
    """The reference parity fixtures: ../shared/parity unless BENCHMARK_PARITY_DIR says otherwise."""
    return Path(os.environ.get(PARITY_DIR_ENV) or SHARED / "parity")


REPO_PARITY = Path(__file__).resolve().parent / "parity"  # fixtures this repository made (tests/parity/README.md)


def parity_fixtures(folder: Path | None = None) -> list[Path]:
    """Every fixture file in `folder` (default `parity_dir()`), sorted; empty when the folder is absent."""
    folder = parity_dir() if folder is None else folder
    return sorted(folder.glob("*.pt")) if folder.is_dir() else []


def require_parity() -> Path:
    """The parity folder; without it, skip locally but fail under CI, so CI cannot pass on no parity at all."""
    folder = parity_dir()
    if not parity_fixtures(folder):
        if os.environ.get("CI"):
            pytest.fail(f"../shared/parity is absent: CI needs it (no *.pt in {folder})", pytrace=False)
        pytest.skip(f"../shared/parity is absent (no *.pt in {folder})")
    return folder


def make_tiny_clip():
    """The random tiny CLIP `random-tiny:0` (also built by scripts that regenerate golden files)."""
    from benchmark.backbone import FrozenClip
    from benchmark.backbone.load import build_tiny_clip

    return FrozenClip(build_tiny_clip(0), identity="random-tiny:0")


@pytest.fixture(scope="session")
def tiny_clip():
    return make_tiny_clip()


def write_dataset(
    root: Path,
    folder: str = "Tiny",
    split_file: str = "tiny.json",
    classes=TINY_CLASSES,
    per_class=(6, 3, 4),
    size: int = 40,
    order=None,
) -> Path:
    """A dataset in the real split-JSON layout: coloured noise images, labels in `order`."""
    rng = np.random.default_rng(0)
    base = root / folder
    order = list(order) if order is not None else list(range(len(classes)))
    split = {"train": [], "val": [], "test": []}
    captions = {}
    for label, class_index in enumerate(order):
        name = classes[class_index]
        (base / "images" / name).mkdir(parents=True, exist_ok=True)
        colour = rng.integers(0, 255, size=3)
        k = 0
        for subset, count in zip(("train", "val", "test"), per_class):
            for _ in range(count):
                pixels = np.clip(colour + rng.normal(0, 30, size=(size, size, 3)), 0, 255).astype(np.uint8)
                rel = f"{name}/{name}_{k:03d}.png"
                Image.fromarray(pixels).save(base / "images" / rel)
                split[subset].append([rel, label, name])
                captions[rel] = f"an area with colour {int(colour[0])} and texture {k % 3}"
                k += 1
    (base / split_file).write_text(json.dumps(split))
    (base / "captions.json").write_text(json.dumps(captions))
    return base


@pytest.fixture
def tiny_root(tmp_path) -> Path:
    write_dataset(tmp_path)
    return tmp_path


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Run in a fresh working directory with its own cache and MLflow store."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BENCHMARK_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.fixture(scope="session")
def world_cache(tmp_path_factory) -> Path:
    """A cache folder holding the generated world (generated once per test session).

    Set BENCHMARK_TEST_CACHE to reuse a world across sessions.
    """
    from benchmark.world import ensure_world

    folder = Path(os.environ.get("BENCHMARK_TEST_CACHE") or tmp_path_factory.mktemp("world-cache"))
    ensure_world(folder)
    return folder


@pytest.fixture
def world_env(world_cache, tmp_path, monkeypatch):
    """A fresh working directory whose cache already holds the world."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BENCHMARK_CACHE", str(world_cache))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


# Tiny open_clip models for the checkpoint-format tests (test_backbone_load.py, test_backbone_registry.py).
OPENAI_TINY = {  # OpenAI's conventions (heads = width // 64, QuickGELU) at the tiny scale
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 64, "layers": 2, "head_width": 64},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 2},
    "quick_gelu": True,
}


@pytest.fixture(scope="module")
def tiny():
    """The tests' tiny open_clip architecture, seeded (weights to write into checkpoints)."""
    from benchmark.backbone.load import build_tiny_clip

    return build_tiny_clip(3)


@pytest.fixture(scope="module")
def openai_tiny():
    """A tiny CLIP with OpenAI's conventions, for OpenAI-format checkpoints."""
    import open_clip
    import torch

    torch.manual_seed(5)
    return open_clip.model.CLIP(**OPENAI_TINY).eval()
