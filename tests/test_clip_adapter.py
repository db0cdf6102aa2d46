"""CLIP-Adapter (reference parity: tests/parity/clip_adapter_*.pt): the residual blend and its text side."""

import torch

from benchmark.core.method import Batch, normalize
from methods.clip_adapter import CLIPAdapter, CLIPAdapterConfig
from methods.zeroshot import ZeroShotCLIP, ZeroShotConfig

CLASSES = ["forest", "river", "dense_residential"]


def images(clip, n=3):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, clip.image_size, clip.image_size, generator=g)


def build(clip, **kwargs):
    torch.manual_seed(0)
    return CLIPAdapter(clip, CLIPAdapterConfig(**kwargs), CLASSES)


def test_ratio_zero_is_zero_shot_clip_with_the_same_template(tiny_clip):
    pixels = images(tiny_clip)
    adapter = build(tiny_clip, ratio=0.0, template="a satellite photo of {}.")
    zeroshot = ZeroShotCLIP(tiny_clip, ZeroShotConfig(template="a satellite photo of {}."), CLASSES)
    with adapter.evaluating(), zeroshot.evaluating():
        ours, reference = adapter(Batch(labels=None, images=pixels)), zeroshot(Batch(labels=None, images=pixels))
    assert torch.allclose(ours, reference, rtol=1e-5, atol=1e-6)


def test_blend_is_ratio_adapter_plus_one_minus_ratio_feature(tiny_clip):
    method = build(tiny_clip, ratio=0.2)
    with torch.no_grad():
        for layer in (method.adapter[0], method.adapter[2]):
            layer.weight.normal_(0, layer.weight.shape[1] ** -0.5)
    pixels = images(tiny_clip)
    with method.evaluating():
        logits = method(Batch(labels=None, images=pixels))
        f = tiny_clip.encode_image(pixels).pooled
        hidden = torch.relu(f @ method.adapter[0].weight.t())
        blended = 0.2 * torch.relu(hidden @ method.adapter[2].weight.t()) + 0.8 * f
        text = normalize(tiny_clip.encode_text([f"a photo of a {c.replace('_', ' ')}." for c in CLASSES]))
        expected = tiny_clip.logit_scale * normalize(blended) @ text.t()
    assert torch.allclose(logits, expected, rtol=1e-5, atol=1e-5)
    # Blending moves the logits away from zero-shot ones (ratio 0.2 of a random adapter is not negligible).
    assert not torch.allclose(logits, tiny_clip.logit_scale * normalize(f) @ text.t(), atol=1e-3)


def test_adapter_shape_and_no_biases(tiny_clip):
    method = build(tiny_clip, reduction=4)
    width = tiny_clip.embed_dim
    assert method.adapter[0].weight.shape == (width // 4, width) and method.adapter[0].bias is None
    assert method.adapter[2].weight.shape == (width, width // 4) and method.adapter[2].bias is None
    assert {n for n, p in method.named_parameters() if p.requires_grad} == {"adapter.0.weight", "adapter.2.weight"}


def test_text_follows_the_class_names_and_the_reference_template(tiny_clip):
    cfg = CLIPAdapter.from_reference(
        {"REDUCTION": 4, "RATIO": 0.2, "TEMPLATE": "a centered satellite photo of {}."}, variant=None
    )
    method = CLIPAdapter(tiny_clip, cfg, CLASSES)
    assert method.texts[2] == "a centered satellite photo of dense residential."
    first = method.compute_class_text()
    method.set_classnames(["beach", "storage tank"])
    assert method.texts == ["a centered satellite photo of beach.", "a centered satellite photo of storage tank."]
    assert method.compute_class_text().shape == (2, first.shape[1])
