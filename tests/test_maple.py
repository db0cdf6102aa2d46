"""MaPLe (reference parity: test_parity.py): deep-prompt plumbing, the fp16 quirk, fast path == naive path."""

import pytest
import torch

from benchmark.core.method import Batch
from benchmark.core.shortcuts import FAST, NAIVE
from methods.maple import MaPLe, MaPLeConfig

CLASSES = ["forest", "river", "dense_residential", "storage tank"]


def build(clip, **kwargs):
    torch.manual_seed(0)
    return MaPLe(clip, MaPLeConfig(**kwargs), CLASSES)


def batch(clip, n=3):
    g = torch.Generator().manual_seed(1)
    pixels = torch.randn(n, 3, clip.image_size, clip.image_size, generator=g)
    return Batch(labels=torch.arange(n) % len(CLASSES), images=pixels)


def test_surplus_deep_prompts_get_no_gradient(tiny_clip):
    layers = len(tiny_clip.model.transformer.resblocks)  # 2 in both towers of the tiny CLIP
    method = build(tiny_clip, prompt_depth=layers + 3)
    assert len(method.compound_prompts_text) == layers + 2
    data = batch(tiny_clip)
    method.train()
    method.loss(method(data), data.labels).backward()
    used = range(layers - 1)  # deep prompt k feeds block k + 1
    for k in range(len(method.compound_prompts_text)):
        grads = [method.compound_prompts_text[k].grad, method.compound_prompt_projections[k].weight.grad]
        assert all((g is not None) == (k in used) for g in grads), k
    assert method.ctx.grad is not None and method.proj.weight.grad is not None


def test_deep_projections_start_identical(tiny_clip):
    method = build(tiny_clip, prompt_depth=4)
    first = method.compound_prompt_projections[0]
    assert first.weight.shape == (tiny_clip.vision_width, tiny_clip.text_width)
    for other in list(method.compound_prompt_projections)[1:]:
        assert torch.equal(other.weight, first.weight) and torch.equal(other.bias, first.bias)
        assert other.weight.data_ptr() != first.weight.data_ptr()
    texts = method.compound_prompts_text
    assert not torch.equal(texts[0], texts[1]) and abs(float(texts[0].detach().std()) - 0.02) < 0.01


def test_ctx_init_only_up_to_four_tokens(tiny_clip):
    short = build(tiny_clip, n_ctx=2, ctx_init="a photo of a")
    assert short.prompts.texts[0] == "a photo of a forest."  # "of a" stays frozen in the template
    assert torch.equal(short.ctx, tiny_clip.context_init("a photo of a")[:2])
    long = build(tiny_clip, n_ctx=5, ctx_init="a photo of a")
    assert long.prompts.texts[0] == "X X X X X forest." and long.ctx.shape == (5, tiny_clip.text_width)
    assert abs(float(long.ctx.detach().std()) - 0.02) < 0.01


@pytest.mark.parametrize("depth", [0, 1])
def test_shallow_depth_has_no_deep_prompts(tiny_clip, depth):
    method = build(tiny_clip, prompt_depth=depth)
    assert len(method.compound_prompts_text) == 0 and len(method.compound_prompt_projections) == 0
    data = batch(tiny_clip)
    method.train()
    method.loss(method(data), data.labels).backward()
    assert method.ctx.grad is not None and method.proj.bias.grad is not None


def test_half_cast_rounds_values_and_each_copy_gradient(tiny_clip):
    method = build(tiny_clip, half_cast_prompts=True)
    prompt = torch.full((2, 3), 1 + 2**-13, requires_grad=True)  # not fp16-exact
    out = method._inject(prompt, 4, torch.float32)
    assert out.shape == (4, 2, 3) and out.dtype == torch.float32
    assert torch.equal(out, torch.ones(4, 2, 3))
    upstream = torch.full((4, 2, 3), 2**-11 + 2**-24)  # each copy's gradient rounds to 2**-11
    out.backward(upstream)
    assert torch.equal(prompt.grad, torch.full((2, 3), 4 * 2**-11))
    exact = build(tiny_clip, half_cast_prompts=False)._inject(prompt.detach(), 4, torch.float32)
    assert torch.equal(exact, prompt.detach().expand(4, -1, -1))


@pytest.mark.parametrize("train", [False, True])
def test_fast_path_equals_naive(tiny_clip, train):
    # Gradients are compared without the fp16 casts: rounding each copy's gradient to fp16 turns
    # float32 summation-order noise into fp16 steps (parity README, "Precision and tolerances").
    method = build(tiny_clip, prompt_depth=3, half_cast_prompts=not train)
    data = batch(tiny_clip)
    results = {}
    for name, fast in (("fast", FAST), ("naive", NAIVE)):
        method.fast = fast
        method.zero_grad(set_to_none=True)
        if train:
            method.train()
            logits = method(data)
            method.loss(logits, data.labels).backward()
            grads = [method.ctx.grad, method.compound_prompts_text[0].grad]
            grads.append(method.compound_prompt_projections[0].weight.grad)
            results[name] = (logits.detach(), *(g.clone() for g in grads))
        else:
            with method.evaluating():
                results[name] = (method(data), method(data))
    for fast_t, naive_t in zip(results["fast"], results["naive"]):
        assert (fast_t - naive_t).abs().max() <= 1e-5 * naive_t.abs().max()


def test_class_text_is_computed_once_per_evaluation(tiny_clip, monkeypatch):
    method = build(tiny_clip)
    calls = []
    original = method.compute_class_text
    monkeypatch.setattr(method, "compute_class_text", lambda: calls.append(1) or original())
    data = batch(tiny_clip)
    with method.evaluating():
        method(data), method(data)
    assert len(calls) == 1
    method.train()
    method(data), method(data)
    assert len(calls) == 3


def test_default_presets():
    assert MaPLe.default_preset("paper", "b2n") == "paper"
    assert MaPLe.default_preset("paper", "xd") == MaPLe.default_preset("paper", "dg") == "paper_xd"
    assert MaPLe.default_preset("world", "b2n") == "world"
    assert not MaPLe.presets["no_half_cast"].method.half_cast_prompts
    assert MaPLe.presets["paper"].method.half_cast_prompts
