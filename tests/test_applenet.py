"""APPLeNet (reference parity: test_parity.py): the CRP term, the multi-scale condition and the fp16 quirk."""

import math

import pytest
import torch
import torch.nn.functional as F

from benchmark.core.method import Batch
from methods.applenet import APPLeNet, APPLeNetConfig

CLASSES = ["forest", "river", "dense_residential", "storage tank"]


def build(clip, **kwargs):
    torch.manual_seed(0)
    return APPLeNet(clip, APPLeNetConfig(**kwargs), CLASSES)


def batch(clip, n=2):
    g = torch.Generator().manual_seed(1)
    pixels = torch.randn(n, 3, clip.image_size, clip.image_size, generator=g)
    return Batch(labels=torch.arange(n) % len(CLASSES), images=pixels)


def diagonal_context(width, scales):
    ctx = torch.zeros(1, len(scales), width)
    for i, s in enumerate(scales):
        ctx[0, i, i] = s
    return ctx


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_crp_is_the_mean_determinant_of_the_scaled_gram_minus_identity(tiny_clip, temperature):
    method = build(tiny_clip, temperature=temperature)
    ctx = diagonal_context(tiny_clip.text_width, [2.0, 0.5, 0.5, 0.5])  # Gram = diag(4, .25, .25, .25)
    t = temperature
    expected = math.prod(g / t**3 - 1 / t for g in (4.0, 0.25, 0.25, 0.25))
    assert method.crp(ctx).item() == pytest.approx(expected, rel=1e-6)
    two = torch.cat([ctx, diagonal_context(tiny_clip.text_width, [3.0, 0.5, 0.5, 0.5])])  # any batch size
    second = math.prod(g / t**3 - 1 / t for g in (9.0, 0.25, 0.25, 0.25))
    assert method.crp(two).item() == pytest.approx((expected + second) / 2, rel=1e-6)


def test_training_loss_adds_the_weighted_log10_penalty(tiny_clip):
    method = build(tiny_clip)
    data = batch(tiny_clip)
    method.train()
    logits = method(data)
    ce = F.cross_entropy(logits, data.labels)
    crp = method.crp(method._ctx_shifted)
    penalty = 0.05 * torch.log10(-crp) if crp < 0 else torch.tensor(float("nan"))
    total = method.loss(logits, data.labels)
    assert torch.allclose(total, ce + penalty, equal_nan=True)
    with method.evaluating():
        eval_logits = method(data)
    assert torch.allclose(eval_logits, logits.detach(), atol=1e-6)
    assert torch.equal(method.loss(eval_logits, data.labels), F.cross_entropy(eval_logits, data.labels))


def test_block_means_cover_every_vision_block(tiny_clip):
    method = build(tiny_clip)
    data = batch(tiny_clip)
    pooled, means = method.block_means(data.images)
    layers = len(tiny_clip.model.visual.transformer.resblocks)
    assert means.shape == (2, layers, tiny_clip.vision_width) and not means.requires_grad
    tokens = tiny_clip.encode_image(data.images, return_tokens=True)
    assert torch.allclose(means[:, -1], tokens.tokens.mean(dim=1), atol=1e-6)
    assert torch.allclose(pooled, tokens.pooled, atol=1e-6)


def test_reference_scale_count_leaves_surplus_projections_untrained(tiny_clip):
    layers = len(tiny_clip.model.visual.transformer.resblocks)
    method = build(tiny_clip, n_scales=12)
    data = batch(tiny_clip)
    method.train()
    method.loss(method(data), data.labels).backward()
    used = [p.weight.grad is not None for p in method.scale_proj]
    assert used == [True] * layers + [False] * (12 - layers)
    with pytest.raises(ValueError):
        build(tiny_clip, n_scales=layers - 1)


def test_half_cast_rounds_the_meta_net_input(tiny_clip):
    seen = []
    for half in (True, False):
        method = build(tiny_clip, half_cast_bias=half)
        method.meta_net.register_forward_hook(lambda m, i, o: seen.append(i[0].detach()))
        with method.evaluating():
            method(batch(tiny_clip))
    rounded, exact = seen[0], seen[-1]
    assert len(seen) == 2 * 4  # one meta-net call per context token
    assert torch.equal(rounded, rounded.half().float()) and rounded.dtype == torch.float32
    assert not torch.equal(exact, exact.half().float())
    assert torch.allclose(rounded, exact, rtol=1e-3, atol=1e-4)
