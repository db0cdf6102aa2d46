"""KgCoOp (reference parity: tests/parity/kgcoop_*.pt): the knowledge-guided term and its plumbing."""

import dataclasses

import torch
import torch.nn.functional as F

from benchmark.core.method import Batch, normalize
from methods.kgcoop import KgCoOp, KgCoOpConfig

CLASSES = ["forest", "river", "dense_residential"]


def build(clip, cfg=None, classnames=CLASSES):
    torch.manual_seed(0)
    return KgCoOp(clip, cfg or KgCoOpConfig(), classnames)


def batch(clip, n=3):
    g = torch.Generator().manual_seed(1)
    images = torch.randn(n, 3, clip.image_size, clip.image_size, generator=g)
    return Batch(labels=torch.tensor([0, 1, 2][:n]), images=images)


def test_at_init_the_learned_prompt_is_the_handwritten_one_so_the_term_vanishes(tiny_clip):
    method = build(tiny_clip)  # ctx = "a photo of a", template "a photo of a {}."
    data = batch(tiny_clip)
    method.train()
    logits = method(data)
    loss = method.loss(logits, data.labels)
    assert torch.allclose(loss, F.cross_entropy(logits, data.labels), atol=1e-5)


def test_loss_adds_w_times_one_minus_mean_cosine(tiny_clip):
    cfg = KgCoOpConfig(n_ctx=3, ctx_init="", weight=8.0, template="a satellite photo of {}.")
    method = build(tiny_clip, cfg)
    data = batch(tiny_clip)
    method.train()
    logits = method(data)
    texts = [f"a satellite photo of {name.replace('_', ' ')}." for name in CLASSES]
    hand = normalize(tiny_clip.encode_text(texts))
    learned = normalize(method.compute_class_text())
    cos = (learned * hand).sum(-1)  # both unit vectors
    expected = F.cross_entropy(logits, data.labels) + 8.0 * (1 - cos.mean())
    assert cos.max() < 0.999  # the term is alive
    assert torch.allclose(method.loss(logits, data.labels), expected, atol=1e-5)


def test_the_term_pulls_the_context_towards_the_handwritten_features(tiny_clip):
    cfg = KgCoOpConfig(n_ctx=3, ctx_init="", weight=8.0)
    data = batch(tiny_clip)
    grads = {}
    for weight in (0.0, 8.0):
        method = build(tiny_clip, dataclasses.replace(cfg, weight=weight))
        method.train()
        method.loss(method(data), data.labels).backward()
        grads[weight] = method.ctx.grad.clone()
    with torch.no_grad():  # the gradient of the term alone, by difference, lowers the score along -grad
        method = build(tiny_clip, cfg)
        before = method.knowledge_score(normalize(method.compute_class_text()))
        method.ctx -= 1e-2 * (grads[8.0] - grads[0.0]) / (grads[8.0] - grads[0.0]).norm()
        after = method.knowledge_score(normalize(method.compute_class_text()))
    assert not torch.allclose(grads[0.0], grads[8.0])
    assert after < before


def test_evaluation_forward_leaves_no_stale_term(tiny_clip):
    method = build(tiny_clip, KgCoOpConfig(n_ctx=2, ctx_init=""))
    data = batch(tiny_clip)
    method.train()
    method(data)  # stashes the training text features
    with method.evaluating():
        logits = method(data)
    assert torch.equal(method.loss(logits, data.labels), F.cross_entropy(logits, data.labels))


def test_retargeting_recomputes_the_handwritten_features(tiny_clip):
    method = build(tiny_clip)
    method.set_classnames(["storage_tank", "beach"])
    expected = normalize(tiny_clip.encode_text(["a photo of a storage tank.", "a photo of a beach."]))
    assert torch.allclose(method.handcrafted, expected, atol=1e-6)
    assert "handcrafted" not in method.state_dict()  # derived from the class names, never saved


def test_any_ctx_init_of_the_reference_means_a_photo_of_a():
    node = {"N_CTX": 16, "CTX_INIT": True, "CSC": False, "W": 8.0, "TEMPLATE": "a photo of a {}."}
    assert KgCoOp.from_reference(node).ctx_init == "a photo of a"
    assert KgCoOp.from_reference({**node, "CTX_INIT": False}).ctx_init == ""
    assert KgCoOp.config_transfer_error(KgCoOpConfig(ctx_init="", csc=True))
    assert KgCoOp.config_transfer_error(KgCoOpConfig()) is None
