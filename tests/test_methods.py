"""Every registered method, through the same checks, on a random tiny CLIP (no downloads)."""

import pytest
import torch

from benchmark.core.method import Batch
from benchmark.core.shortcuts import FAST, NAIVE
from benchmark.registry import METHODS

CLASSES = ["forest", "river", "dense_residential"]
NEW = ["beach", "storage tank"]


def build(name, clip, classnames=CLASSES):
    cls = METHODS.get(name)
    preset = cls.presets[cls.default_preset("world", "b2n")]
    torch.manual_seed(0)
    return cls(clip, preset.method, classnames)


def batch_for(method, clip, n=4, labels=(0, 1, 2, 0)):
    g = torch.Generator().manual_seed(1)
    images = torch.randn(n, 3, clip.image_size, clip.image_size, generator=g)
    captions = None
    if type(method).requirements.captions:
        captions = torch.randn(n, method.cfg.caption_dim, generator=g)
    return Batch(labels=torch.tensor(labels[:n]), images=images, captions=captions)


@pytest.mark.parametrize("name", METHODS.names())
def test_method_gives_logits_and_trains_only_its_own_parameters(name, tiny_clip):
    method = build(name, tiny_clip)
    batch = batch_for(method, tiny_clip)
    method.train()
    logits = method(batch)
    assert logits.shape == (4, len(CLASSES)) and torch.isfinite(logits).all()
    needs = type(method).config_requirements(method.cfg)
    if not needs.trainable or not needs.gradient_training:  # zero-shot; a cache or probe fitted without gradients
        assert not any(p.requires_grad for p in method.parameters())
        return
    method.loss(logits, batch.labels).backward()
    trained = {n for n, p in method.named_parameters() if p.grad is not None}
    assert trained, "no parameter received a gradient"
    assert not any(n.startswith("clip.") for n in trained)
    assert all(p.grad is None for p in tiny_clip.parameters())


@pytest.mark.parametrize("name", METHODS.names())
def test_method_counts_the_values_it_fits(name, tiny_clip):
    method = build(name, tiny_clip)
    trainable = sum(p.numel() for p in method.parameters() if p.requires_grad)
    needs = type(method).config_requirements(method.cfg)
    if needs.trainable and needs.gradient_training:
        assert method.fitted_parameter_count() == trainable > 0  # the `params` cost column
    else:
        assert method.fitted_parameter_count() >= 0 and trainable == 0


@pytest.mark.parametrize("name", METHODS.names())
def test_method_retargets_to_unseen_classes_without_retraining(name, tiny_clip):
    method = build(name, tiny_clip)
    batch = batch_for(method, tiny_clip)
    before = {k: v.clone() for k, v in method.learned_state().items()}
    method.set_classnames(NEW)
    with method.evaluating():
        logits = method(batch)
    assert logits.shape == (4, len(NEW))
    assert all(torch.equal(before[k], v) for k, v in method.learned_state().items())


@pytest.mark.parametrize("name", METHODS.names())
def test_fast_path_gives_the_naive_logits(name, tiny_clip):
    method = build(name, tiny_clip)
    batch = batch_for(method, tiny_clip)
    outputs = []
    for fast in (NAIVE, FAST):
        method.fast = fast
        with method.evaluating():
            outputs.append(method(batch))
    scale = outputs[0].abs().max()
    assert ((outputs[0] - outputs[1]).abs().max() / scale) < 1e-5


@pytest.mark.parametrize("name", METHODS.names())
def test_a_small_gradient_step_lowers_the_loss(name, tiny_clip):
    method = build(name, tiny_clip)
    needs = type(method).config_requirements(method.cfg)
    if not needs.trainable or not needs.gradient_training:
        pytest.skip("no gradient training")
    batch = batch_for(method, tiny_clip)
    params = [p for p in method.parameters() if p.requires_grad]
    method.train()
    loss = method.loss(method(batch), batch.labels)
    loss.backward()
    norm = torch.sqrt(sum((p.grad.float() ** 2).sum() for p in params if p.grad is not None))
    assert norm > 0, f"{name}: the loss has no gradient with respect to the trainable parameters"
    # A line search along -grad: a stiff regulariser (KgCoOp-style at weight 8) overshoots a fixed step although
    # its gradient is right; a wrong gradient lowers the loss at no step size.
    start, before, tried = [p.detach().clone() for p in params], float(loss.detach()), {}
    for step in (1e-2, 1e-3, 1e-4, 1e-5):
        with torch.no_grad():
            for p, p0 in zip(params, start):
                if p.grad is not None:
                    p.copy_(p0 - (step / norm) * p.grad)
        tried[step] = float(method.loss(method(batch), batch.labels).detach())
        if tried[step] < before:
            return
    pytest.fail(
        f"{name}: no step along -grad (|grad| {float(norm):.3g}) lowers the loss {before:.6g}; losses by step"
        f" size: {tried}. The gradient does not descend the loss (a detached term, or a loss computed apart from"
        " the forward pass?)"
    )


@pytest.mark.parametrize("name", METHODS.names())
def test_every_preset_is_cited_and_builds(name, tiny_clip):
    cls = METHODS.get(name)
    for preset_name, preset in cls.presets.items():
        assert preset.source, f"{name}:{preset_name} has no source"
        torch.manual_seed(0)
        cls(tiny_clip, preset.method, CLASSES)


def test_coop_middle_and_front_place_class_tokens(tiny_clip):
    from methods.coop import CoOp, CoOpConfig

    for position in ("middle", "front"):
        method = CoOp(tiny_clip, CoOpConfig(n_ctx=4, class_token_position=position), ["dense residential"])
        prompts = method.build_prompts()[0]
        emb = method.prompts.embeddings[0]
        name_len = method.prompts.name_lens[0]
        names = emb[5 : 5 + name_len]
        start = 3 if position == "middle" else 1
        assert torch.equal(prompts[start : start + name_len], names)
        assert torch.equal(prompts[5 + name_len :], emb[5 + name_len : prompts.shape[0]])


def test_coop_class_specific_context_is_rejected_for_unseen_classes():
    from methods.coop import CoOp, CoOpConfig

    assert CoOp.config_transfer_error(CoOpConfig(csc=True))
    assert CoOp.config_transfer_error(CoOpConfig(csc=True, ctx_init="a photo of a")) is None
