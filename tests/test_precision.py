"""Precision: the references' fp16 (half backbone, half learnable tensors, plain SGD) and its CPU fallback."""

import logging

import pytest
import torch

from benchmark.plan.sweep import SweepRequest, build_plan


def _context(world_cache, **kwargs):
    from benchmark.backbone.load import load_backbone, parse_backbone
    from benchmark.core.context import CellContext
    from benchmark.plan.profiles import get_profile
    from benchmark.world import ensure_world

    clip = load_backbone(parse_backbone("world"), device="cpu")
    return CellContext(profile=get_profile("world"), data_root=ensure_world(world_cache), clip=clip, **kwargs)


def _coop_spec(precision: str):
    overrides = {"train.epochs": 2, "train.precision": precision, "train.aug_views": 1}
    request = SweepRequest(methods=["coop"], datasets=["mlrsnet"], seeds=[1], overrides=overrides)
    return build_plan(request).specs[0]


def test_fp16_on_a_cpu_runs_fp32_says_so_once_and_gives_the_fp32_numbers(world_cache, caplog):
    from benchmark.registry import PROTOCOLS

    context = _context(world_cache)
    with caplog.at_level(logging.WARNING, logger="benchmark.core.context"):
        half = PROTOCOLS.get("b2n").run(_coop_spec("fp16"), context)
        again = PROTOCOLS.get("b2n").run(_coop_spec("fp16"), context)
    full = PROTOCOLS.get("b2n").run(_coop_spec("fp32"), context)
    assert half.tags["precision"] == "fp32 (fp16 requested; it needs CUDA)" and full.tags["precision"] == "fp32"
    assert [r.value for r in half.results] == [r.value for r in full.results] == [r.value for r in again.results]
    assert sum("needs CUDA" in r.message for r in caplog.records) == 1


def test_the_fp16_path_uses_a_half_backbone_copy_and_half_learnable_tensors(world_cache):
    from benchmark.registry import PROTOCOLS

    context = _context(world_cache, allow_cpu_fp16=True)  # the CUDA path, exercised on a CPU
    spec = _coop_spec("fp16")
    method = context.build_method(spec, ["forest", "river", "beach"])
    assert method.clip.dtype == torch.float16 and method.clip.identity == f"{context.clip.identity}|fp16"
    assert all(p.dtype == torch.float16 for p in method.parameters() if p.requires_grad)
    assert context.clip.dtype == torch.float32  # the loaded backbone, shared with fp32 cells, is untouched
    try:
        out = PROTOCOLS.get("b2n").run(spec, context)
    except RuntimeError as exc:  # pragma: no cover - a CPU build without some float16 kernel
        pytest.skip(f"this CPU build lacks a float16 kernel: {exc}")
    assert out.tags["precision"] == "fp16"
    assert all(v.dtype == torch.float16 for v in out.learned_state.values())
    assert all(0.0 <= r.value <= 100.0 for r in out.results)
    assert all(torch.isfinite(torch.tensor(h.train_loss)) for h in out.history)
