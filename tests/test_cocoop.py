"""CoCoOp (reference parity: test_parity.py): per-image conditioning, fast path == naive path."""

import pytest
import torch

from benchmark.core.method import Batch
from benchmark.core.shortcuts import FAST, NAIVE
from methods.cocoop import CoCoOp, CoCoOpConfig

CLASSES = ["forest", "river", "dense_residential", "storage tank", "beach"]


def build(clip, cfg=None, classnames=CLASSES):
    torch.manual_seed(0)
    method = CoCoOp(clip, cfg or CoCoOpConfig(), classnames)
    with torch.no_grad():  # a non-trivial meta-net so the conditioning matters
        for p in method.meta_net.parameters():
            p.normal_(0, 0.3)
    return method


def images(clip, n, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, clip.image_size, clip.image_size, generator=g)


def test_structure_follows_the_reference(tiny_clip):
    method = build(tiny_clip)
    d, w = tiny_clip.embed_dim, tiny_clip.text_width
    assert method.ctx.shape == (4, w)  # n_ctx = word count of "a photo of a"
    assert method.meta_net.linear1.weight.shape == (d // 16, d)
    assert method.meta_net.linear2.weight.shape == (w, d // 16)
    trainable = sorted(n for n, p in method.named_parameters() if p.requires_grad)
    assert trainable == ["ctx"] + [f"meta_net.linear{i}.{k}" for i in (1, 2) for k in ("bias", "weight")]
    assert torch.equal(method.ctx, tiny_clip.context_init("a photo of a"))
    random = CoCoOp(tiny_clip, CoCoOpConfig(n_ctx=3, ctx_init=""), CLASSES)
    assert random.prompts.texts[0] == "X X X forest." and random.ctx.shape == (3, w)


@pytest.mark.parametrize("train", [False, True])
def test_fast_path_equals_naive_loop(tiny_clip, train):
    method = build(tiny_clip)
    batch = Batch(labels=torch.tensor([0, 3, 4]), images=images(tiny_clip, 3))
    results = {}
    for name, fast in (("fast", FAST), ("naive", NAIVE)):
        method.fast = fast
        method.zero_grad(set_to_none=True)
        method.train(train)
        logits = method(batch)
        method.loss(logits, batch.labels).backward()
        grads = (method.ctx.grad.clone(), method.meta_net.linear1.weight.grad.clone())
        results[name] = (logits.detach(), *grads)
    for fast_t, naive_t in zip(results["fast"], results["naive"]):
        assert (fast_t - naive_t).abs().max() <= 1e-5 * naive_t.abs().max()


def test_each_row_depends_only_on_its_own_image(tiny_clip):
    method = build(tiny_clip)
    pixels = images(tiny_clip, 3)
    with method.evaluating():
        together = method(Batch(images=pixels))
        alone = torch.cat([method(Batch(images=pixels[i : i + 1])) for i in range(3)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)
    # the conditioning is real: the same image gives different logits than without the meta-net bias
    with method.evaluating():
        for p in method.meta_net.linear2.parameters():
            p.zero_()
        unconditioned = method(Batch(images=pixels))
    assert (unconditioned - together).abs().max() > 1e-3
