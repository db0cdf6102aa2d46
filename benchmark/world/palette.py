"""Named surface colours of the embedded world (linear-ish RGB in [0, 1], before any sensor style).

Why one table: classes share surfaces (asphalt, grass, water, roofs), so a dataset's sensor style shifts
them all the same way, and captions can name colours from the same vocabulary.
"""

from __future__ import annotations

from benchmark.world.primitives import Color

GRASS: Color = (0.42, 0.55, 0.28)
LAWN: Color = (0.36, 0.60, 0.30)
DRY_GRASS: Color = (0.64, 0.61, 0.40)
CANOPY: Color = (0.17, 0.32, 0.15)
TREE: Color = (0.22, 0.40, 0.18)
SHRUB: Color = (0.46, 0.45, 0.30)
SOIL: Color = (0.56, 0.45, 0.33)
DARK_SOIL: Color = (0.40, 0.32, 0.24)
SAND: Color = (0.87, 0.79, 0.61)
DUNE: Color = (0.80, 0.64, 0.42)
ROCK: Color = (0.55, 0.52, 0.48)
WATER: Color = (0.17, 0.31, 0.42)
DEEP_WATER: Color = (0.09, 0.20, 0.31)
SHALLOW: Color = (0.30, 0.52, 0.53)
MARSH: Color = (0.30, 0.40, 0.26)
ASPHALT: Color = (0.30, 0.30, 0.31)
CONCRETE: Color = (0.64, 0.63, 0.60)
PAVEMENT: Color = (0.50, 0.49, 0.47)
GRAVEL: Color = (0.52, 0.48, 0.44)
MARKING: Color = (0.93, 0.93, 0.90)
SHADOW: Color = (0.08, 0.09, 0.10)
RAIL: Color = (0.22, 0.20, 0.19)
SLEEPER: Color = (0.40, 0.33, 0.27)
CLAY: Color = (0.72, 0.48, 0.33)
TRACK_RED: Color = (0.66, 0.30, 0.24)
COURT_GREEN: Color = (0.26, 0.52, 0.38)
COURT_BLUE: Color = (0.25, 0.40, 0.64)
COURT_TAN: Color = (0.80, 0.58, 0.38)
SOLAR: Color = (0.10, 0.14, 0.26)
WHITE_METAL: Color = (0.90, 0.90, 0.88)

ROOFS: list[Color] = [
    (0.64, 0.31, 0.25),
    (0.52, 0.38, 0.30),
    (0.56, 0.56, 0.57),
    (0.38, 0.37, 0.40),
    (0.80, 0.78, 0.74),
    (0.70, 0.50, 0.36),
]
FACTORY_ROOFS: list[Color] = [
    (0.80, 0.80, 0.78),
    (0.62, 0.63, 0.64),
    (0.42, 0.52, 0.66),
    (0.52, 0.50, 0.48),
    (0.70, 0.68, 0.62),
]
CAR_COLORS: list[Color] = [
    (0.85, 0.85, 0.85),
    (0.15, 0.15, 0.17),
    (0.60, 0.15, 0.14),
    (0.25, 0.32, 0.55),
    (0.55, 0.56, 0.58),
    (0.75, 0.72, 0.62),
]
CROP_COLORS: list[Color] = [
    (0.42, 0.56, 0.26),
    (0.62, 0.60, 0.34),
    (0.52, 0.42, 0.30),
    (0.34, 0.48, 0.22),
    (0.74, 0.66, 0.42),
    (0.46, 0.36, 0.26),
]
BOAT_COLORS: list[Color] = [(0.92, 0.92, 0.90), (0.80, 0.80, 0.82), (0.70, 0.30, 0.25), (0.30, 0.40, 0.60)]
