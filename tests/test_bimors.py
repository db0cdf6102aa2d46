"""BiMoRS (reference parity: test_parity.py): structure and dtypes of the faithful model, fast path == naive loop."""

from dataclasses import replace

import pytest
import torch

from benchmark.backbone import FrozenClip
from benchmark.backbone.load import build_tiny_clip
from benchmark.core.method import Batch
from benchmark.core.shortcuts import FAST, NAIVE
from benchmark.plan.profiles import get_profile
from methods.bimors import PRESETS, BiMoRS, BiMoRSConfig

CLASSES = ["forest", "river", "dense_residential", "storage tank", "beach"]
FP32 = BiMoRSConfig(caption_dim=12, fp16_cross_attn=False)
FAITHFUL = BiMoRSConfig(caption_dim=12)


@pytest.fixture(scope="module")
def clip():
    return FrozenClip(build_tiny_clip(0), identity="t")


def build(clip, cfg, classnames=CLASSES):
    torch.manual_seed(0)
    method = BiMoRS(clip, cfg, classnames)
    with torch.no_grad():  # non-trivial conditioning so the per-image prompts differ
        for p in [*method.meta_net.parameters(), *method.caption_proj.parameters()]:
            p.normal_(0, 0.3)
    return method


def batch(clip, n=3, seed=1, labels=(0, 3, 4)):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 3, clip.image_size, clip.image_size, generator=g)
    return Batch(labels=torch.tensor(labels[:n]), images=images, captions=torch.randn(n, 12, generator=g))


def test_structure_follows_the_reference(clip):
    method = build(clip, FAITHFUL)
    v, w = clip.vision_width, clip.text_width
    assert method.ctx.shape == (4, w) and torch.equal(method.ctx, clip.context_init("a photo of a"))
    assert method.meta_net.linear1.weight.shape == (v // 16, v)
    assert method.meta_net.linear2.weight.shape == (w, v // 16)
    assert method.caption_proj.weight.shape == (w, 12)
    assert method.cross_attn.attn.in_proj_weight.shape == (3 * w, w) and method.cross_attn.attn.num_heads == 4
    # Every reference parameter name maps onto one of ours.
    ours = dict(method.named_parameters())
    assert all(name in ours for name in BiMoRS.reference_names.values())


def test_faithful_caption_projection_is_frozen_and_not_learned_state(clip):
    faithful, corrected = build(clip, FAITHFUL), build(clip, replace(FP32, train_caption_proj=True))
    assert not any(k.startswith("caption_proj") for k in faithful.learned_state())
    assert {"caption_proj.weight", "caption_proj.bias"} <= set(corrected.learned_state())
    assert not any(k.startswith("clip.") for k in corrected.learned_state())


def test_fp16_cross_attention_has_fp16_parameters_and_gradients(clip):
    method = build(clip, FAITHFUL)
    b = batch(clip)
    method.train()
    method.loss(method(b), b.labels).backward()
    for name, p in method.named_parameters():
        if name.startswith("cross_attn."):
            assert p.dtype == torch.float16 and p.grad.dtype == torch.float16, name
        elif name.startswith(("ctx", "meta_net.")):
            assert p.dtype == torch.float32 and p.grad is not None, name
    assert method.caption_proj.weight.grad is None
    with torch.no_grad():
        feats = clip.encode_image(b.images, return_tokens=True)
        assert method.shifted_context(feats.tokens, b.captions).dtype == torch.float16
    fp32 = build(clip, FP32)
    assert all(p.dtype == torch.float32 for p in fp32.parameters())


@pytest.mark.parametrize("train", [False, True])
def test_fast_path_equals_naive_loop(clip, train):
    method = build(clip, FP32)
    b = batch(clip)
    results = {}
    for label, fast in (("naive", NAIVE), ("fast", FAST)):
        method.fast = fast
        if train:
            method.train()
            method.zero_grad(set_to_none=True)
            logits = method(b)
            method.loss(logits, b.labels).backward()
            results[label] = (logits.detach(), method.ctx.grad.clone())
        else:
            with method.evaluating():
                results[label] = (method(b), None)
    (naive, g_naive), (fast, g_fast) = results["naive"], results["fast"]
    assert ((naive - fast).abs().max() / naive.abs().max()) < 1e-5
    if train:
        assert ((g_naive - g_fast).abs().max() / g_naive.abs().max()) < 1e-5
    # Per-image conditioning: rows differ from one image's prompts applied to all.
    assert not torch.allclose(naive[0], naive[1])


def test_fast_path_equals_naive_loop_with_fp16_cross_attention(clip):
    method = build(clip, FAITHFUL)
    b = batch(clip)
    outputs = []
    for fast in (NAIVE, FAST):
        method.fast = fast
        with method.evaluating():
            outputs.append(method(b))
    assert ((outputs[0] - outputs[1]).abs().max() / outputs[0].abs().max()) < 1e-5


def test_captions_condition_the_prompts(clip):
    method = build(clip, FP32)
    b = batch(clip)
    with method.evaluating():
        before = method(b)
        b.captions = b.captions + 1.0
        after = method(b)
    assert not torch.allclose(before, after)


def test_wrong_caption_width_and_missing_captions_are_explained(clip):
    method = build(clip, FP32)
    b = batch(clip)
    b.captions = torch.randn(3, 7)
    with pytest.raises(ValueError, match="caption_dim"):
        method(b)
    b.captions = None
    with pytest.raises(ValueError, match="caption"):
        method(b)


def test_from_reference_and_variants():
    config = {"N_CTX": 4, "CTX_INIT": "a photo of a", "PREC": "fp32"}
    faithful = BiMoRS.from_reference(config)
    assert faithful.caption_dim == 768 and faithful.fp16_cross_attn and not faithful.train_caption_proj
    assert not BiMoRS.from_reference(config, variant="fp32_cross_attn").fp16_cross_attn
    with pytest.raises(ValueError):
        BiMoRS.from_reference(config, variant="amp")


def test_presets():
    assert PRESETS["paper"].method == PRESETS["faithful"].method
    assert PRESETS["paper"].train == PRESETS["faithful"].train
    paper = PRESETS["paper"].train
    assert (paper.batch_size, paper.lr, paper.epochs, paper.selection) == (4, 0.009, 10, "best_test")
    corrected = PRESETS["corrected"]
    assert corrected.method.train_caption_proj and not corrected.method.fp16_cross_attn
    assert corrected.train.selection == "last" and corrected.train.lr == 0.009
    assert PRESETS["world"].method.fp16_cross_attn and PRESETS["world"].train.selection == "last"
    assert PRESETS["world"].method.caption_dim == 384 == PRESETS["world_corrected"].method.caption_dim
    assert BiMoRS.default_presets == {"paper": "paper", "world": "world"}


def test_adapt_config_takes_the_caption_width_from_the_profile():
    assert BiMoRS.adapt_config(PRESETS["paper"].method, get_profile("world")).caption_dim == 384
    assert BiMoRS.adapt_config(PRESETS["world"].method, get_profile("paper")).caption_dim == 768
