"""The image bank: cached features equal the image tower's, in memory or streamed from disk."""

import torch

import benchmark.data.pipeline as pipeline
from benchmark.data.catalog import DatasetSpec, open_dataset
from benchmark.data.feature_cache import FeatureCache
from benchmark.data.transforms import TEST_VIEW, TransformSpec


def bank(tiny_root, clip, cache, need_tokens=True):
    dataset = open_dataset(DatasetSpec("tiny", "Tiny", "tiny.json"), tiny_root)
    return pipeline.ImageBank(
        dataset,
        dataset.split.test,
        clip=clip,
        transform=TransformSpec(size=clip.image_size),
        use_features=True,
        need_tokens=need_tokens,
        cache=cache,
    )


def test_features_equal_the_image_tower_and_are_reused_from_disk(tiny_root, tiny_clip, tmp_path):
    cache = FeatureCache(tmp_path / "f.sqlite")
    first = bank(tiny_root, tiny_clip, cache)
    got = first.features([0, 3, 5], 2)
    with torch.no_grad():
        direct = tiny_clip.encode_image(first.pixels([0, 3, 5], 2), return_tokens=True)
    assert torch.allclose(got.pooled, direct.pooled, atol=1e-5) and torch.allclose(got.tokens, direct.tokens, atol=1e-5)
    stored = cache.count()
    again = bank(tiny_root, tiny_clip, cache).features([0, 3, 5], 2)
    assert cache.count() == stored and torch.equal(again.tokens, got.tokens)


def test_large_token_banks_stream_from_disk_with_the_same_numbers(tiny_root, tiny_clip, tmp_path, monkeypatch):
    in_memory = bank(tiny_root, tiny_clip, FeatureCache(tmp_path / "a.sqlite"))
    in_memory.prepare([TEST_VIEW])
    monkeypatch.setattr(pipeline, "TOKEN_MEMORY_BUDGET", 1)
    streamed = bank(tiny_root, tiny_clip, FeatureCache(tmp_path / "b.sqlite"))
    streamed.prepare([TEST_VIEW])
    assert streamed._streaming and not streamed._features
    for indices in ([0, 1, 2], [7, 4]):
        a, b = in_memory.features(indices, TEST_VIEW), streamed.features(indices, TEST_VIEW)
        assert torch.equal(a.pooled, b.pooled) and torch.equal(a.tokens, b.tokens)
    calls = []
    monkeypatch.setattr(streamed, "_lookup", lambda pairs: calls.append(pairs) or {})
    streamed.prepare([TEST_VIEW])  # evaluation prepares again each epoch: the disk already holds the view
    assert calls == []
