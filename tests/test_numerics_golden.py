"""Golden numbers of every registered method, so a change that alters results cannot keep old runs counting.

Resume skips cells whose run_key already has a FINISHED run, and the key holds each method's
`numerics_version`. This test pins, per method, the eval logits and the training loss of one tiny cell
(the `world` preset, fixed seed, fixed batch, the random tiny CLIP `random-tiny:0`). When they move, it
fails until the method's `numerics_version` is raised and the golden file regenerated:

    python tests/test_numerics_golden.py --update

`--update` refuses to store new numbers under an unchanged version (and unchanged preset config), so
regenerating cannot hide a change.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from benchmark.core.context import seed_everything
from benchmark.core.method import Batch
from benchmark.data.batch import TensorSource
from benchmark.plan.overrides import to_plain
from benchmark.registry import METHODS

GOLDEN = Path(__file__).resolve().parent / "golden" / "numerics.json"
UPDATE = "python tests/test_numerics_golden.py --update"
CLASSES = ["forest", "river", "dense_residential", "storage tank"]
LABELS = (0, 1, 2, 3, 1, 0)
SEED = 0
FIRST = 8  # leading logits stored verbatim, besides sums over all of them
# Loose enough for another CPU's last bits in fp32 kernels (about 1e-6 relative), tight enough to catch a
# changed initialisation (test_a_changed_init_is_caught).
REL, ABS = 1e-4, 1e-5


def preset_of(cls: Any) -> str:
    """The pinned preset: `world` (CoOp's draws its context at random, so its init is covered), else the default."""
    return "world" if "world" in cls.presets else cls.default_preset("world", "b2n")


def measure(name: str, clip: Any) -> dict[str, Any]:
    """Eval logits and training loss of `name` on one fixed batch (fast path, as runs use it)."""
    cls = METHODS.get(name)
    preset = preset_of(cls)
    cfg = cls.presets[preset].method
    seed_everything(SEED)  # construction draws (random context, meta-nets) as a run's would
    method = cls(clip, cfg, CLASSES)
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(len(LABELS), 3, clip.image_size, clip.image_size, generator=generator)
    captions = None
    if cls.requirements.captions:
        captions = torch.randn(len(LABELS), method.cfg.caption_dim, generator=generator)
    batch = Batch(labels=torch.tensor(LABELS), images=images, captions=captions)
    # methods fitted without gradients (a cache, a probe) fit on the batch itself; a no-op for the others
    source = TensorSource(images, batch.labels, captions)
    method.prepare_training(source, source, cls.presets[preset].train, seed=SEED)
    with method.evaluating():
        logits = method(batch).double()
    seed_everything(SEED)  # any training-mode randomness draws the same
    method.train()
    loss = method.loss(method(batch), batch.labels)
    return {
        "numerics_version": cls.numerics_version,
        "preset": preset,
        "config": json.loads(json.dumps(to_plain(cfg))),
        "logits_sum": float(logits.sum()),
        "logits_abs_sum": float(logits.abs().sum()),
        "logits_first": [float(v) for v in logits.flatten()[:FIRST]],
        "loss": float(loss.detach()),
    }


def differences(got: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """The numbers of `got` outside tolerance of `expected` (sums against the logits' total magnitude)."""
    scale = abs(expected["logits_abs_sum"])
    pairs = [
        ("logits_sum", got["logits_sum"], expected["logits_sum"], ABS + REL * scale),
        ("logits_abs_sum", got["logits_abs_sum"], expected["logits_abs_sum"], ABS + REL * scale),
        ("loss", got["loss"], expected["loss"], ABS + REL * abs(expected["loss"])),
    ]
    if len(got["logits_first"]) != len(expected["logits_first"]):
        return ["logits_first: length"]
    pairs += [
        (f"logits_first[{i}]", g, e, ABS + REL * abs(e))
        for i, (g, e) in enumerate(zip(got["logits_first"], expected["logits_first"]))
    ]
    return [f"{what}: {g!r} != {e!r}" for what, g, e, tol in pairs if not (math.isfinite(g) and abs(g - e) <= tol)]


def load_golden() -> dict[str, dict[str, Any]]:
    """The committed golden numbers, method -> entry."""
    return json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else {}


def how_to_fix(name: str) -> str:
    """The failure message of a method whose numbers moved."""
    cls_name = METHODS.get(name).__name__
    return (
        f"numbers of {name} changed: if intended, raise {cls_name}.numerics_version (old runs stop counting) "
        f"and regenerate with `{UPDATE}`"
    )


@pytest.mark.parametrize("name", METHODS.names())
def test_numbers_are_pinned_to_the_numerics_version(name: str, tiny_clip) -> None:
    expected = load_golden().get(name)
    assert expected is not None, f"{name} has no golden numbers: run `{UPDATE}`"
    got = measure(name, tiny_clip)
    assert (got["preset"], got["config"]) == (expected["preset"], expected["config"]), (
        f"the pinned {got['preset']!r} preset of {name} changed (its config is in run_key already): "
        f"regenerate with `{UPDATE}`"
    )
    bad = differences(got, expected)
    assert not bad, f"{how_to_fix(name)}\n  " + "\n  ".join(bad)
    assert expected["numerics_version"] == got["numerics_version"], (
        f"{name}: numerics_version is {got['numerics_version']} but {GOLDEN.name} holds "
        f"{expected['numerics_version']}: regenerate with `{UPDATE}`"
    )


def test_a_changed_init_is_caught(tiny_clip) -> None:
    """The tolerance is tight enough: a context init std 5% wider moves CoOp's numbers beyond it."""
    base = measure("coop", tiny_clip)
    original = torch.nn.init.normal_

    def wider(tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> torch.Tensor:
        return original(tensor, mean=mean, std=std * 1.05, generator=generator)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.nn.init, "normal_", wider)
        changed = measure("coop", tiny_clip)
    assert differences(changed, base)


def update() -> int:
    """Rewrite the golden file; keep the old entry of a method whose numbers moved under the same version."""
    from conftest import make_tiny_clip

    clip = make_tiny_clip()
    old = load_golden()
    new, refused = {}, []
    for name in METHODS.names():
        got = measure(name, clip)
        before = old.get(name)
        same_cell = before is not None and (got["preset"], got["config"]) == (before["preset"], before["config"])
        if same_cell and differences(got, before) and got["numerics_version"] <= before["numerics_version"]:
            refused.append(how_to_fix(name).replace("if intended, raise", "first raise"))
            new[name] = before
        else:
            new[name] = got
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(new, indent=1, sort_keys=True) + "\n")
    for line in refused:
        print(f"refused: {line}", file=sys.stderr)
    print(f"wrote {GOLDEN} ({len(new)} methods, {len(refused)} kept unchanged)")
    return 1 if refused else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="rewrite tests/golden/numerics.json")
    if not parser.parse_args().update:
        parser.error("nothing to do: pass --update")
    sys.exit(update())
