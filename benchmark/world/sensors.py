"""The four evaluation sensors: fixed style directions at calibrated strengths.

Kept apart from :mod:`benchmark.world.styles` (the style family, also used by the pretraining corpus) so
that recalibrating a strength changes the evaluation datasets but not the pretraining corpus. Strengths are
fixed on a calibration seed with :mod:`benchmark.world.calibrate`, never on a test split.
"""

from __future__ import annotations

from benchmark.world.styles import SensorStyle

#: The four sensors of the evaluation datasets. Strengths were fixed on a calibration seed (see STATUS.md);
#: each is a distinct direction of the family above, beyond the pretraining range.
SENSOR_STYLES: dict[str, SensorStyle] = {
    "patternnet": SensorStyle(
        "patternnet",
        gsd=0.85,
        matrix=(0.10, 0.05, -0.05, 0.0, 0.05, 0.0, -0.05, 0.05, 0.05),
        bias=(0.02, 0.0, -0.03),
        log_gamma=-0.15,
        saturation=0.35,
        contrast=0.25,
        gradient=0.1,
        blur=0.2,
        noise=0.01,
        strength=2.75,
    ),
    "rsicd": SensorStyle(
        "rsicd",
        gsd=1.1,
        matrix=(-0.05, 0.05, 0.10, 0.0, -0.05, 0.10, 0.05, 0.05, 0.10),
        bias=(-0.02, 0.0, 0.04),
        log_gamma=0.1,
        saturation=-0.3,
        contrast=-0.1,
        haze=0.12,
        gradient=0.15,
        blur=0.45,
        noise=0.015,
        strength=2.1,
    ),
    "resisc45": SensorStyle(
        "resisc45",
        gsd=1.0,
        matrix=(-0.10, 0.15, 0.0, 0.05, 0.05, -0.10, 0.0, 0.10, -0.10),
        bias=(0.0, 0.03, -0.02),
        log_gamma=-0.2,
        saturation=0.25,
        contrast=0.15,
        gradient=0.2,
        blur=0.3,
        noise=0.02,
        strength=2.75,
    ),
    "mlrsnet": SensorStyle(
        "mlrsnet",
        gsd=1.25,
        matrix=(0.15, -0.05, 0.05, -0.05, -0.10, 0.10, 0.10, -0.05, 0.0),
        bias=(0.03, -0.02, 0.02),
        log_gamma=0.2,
        saturation=-0.15,
        contrast=0.2,
        haze=0.05,
        gradient=0.15,
        blur=0.4,
        noise=0.02,
        strength=3.3,
    ),
}
