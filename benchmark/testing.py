"""The method contract, as checks any method must pass: importable by plugin authors without a clone.

Every built-in method runs these in `tests/test_methods.py`; a plugin's own tests run them the same way::

    import pytest
    from benchmark.testing import CONTRACT, tiny_clip

    @pytest.mark.parametrize("check", CONTRACT, ids=lambda c: c.__name__)
    def test_my_method_keeps_the_contract(check):
        check("my_method", tiny_clip())

Each check builds the method from its default world preset on a random tiny CLIP (no download, seconds on a
CPU) and raises AssertionError saying what is wrong; a check that does not apply to the method (a gradient
step for a method that trains nothing) returns without asserting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from benchmark.core.method import Batch, PromptMethod
from benchmark.core.shortcuts import FAST, NAIVE
from benchmark.registry import METHODS

__all__ = ["CLASSES", "CONTRACT", "NEW_CLASSES", "batch_for", "build", "tiny_clip"]

CLASSES = ["forest", "river", "dense_residential"]
NEW_CLASSES = ["beach", "storage tank"]


def tiny_clip():
    """The random tiny CLIP `random-tiny:0` as the harness wraps a backbone (`FrozenClip`)."""
    from benchmark.backbone import FrozenClip
    from benchmark.backbone.load import build_tiny_clip

    return FrozenClip(build_tiny_clip(0), identity="random-tiny:0")


def build(name: str, clip, classnames: Sequence[str] = CLASSES) -> PromptMethod:
    """Method `name` from its default world b2n preset, seeded."""
    cls = METHODS.get(name)
    preset = cls.presets[cls.default_preset("world", "b2n")]
    torch.manual_seed(0)
    return cls(clip, preset.method, list(classnames))


def batch_for(method: PromptMethod, clip, n: int = 4, labels: Sequence[int] = (0, 1, 2, 0)) -> Batch:
    """A random batch of images (and caption embeddings when the method declares it needs them)."""
    g = torch.Generator().manual_seed(1)
    images = torch.randn(n, 3, clip.image_size, clip.image_size, generator=g)
    captions = None
    if type(method).requirements.captions:
        captions = torch.randn(n, method.cfg.caption_dim, generator=g)
    return Batch(labels=torch.tensor(list(labels)[:n]), images=images, captions=captions)


def _gradient_trained(method: PromptMethod) -> bool:
    needs = type(method).config_requirements(method.cfg)
    return needs.trainable and needs.gradient_training


def gives_logits_and_trains_only_its_own_parameters(name: str, clip) -> None:
    """Finite logits [B, C]; a loss reaches the method's parameters and never the frozen CLIP."""
    method = build(name, clip)
    batch = batch_for(method, clip)
    method.train()
    logits = method(batch)
    assert logits.shape == (4, len(CLASSES)) and torch.isfinite(logits).all(), f"{name}: logits {logits.shape}"
    if not _gradient_trained(method):  # zero-shot; a cache or probe fitted without gradients
        assert not any(p.requires_grad for p in method.parameters()), f"{name} trains nothing but has trainables"
        return
    method.loss(logits, batch.labels).backward()
    trained = {n for n, p in method.named_parameters() if p.grad is not None}
    assert trained, f"{name}: no parameter received a gradient"
    assert not any(n.startswith("clip.") for n in trained), f"{name}: gradients reach the frozen CLIP"
    assert all(p.grad is None for p in clip.parameters()), f"{name}: gradients reach the frozen CLIP"


def counts_the_values_it_fits(name: str, clip) -> None:
    """`fitted_parameter_count()` (the `params` cost column) is the trainable count of gradient-trained methods."""
    method = build(name, clip)
    trainable = sum(p.numel() for p in method.parameters() if p.requires_grad)
    if _gradient_trained(method):
        assert method.fitted_parameter_count() == trainable > 0, f"{name}: params column != trainable count"
    else:
        assert method.fitted_parameter_count() >= 0 and trainable == 0


def retargets_to_unseen_classes_without_retraining(name: str, clip) -> None:
    """`set_classnames` to new classes gives logits over them and leaves the learned state untouched."""
    method = build(name, clip)
    batch = batch_for(method, clip)
    before = {k: v.clone() for k, v in method.learned_state().items()}
    method.set_classnames(NEW_CLASSES)
    with method.evaluating():
        logits = method(batch)
    assert logits.shape == (4, len(NEW_CLASSES)), f"{name}: logits {tuple(logits.shape)} after set_classnames"
    changed = [k for k, v in method.learned_state().items() if not torch.equal(before[k], v)]
    assert not changed, f"{name}: set_classnames changed learned state {changed}"


def fast_path_gives_the_naive_logits(name: str, clip) -> None:
    """The exact shortcuts (`benchmark.core.shortcuts.FAST`) change no logit beyond float noise."""
    method = build(name, clip)
    batch = batch_for(method, clip)
    outputs = []
    for fast in (NAIVE, FAST):
        method.fast = fast
        with method.evaluating():
            outputs.append(method(batch))
    gap = float((outputs[0] - outputs[1]).abs().max() / outputs[0].abs().max())
    assert gap < 1e-5, f"{name}: the fast path moves logits by {gap:.2e} (relative)"


def a_small_gradient_step_lowers_the_loss(name: str, clip) -> None:
    """Some step along -grad lowers the loss (a line search: a stiff regulariser overshoots a fixed step)."""
    method = build(name, clip)
    if not _gradient_trained(method):
        return
    batch = batch_for(method, clip)
    params = [p for p in method.parameters() if p.requires_grad]
    method.train()
    loss = method.loss(method(batch), batch.labels)
    loss.backward()
    norm = torch.sqrt(sum((p.grad.float() ** 2).sum() for p in params if p.grad is not None))
    assert norm > 0, f"{name}: the loss has no gradient with respect to the trainable parameters"
    start, before, tried = [p.detach().clone() for p in params], float(loss.detach()), {}
    for step in (1e-2, 1e-3, 1e-4, 1e-5):
        with torch.no_grad():
            for p, p0 in zip(params, start):
                if p.grad is not None:
                    p.copy_(p0 - (step / norm) * p.grad)
        tried[step] = float(method.loss(method(batch), batch.labels).detach())
        if tried[step] < before:
            return
    raise AssertionError(
        f"{name}: no step along -grad (|grad| {float(norm):.3g}) lowers the loss {before:.6g}; losses by step"
        f" size: {tried}. The gradient does not descend the loss (a detached term, or a loss computed apart from"
        " the forward pass?)"
    )


def every_preset_is_cited_and_builds(name: str, clip) -> None:
    """Each preset names its source (paper, table, reference commit) and builds."""
    cls = METHODS.get(name)
    for preset_name, preset in cls.presets.items():
        assert preset.source, f"{name}:{preset_name} has no source"
        torch.manual_seed(0)
        cls(clip, preset.method, CLASSES)


#: The checks every method must pass, in the order they are worth reading when one fails.
CONTRACT: tuple[Callable[[str, object], None], ...] = (
    every_preset_is_cited_and_builds,
    gives_logits_and_trains_only_its_own_parameters,
    counts_the_values_it_fits,
    retargets_to_unseen_classes_without_retraining,
    fast_path_gives_the_naive_logits,
    a_small_gradient_step_lowers_the_loss,
)
