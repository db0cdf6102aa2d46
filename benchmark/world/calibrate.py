"""Calibrating the sensor-style strengths on a separate calibration seed (never on the test split).

WORLD_NOTES: the style strength is the dominant difficulty knob. For each dataset we render a calibration
set from its own seed domain (``calib-<key>``, disjoint from the generated datasets), sweep the strength and
pick the one whose zero-shot base/new accuracy is closest to the target of the real setting (ViT-B/16 on RS
data: roughly 55-65 %). The chosen values are written by hand into ``sensors.SENSOR_STYLES`` with this
module's output quoted in STATUS.md. Run: ``python -m benchmark.world.calibrate [--strengths ...]``.
"""

from __future__ import annotations

import argparse
import logging
import math

import numpy as np

from benchmark.world.datasets import WORLD_DATASETS
from benchmark.world.render import image_rng, render_image
from benchmark.world.sensors import SENSOR_STYLES

log = logging.getLogger(__name__)

CALIB_SEED = 777
CALIB_PER_CLASS = 20
TARGET_ACC = 60.0
DEFAULT_STRENGTHS = (1.0, 1.5, 2.0, 2.5, 3.0)


def calib_features(model, key: str, strength: float, per_class: int = CALIB_PER_CLASS):
    """Image features and labels of a calibration set of dataset ``key`` at a style strength."""
    import torch

    from benchmark.world.model import CLIP_MEAN, CLIP_STD

    spec = WORLD_DATASETS[key]
    style = SENSOR_STYLES[spec.style].with_strength(strength)
    imgs, labels = [], []
    for label, (name, recipe) in enumerate(zip(spec.classnames, spec.recipes)):
        for i in range(per_class):
            imgs.append(render_image(recipe, style, image_rng(CALIB_SEED, f"calib-{key}", name, i))[0])
            labels.append(label)
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        feats = torch.nn.functional.normalize(model.encode_image(x), dim=-1)
    return feats, np.asarray(labels)


def base_new_accuracy(model, key: str, feats, labels: np.ndarray, template: str = "a photo of a {}.") -> dict:
    """Zero-shot accuracy (%) on each half among itself, as the b2n protocol measures it."""
    from benchmark.world.evaluate import encode_texts

    names = WORLD_DATASETS[key].classnames
    text = encode_texts(model, [template.format(c.replace("_", " ")) for c in names])
    sims = (feats @ text.T).numpy()
    m = math.ceil(len(names) / 2)
    out = {"all": float((sims.argmax(1) == labels).mean() * 100)}
    for half, lo, hi in (("base", 0, m), ("new", m, len(names))):
        sel = (labels >= lo) & (labels < hi)
        out[half] = float((sims[sel][:, lo:hi].argmax(1) + lo == labels[sel]).mean() * 100)
    return out


def sweep(model, keys: list[str], strengths: list[float]) -> dict[str, dict[float, dict]]:
    """Zero-shot accuracies per dataset and strength on the calibration seed."""
    out: dict[str, dict[float, dict]] = {}
    for key in keys:
        out[key] = {}
        for s in strengths:
            feats, labels = calib_features(model, key, s)
            out[key][s] = acc = base_new_accuracy(model, key, feats, labels)
            log.info("%-10s strength %.2f: base %.1f new %.1f all %.1f", key, s, acc["base"], acc["new"], acc["all"])
    return out


def main(argv: list[str] | None = None) -> int:
    """Sweep strengths and log the one closest to the target per dataset."""
    import torch

    from benchmark.world.model import load_world_clip

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # the four datasets with their own sensor styles (the v2 sets reuse them)
    p.add_argument("--keys", nargs="+", default=[key for key in WORLD_DATASETS if not key.endswith("v2")])
    p.add_argument("--strengths", nargs="+", type=float, default=list(DEFAULT_STRENGTHS))
    p.add_argument("--target", type=float, default=TARGET_ACC)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(2)
    model = load_world_clip()
    res = sweep(model, args.keys, args.strengths)
    for key, by_s in res.items():
        best = min(by_s, key=lambda s: abs((by_s[s]["base"] + by_s[s]["new"]) / 2 - args.target))
        log.info(
            "%s: strength %.2f is closest to %.0f %% (base %.1f new %.1f)",
            key,
            best,
            args.target,
            by_s[best]["base"],
            by_s[best]["new"],
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
