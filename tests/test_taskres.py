"""TaskRes (reference parity: tests/parity/taskres_*.pt): the residual formula and its transfer rule."""

import torch

from benchmark.core.method import Batch, normalize
from methods.taskres import TaskRes, TaskResConfig
from methods.zeroshot import ZeroShotCLIP, ZeroShotConfig

CLASSES = ["forest", "river", "beach"]


def build(clip, cfg=None, classnames=CLASSES, residual_seed=5):
    method = TaskRes(clip, cfg or TaskResConfig(), classnames)
    if residual_seed is not None:
        g = torch.Generator().manual_seed(residual_seed)
        with torch.no_grad():
            method.residual.copy_(torch.randn(method.residual.shape, generator=g))
    return method


def batch(clip, n=4):
    g = torch.Generator().manual_seed(1)
    return Batch(labels=None, images=torch.randn(n, 3, clip.image_size, clip.image_size, generator=g))


def logits(method, data):
    with method.evaluating():
        return method(data)


def zeroshot(clip, classnames, data):
    return logits(ZeroShotCLIP(clip, ZeroShotConfig(), classnames), data)


def test_zero_residual_is_zero_shot_clip(tiny_clip):
    data = batch(tiny_clip)
    method = build(tiny_clip, residual_seed=None)
    assert not method.residual.abs().sum()
    assert torch.allclose(logits(method, data), zeroshot(tiny_clip, CLASSES, data), atol=1e-5)


def test_logits_normalise_base_plus_scaled_residual(tiny_clip):
    data = batch(tiny_clip)
    method = build(tiny_clip, TaskResConfig(residual_scale=0.7))
    base = tiny_clip.encode_text([f"a photo of a {c}." for c in CLASSES])
    image = normalize(tiny_clip.encode_image(data.images).pooled)
    expected = tiny_clip.logit_scale * image @ normalize(base + 0.7 * method.residual).t()
    assert torch.allclose(logits(method, data), expected, atol=1e-4)


def test_base_averages_unnormalised_template_features_and_keeps_underscores(tiny_clip):
    templates = ("a photo of a {}.", "itap of a {}.")
    method = build(tiny_clip, TaskResConfig(templates=templates), ["storage_tank"], residual_seed=None)
    raw = tiny_clip.encode_text([t.format("storage_tank") for t in templates])
    assert torch.allclose(method.base[0], raw.mean(0), atol=1e-5)
    spaced = build(tiny_clip, TaskResConfig(templates=templates, underscores_as_spaces=True), ["storage_tank"])
    raw = tiny_clip.encode_text([t.format("storage tank") for t in templates])
    assert torch.allclose(spaced.base[0], raw.mean(0), atol=1e-5)


def test_unseen_classes_get_a_zero_residual_and_the_trained_ones_come_back(tiny_clip):
    data = batch(tiny_clip)
    method = build(tiny_clip)
    trained = logits(method, data)
    state = {k: v.clone() for k, v in method.learned_state().items()}

    method.set_classnames(["runway", "harbor"])  # base-to-new: no trained row, zero-shot weights
    assert torch.allclose(logits(method, data), zeroshot(tiny_clip, ["runway", "harbor"], data), atol=1e-5)

    method.set_classnames(["beach", "runway", "forest"])  # a shared name keeps its own row, by name
    mixed = logits(method, data)
    assert torch.allclose(mixed[:, [0, 2]], trained[:, [2, 0]], atol=1e-5)  # a column needs only its own class
    assert torch.allclose(mixed[:, 1], zeroshot(tiny_clip, ["runway"], data)[:, 0], atol=1e-5)

    method.set_classnames(CLASSES)
    assert torch.equal(logits(method, data), trained)
    assert all(torch.equal(state[k], v) for k, v in method.learned_state().items())


def test_gradients_reach_only_the_rows_of_the_current_classes(tiny_clip):
    method = build(tiny_clip)
    method.set_classnames(["river", "runway"])
    method.train()
    data = batch(tiny_clip, n=2)
    torch.nn.functional.cross_entropy(method(data), torch.tensor([0, 1])).backward()
    grad = method.residual.grad
    assert grad[1].abs().sum() > 0 and not grad[0].abs().sum() and not grad[2].abs().sum()


def test_from_reference_reads_scale_and_templates():
    node = {"RESIDUAL_SCALE": 1.0, "ENHANCED_BASE": "none", "TEMPLATES": ["itap of a {}.", "a photo of a {}."]}
    cfg = TaskRes.from_reference(node)
    assert cfg.residual_scale == 1.0 and cfg.templates == ("itap of a {}.", "a photo of a {}.")
    assert not cfg.underscores_as_spaces
