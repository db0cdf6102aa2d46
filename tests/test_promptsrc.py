"""PromptSRC (reference parity: test_parity.py): the self-regularising loss, GPA, and the IVLP prompt layout."""

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from benchmark.core.method import Batch
from benchmark.core.train import TrainConfig
from methods.promptsrc import TEMPLATES, PromptSRC, PromptSRCConfig, gpa_weights

CLASSES = ["forest", "river", "dense_residential", "storage tank"]
FIXTURE = Path(__file__).resolve().parent / "parity" / "promptsrc_A.pt"


def build(clip, **kwargs):
    torch.manual_seed(0)
    return PromptSRC(clip, PromptSRCConfig(**kwargs), CLASSES)


def batch(clip, n=3):
    g = torch.Generator().manual_seed(1)
    pixels = torch.randn(n, 3, clip.image_size, clip.image_size, generator=g)
    return Batch(labels=torch.arange(n) % len(CLASSES), images=pixels)


def test_training_loss_adds_kl_and_weighted_l1_terms(tiny_clip):
    method = build(tiny_clip)
    data = batch(tiny_clip)
    method.train()
    logits = method(data)
    total = method.loss(logits, data.labels)
    with torch.no_grad():
        text = F.normalize(method.compute_class_text(), dim=-1)
        frozen_text = F.normalize(method.frozen_text(), dim=-1)
        image = F.normalize(method.prompted_image(data.images), dim=-1)
        frozen_image = F.normalize(tiny_clip.encode_image(data.images).pooled, dim=-1)
        zs = tiny_clip.logit_scale * frozen_image @ frozen_text.t()
        p_zs = zs.softmax(dim=1)
        kl = (p_zs * (p_zs.log() - logits.log_softmax(dim=1))).sum() / logits.numel()
        expected = (
            F.cross_entropy(logits, data.labels)
            + kl
            + 25 * (text - frozen_text).abs().mean()
            + 10 * (image - frozen_image).abs().mean()
        )
    assert torch.allclose(total.detach(), expected, rtol=1e-5, atol=1e-6)
    with method.evaluating():
        eval_logits = method(data)
    assert torch.equal(method.loss(eval_logits, data.labels), F.cross_entropy(eval_logits, data.labels))


def test_frozen_text_averages_unnormalised_template_features(tiny_clip):
    method = build(tiny_clip)
    assert len(TEMPLATES) == 60 and len(set(TEMPLATES)) == 60
    names = [c.replace("_", " ") for c in CLASSES]
    with torch.no_grad():
        raw = torch.stack([tiny_clip.encode_text([t.format(n) for n in names]) for t in TEMPLATES], dim=1)
    assert torch.allclose(method.frozen_text(), raw.mean(dim=1), atol=1e-5)
    assert not torch.allclose(
        F.normalize(method.frozen_text(), dim=-1), F.normalize(F.normalize(raw, dim=-1).mean(1), dim=-1)
    )
    method.set_classnames(["beach"])
    assert method.frozen_text().shape == (1, tiny_clip.embed_dim)


def test_prompts_exist_only_for_existing_blocks_and_vision_depth_zero_keeps_the_tower(tiny_clip):
    layers = len(tiny_clip.model.transformer.resblocks)  # 2 in both towers of the tiny CLIP
    deep = build(tiny_clip, depth_text=9, depth_vision=9)
    assert len(deep.text_prompts) == layers - 1 and len(deep.vision_prompts) == layers - 1
    plain = build(tiny_clip, depth_vision=0)
    assert plain.vision_ctx is None and len(plain.vision_prompts) == 0
    data = batch(tiny_clip)
    plain.train()
    logits = plain(data)
    image_l1 = plain._terms[2] - plain._terms[3]
    assert torch.equal(image_l1, torch.zeros_like(image_l1))  # no visual prompt: prompted == frozen image
    plain.loss(logits, data.labels).backward()
    assert plain.ctx.grad is not None and plain.text_prompts[0].grad is not None


def test_gpa_weights_are_normalised_gaussian_densities_of_one_based_epochs():
    w = gpa_weights(3, 2.0, 1.0)
    e = math.exp(-0.5)
    assert w == pytest.approx([e / (1 + 2 * e), 1 / (1 + 2 * e), e / (1 + 2 * e)], rel=1e-12)
    with pytest.raises(ValueError):
        gpa_weights(5, 1000.0, 1.0)


def test_gpa_replaces_the_prompts_after_the_last_epoch_only(tiny_clip):
    method = build(tiny_clip, gpa_mean=2.0, gpa_std=1.0)
    cfg = TrainConfig(epochs=3)
    values = [torch.full_like(method.ctx, float(k)) for k in (1, 2, 4)]
    for epoch, value in enumerate(values):
        with torch.no_grad():
            method.ctx.copy_(value)
        method.end_epoch(epoch, cfg)
        if epoch < 2:
            assert torch.equal(method.ctx.detach(), value)
    w = gpa_weights(3, 2.0, 1.0)
    assert torch.allclose(method.ctx.detach(), torch.full_like(method.ctx, w[0] + 2 * w[1] + 4 * w[2]))
    assert "N(2, 1)" in method.after_training(None, None, cfg, seed=0)["gpa"]
    off = build(tiny_clip, gpa_std=0.0)
    before = off.ctx.detach().clone()
    off.end_epoch(0, TrainConfig(epochs=1))
    assert torch.equal(off.ctx.detach(), before) and off.after_training(None, None, cfg, seed=0) == {"gpa": "off"}


def test_gpa_reproduces_the_reference_average():
    """Replays the reference run's per-epoch prompts (fixture `gpa`) through end_epoch: same bits as its GPA."""
    if not FIXTURE.is_file():
        pytest.skip(f"{FIXTURE.name} is absent")
    from benchmark.core.parity import _our_name, build_clip, load_fixture

    fixture = load_fixture(FIXTURE)
    gpa = fixture["gpa"]
    method = PromptSRC(
        build_clip(fixture["clip_weights"]["manifest"]),
        PromptSRC.from_reference(fixture["trainer_config"]),
        fixture["classnames"],
    )
    params = dict(method.named_parameters())
    cfg = TrainConfig(epochs=gpa["epochs"])
    for epoch in range(gpa["epochs"]):
        with torch.no_grad():
            for name, snapshots in gpa["snapshots"].items():
                params[_our_name(method, name)].copy_(snapshots[epoch])
        method.end_epoch(epoch, cfg)
    for name, averaged in gpa["averaged"].items():
        assert torch.equal(params[_our_name(method, name)].detach(), averaged), name
