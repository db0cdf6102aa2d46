"""Tests of the world's tiny CLIP: checkpoint contract, zero-shot floors on the world, pretraining smoke."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from benchmark.world import WORLD_DATASETS, WORLD_PROTOCOLS  # noqa: E402
from benchmark.world.model import (  # noqa: E402
    CHECKPOINT,
    META,
    WORLD_CLIP_ID,
    ChecksumError,
    build_world_clip_untrained,
    load_world_clip,
    world_clip_digest,
)

MAX_CKPT_BYTES = 20 * 1024 * 1024
#: Acceptance band of the issue: every b2n half >= 2.5x chance and <= 85 %; v2 sets >= 2.5x chance.
CHANCE_FACTOR = 2.5
MAX_HALF_ACC = 85.0
V2_KEYS = ("patternnetv2", "rsicdv2", "resisc45v2", "mlrsnetv2")


@pytest.fixture(scope="module")
def world_clip():
    torch.set_num_threads(2)
    return load_world_clip()


@pytest.fixture(scope="module")
def test_split_world(world_cache) -> Path:
    """The real (default-size) world: the session's generated one, whose test split the zero-shot floors read."""
    from benchmark.world import ensure_world

    return ensure_world(world_cache)


def test_committed_checkpoint_contract(world_clip):
    meta = json.loads(META.read_text())
    assert CHECKPOINT.stat().st_size <= MAX_CKPT_BYTES
    assert meta["id"] == WORLD_CLIP_ID and len(world_clip_digest()) == 12
    assert {"model_cfg", "recipe", "seed", "train_log", "sha256"} <= set(meta)
    assert {"steps", "final_loss", "wall_s", "logit_scale"} <= set(meta["train_log"])
    assert type(world_clip) is open_clip.model.CLIP and not world_clip.training
    assert world_clip.context_length >= 32 and world_clip.vocab_size == 49408
    assert world_clip.visual.attn_pool is None and world_clip.visual.pool_type == "tok"
    assert world_clip.text_pool_type == "argmax" and world_clip.attn_mask is not None
    assert all(p.dtype == torch.float32 for p in world_clip.parameters())
    n = sum(p.numel() for p in world_clip.parameters())
    assert 2e6 < n < 12e6 and n == meta["params"]
    state = torch.load(CHECKPOINT, map_location="cpu", weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())


def test_corrupt_checkpoint_is_refused(tmp_path):
    pt, js = tmp_path / "world_clip.pt", tmp_path / "world_clip.json"
    shutil.copy(CHECKPOINT, pt)
    shutil.copy(META, js)
    data = bytearray(pt.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pt.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="sha256"):
        load_world_clip(pt)


def test_untrained_build_is_deterministic_and_leaves_global_rng():
    state = torch.random.get_rng_state()
    a, b = build_world_clip_untrained(3), build_world_clip_untrained(3)
    assert torch.equal(torch.random.get_rng_state(), state)
    for (ka, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(va, vb), ka


def test_zero_shot_floors_on_the_world(world_clip, test_split_world):
    from benchmark.world.evaluate import zero_shot

    for key in WORLD_PROTOCOLS["b2n"]:
        n = len(WORLD_DATASETS[key].classnames)
        m = math.ceil(n / 2)
        acc = zero_shot(world_clip, test_split_world, key)
        for half, k in (("base", m), ("new", n - m)):
            assert CHANCE_FACTOR * 100 / k <= acc[half] <= MAX_HALF_ACC, (key, half, acc)
    for key in V2_KEYS:
        acc = zero_shot(world_clip, test_split_world, key)
        assert acc["all"] >= CHANCE_FACTOR * 100 / len(WORLD_DATASETS[key].classnames), (key, acc)


def test_pretraining_smoke(tmp_path, monkeypatch):
    from benchmark.world.pretrain import run_pretrain

    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory
    out = tmp_path / "tiny.pt"
    argv = [
        "--steps",
        "2",
        "--corpus-size",
        "48",
        "--batch-size",
        "16",
        "--warmup",
        "1",
        "--out",
        str(out),
        "--cache-dir",
        "",
        "--log-every",
        "1",
    ]
    assert run_pretrain(argv) == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["train_log"]["steps"] == 2 and math.isfinite(meta["train_log"]["final_loss"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.json", "tiny.pt"]
    model = load_world_clip(out)
    with torch.no_grad():
        f = model.encode_text(open_clip.tokenize(["a photo of a forest."], context_length=model.context_length))
    assert f.shape == (1, model.text_projection.shape[1])
