"""CLIP-LoRA (reference parity: tests/parity/clip_lora_*.pt): updates through the forward path, never the weights."""

import copy
import math

import pytest
import torch

from benchmark.backbone import FrozenClip
from benchmark.core.method import Batch
from methods.clip_lora import CLIPLoRA, CLIPLoRAConfig

CLASSES = ["forest", "river", "dense_residential"]


def data(clip, n=3):
    g = torch.Generator().manual_seed(1)
    pixels = torch.randn(n, 3, clip.image_size, clip.image_size, generator=g)
    return Batch(labels=torch.arange(n) % len(CLASSES), images=pixels)


def build(clip, fill_b=True, **kwargs):
    torch.manual_seed(0)
    method = CLIPLoRA(clip, CLIPLoRAConfig(**kwargs), CLASSES)
    if fill_b:
        with torch.no_grad():
            for name, p in method.named_parameters():
                if ".B." in name:
                    p.normal_(0, 0.05)
    return method


def merged_backbone(method: CLIPLoRA) -> FrozenClip:
    """A copy of the backbone with scale * B A added to each q/k/v weight: what the reference's eval() does."""
    model = copy.deepcopy(method.clip.model)
    towers = {"text": model.transformer, "vision": model.visual.transformer}
    with torch.no_grad():
        for tower, blocks in towers.items():
            for index, lora in getattr(method, f"{tower}_lora").items():
                weight = blocks.resblocks[int(index)].attn.in_proj_weight
                width = weight.shape[1]
                for slot, target in enumerate("qkv"):
                    if target in lora.A:
                        delta = method.scale * lora.B[target] @ lora.A[target]
                        weight[slot * width : (slot + 1) * width] += delta
    return FrozenClip(model, identity="merged")


def test_eval_logits_equal_the_merged_weights(tiny_clip):
    method = build(tiny_clip, params=("q", "v"))
    batch = data(tiny_clip)
    with method.evaluating():
        ours = method(batch)
    merged = merged_backbone(method)
    text = merged.encode_text([f"a photo of a {c.replace('_', ' ')}." for c in CLASSES])
    image = merged.encode_image(batch.images).pooled
    expected = 100 * torch.nn.functional.normalize(image, dim=-1) @ torch.nn.functional.normalize(text, dim=-1).t()
    assert torch.allclose(ours, expected, rtol=1e-5, atol=1e-4)


def test_training_never_touches_the_shared_backbone(tiny_clip):
    before = {k: v.clone() for k, v in tiny_clip.state_dict().items()}
    method = build(tiny_clip)
    batch = data(tiny_clip)
    method.train()
    method.loss(method(batch), batch.labels).backward()
    assert all(torch.equal(before[k], v) for k, v in tiny_clip.state_dict().items())
    assert all(p.grad is None for p in tiny_clip.parameters())


def test_dropout_acts_on_the_lora_branch_only(tiny_clip):
    batch = data(tiny_clip)
    zero_b = build(tiny_clip, fill_b=False, dropout=0.5)  # B = 0, the reference's init: the branch adds nothing
    with zero_b.evaluating():
        frozen = zero_b(batch)
    zero_b.train()
    assert torch.allclose(zero_b(batch), frozen, atol=1e-5)
    method = build(tiny_clip, dropout=0.5)
    method.train()
    assert not torch.allclose(method(batch), method(batch))  # a fresh mask per forward
    with method.evaluating():
        assert torch.equal(method(batch), method(batch))


def test_dropout_free_gradient_quirk_spares_only_the_last_block(tiny_clip):
    """The reference's dropout-free path backpropagates through the frozen weight alone (detached branch input)."""
    batch = data(tiny_clip)
    grads = {}
    for detach in (True, False):
        method = build(tiny_clip, dropout=0.0, detach_merged_input=detach)
        method.train()
        loss = method.loss(method(batch), batch.labels)
        loss.backward()
        grads[detach] = (
            float(loss.detach()),
            {n: p.grad.clone() for n, p in method.named_parameters() if p.requires_grad},
        )
    assert grads[True][0] == pytest.approx(grads[False][0], rel=1e-6)
    last_blocks = (
        f"text_lora.{len(tiny_clip.model.transformer.resblocks) - 1}.",
        f"vision_lora.{len(tiny_clip.model.visual.transformer.resblocks) - 1}.",
    )
    for name, g in grads[True][1].items():
        same = torch.allclose(g, grads[False][1][name], rtol=1e-4, atol=1e-7)
        assert same == name.startswith(last_blocks), name


def test_layout_scale_and_requirements(tiny_clip):
    method = build(tiny_clip, fill_b=False, rank=4, alpha=2.0, encoder="text", params=("q", "v"))
    assert method.scale == pytest.approx(2.0 / math.sqrt(4))  # alpha / sqrt(r), not alpha / r
    assert len(method.vision_lora) == 0 and len(method.text_lora) == len(tiny_clip.model.transformer.resblocks)
    assert set(method.text_lora["0"].A) == {"q", "v"} and method.text_lora["0"].A["q"].shape == (
        4,
        tiny_clip.text_width,
    )
    assert all(not p.detach().any() for n, p in method.named_parameters() if ".B." in n)
    assert CLIPLoRA.config_requirements(method.cfg).frozen_image_path
    assert not CLIPLoRA.config_requirements(CLIPLoRAConfig()).frozen_image_path
    features = tiny_clip.encode_image(data(tiny_clip).images)  # the text-only variant reads cached features
    assert method(Batch(labels=None, features=features)).shape == (3, len(CLASSES))
    with pytest.raises(ValueError, match="selects no block"):
        CLIPLoRA(tiny_clip, CLIPLoRAConfig(position="up"), CLASSES)  # blocks 8-11 of a 12-layer tower
