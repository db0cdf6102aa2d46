"""One whole default cell per method: `b2n` on the world's PatternNet, seed 1, 16 shots, fast path, one thread.

This is what a default sweep spends per cell (training, selection, both evaluations), without MLflow and with a
warm feature cache (the warm-up round fills it). `pytest tests/bench --benchmark-only` runs it with the fast/naive
ratios of `test_speed.py`; `python tests/bench/ratios.py bench.json` prints both tables.
"""

from __future__ import annotations

import pytest
import torch

from benchmark.registry import METHODS


@pytest.fixture(scope="module")
def world_context(world_cache):
    from benchmark.plan.profiles import get_profile
    from benchmark.run.worker import WorkerEnv, build_context
    from benchmark.world import ensure_world

    profile = get_profile("world")
    root = ensure_world(world_cache)
    env = WorkerEnv(tracking_uri="", profile="world", data_root=str(root), cache_dir=str(world_cache), threads=1)
    return build_context(env, profile.backbone)


@pytest.mark.parametrize("method_name", METHODS.names())
def test_default_cell(benchmark, world_context, world_cache, monkeypatch, method_name):
    from benchmark.plan.sweep import SweepRequest, build_plan
    from benchmark.registry import PROTOCOLS

    monkeypatch.setenv("BENCHMARK_CACHE", str(world_cache))
    plan = build_plan(SweepRequest(methods=[method_name], protocol="b2n", datasets=["patternnet"], seeds=[1]))
    spec = plan.specs[0]
    torch.set_num_threads(1)
    output = benchmark.pedantic(lambda: PROTOCOLS.get("b2n").run(spec, world_context), rounds=1, warmup_rounds=1)
    accuracy = [r.value for r in output.results if r.metric == "acc" and r.subset == "base"]
    assert accuracy and 0.0 <= accuracy[0] <= 100.0
