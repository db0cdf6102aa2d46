"""Fast path vs naive (reference-equivalent) path, side by side, for every registered method.

`pytest tests/bench --benchmark-only --benchmark-json=bench.json`, then
`python tests/bench/ratios.py bench.json` prints the median ratios. The naive path is the same code with
every exact shortcut off (`benchmark.core.shortcuts.NAIVE`): full-length prompts, a Python loop over images for
per-image prompts, class text recomputed every batch, and the image tower run on pixels every step.
Both paths get their inputs ready in memory (pixels for naive, cached features for fast), so the timings
compare computation only.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from benchmark.backbone import FrozenClip
from benchmark.core.method import Batch
from benchmark.core.shortcuts import FAST, NAIVE
from benchmark.registry import METHODS

PATHS = {"fast": FAST, "naive": NAIVE}
CASES = [pytest.param(m, p, id=f"{m}-{p}") for m, p in itertools.product(METHODS.names(), PATHS)]
N_CLASSES = 10  # a world dataset's base half
EVAL_IMAGES = 200

# ViT-B/16 widths (768 vision, 512 text, 77 context, 224 px) with 2 layers per tower: the paper
# backbone's shape at a cost a 2-core CPU can time.
VITB16_SHAPED = {
    "embed_dim": 512,
    "vision_cfg": {"image_size": 224, "patch_size": 16, "width": 768, "layers": 2, "head_width": 64},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 2},
    "quick_gelu": True,
}
CLASSNAMES = [
    "forest", "river", "dense residential", "beach", "runway", "storage tank", "tennis court", "harbor",
    "golf course", "parking lot", "airplane", "bridge",
]  # fmt: skip


@pytest.fixture(scope="module")
def world_clip() -> FrozenClip:
    from benchmark.world.model import load_world_clip

    torch.set_num_threads(2)
    return FrozenClip(load_world_clip(), identity="world")


@pytest.fixture(scope="module")
def vitb16_clip() -> FrozenClip:
    import open_clip

    torch.manual_seed(0)
    return FrozenClip(open_clip.model.CLIP(**VITB16_SHAPED).eval(), identity="vitb16-shaped")


def _method(name: str, clip: FrozenClip, path: str):
    cls = METHODS.get(name)
    preset = cls.presets[cls.default_preset("world", "b2n")]
    torch.manual_seed(0)
    method = cls(clip, preset.method, CLASSNAMES[:N_CLASSES])
    method.fast = PATHS[path]
    return method, preset.train


def _batch(method, clip: FrozenClip, n: int, path: str) -> Batch:
    """Inputs as each path consumes them: pixels (naive), or precomputed frozen features (fast)."""
    g = torch.Generator().manual_seed(0)
    images = torch.randn(n, 3, clip.image_size, clip.image_size, generator=g)
    labels = torch.arange(n) % N_CLASSES
    captions = None
    if type(method).requirements.captions:
        captions = torch.randn(n, method.cfg.caption_dim, generator=g)
    frozen = type(method).requirements.frozen_image_path
    if path == "fast" and frozen:
        with torch.no_grad():
            features = clip.encode_image(images, return_tokens=type(method).requirements.image_tokens)
        return Batch(labels=labels, features=features, captions=captions)
    return Batch(labels=labels, images=images, captions=captions)


def _train_step(method, batch: Batch, lr: float):
    params = [p for p in method.parameters() if p.requires_grad]
    if not params:
        pytest.skip("zero-shot CLIP has no training step")
    optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=5e-4)
    method.train()

    def step():
        loss = method.loss(method(batch), batch.labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def _evaluate(method, batches: list[Batch]):
    def run():
        with method.evaluating():
            for batch in batches:
                method(batch)

    return run


@pytest.mark.parametrize("method_name, path", CASES)
def test_train_step(benchmark, world_clip, method_name, path):
    method, train = _method(method_name, world_clip, path)
    step = _train_step(method, _batch(method, world_clip, train.batch_size, path), train.lr)
    benchmark.pedantic(step, rounds=15, iterations=1, warmup_rounds=2)


@pytest.mark.parametrize("method_name, path", CASES)
def test_evaluate(benchmark, world_clip, method_name, path):
    method, train = _method(method_name, world_clip, path)
    size = train.eval_batch_size
    batches = [_batch(method, world_clip, min(size, EVAL_IMAGES - s), path) for s in range(0, EVAL_IMAGES, size)]
    benchmark.pedantic(_evaluate(method, batches), rounds=5, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("method_name, path", CASES)
def test_train_step_vitb16(benchmark, vitb16_clip, method_name, path):
    method, train = _method(method_name, vitb16_clip, path)
    step = _train_step(method, _batch(method, vitb16_clip, 4, path), train.lr)
    benchmark.pedantic(step, rounds=3, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("method_name, path", CASES)
def test_evaluate_vitb16(benchmark, vitb16_clip, method_name, path):
    method, _ = _method(method_name, vitb16_clip, path)
    batches = [_batch(method, vitb16_clip, 8, path) for _ in range(2)]
    benchmark.pedantic(_evaluate(method, batches), rounds=3, iterations=1, warmup_rounds=1)
