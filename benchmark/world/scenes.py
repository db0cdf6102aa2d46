"""The class pool of the embedded world: one recipe and a set of names per scene class.

Canonical keys are lower_snake names. ``ALIASES`` lists the spellings real datasets use for the same
class (RSICD's "storagetanks", RESISC45's "baseball_diamond", MLRSNet's "dense_residential_area"); the
pretraining captions use all of them, as web captions would, so the tiny CLIP knows every dataset's names.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from benchmark.world import scenes_land as L
from benchmark.world import scenes_transport as T
from benchmark.world import scenes_urban as U
from benchmark.world.primitives import Canvas

Recipe = Callable[[Canvas, np.random.Generator], None]

RECIPES: dict[str, Recipe] = {
    "forest": L.forest,
    "chaparral": L.chaparral,
    "meadow": L.meadow,
    "desert": L.desert,
    "beach": L.beach,
    "lake": L.lake,
    "river": L.river,
    "wetland": L.wetland,
    "mountain": L.mountain,
    "farmland": L.farmland,
    "circular_farmland": L.circular_farmland,
    "golf_course": L.golf_course,
    "harbor": T.harbor,
    "bridge": T.bridge,
    "overpass": T.overpass,
    "intersection": T.intersection,
    "freeway": T.freeway,
    "roundabout": T.roundabout,
    "railway": T.railway,
    "runway": T.runway,
    "airplane": T.airplane,
    "parking_lot": T.parking_lot,
    "storage_tank": U.storage_tank,
    "baseball_field": U.baseball_field,
    "tennis_court": U.tennis_court,
    "basketball_court": U.basketball_court,
    "stadium": U.stadium,
    "dense_residential": U.dense_residential,
    "medium_residential": U.medium_residential,
    "sparse_residential": U.sparse_residential,
    "industrial_area": U.industrial_area,
    "solar_panel": U.solar_panel,
}

#: Canonical class -> every name used for it (first entry = the canonical name with spaces).
ALIASES: dict[str, tuple[str, ...]] = {k: (k.replace("_", " "),) for k in RECIPES}
ALIASES.update(
    {
        "baseball_field": ("baseball field", "baseballfield", "baseball diamond"),
        "storage_tank": ("storage tank", "storagetanks", "storage tanks", "tanks"),
        "harbor": ("harbor", "port", "harbour"),
        "industrial_area": ("industrial area", "industrial"),
        "parking_lot": ("parking lot", "parking"),
        "dense_residential": ("dense residential", "denseresidential", "dense residential area"),
        "medium_residential": ("medium residential", "mediumresidential", "medium residential area"),
        "sparse_residential": ("sparse residential", "sparseresidential", "sparse residential area"),
        "farmland": ("farmland", "rectangular farmland", "farm land"),
        "circular_farmland": ("circular farmland", "round farmland"),
        "golf_course": ("golf course", "golfcourse"),
        "tennis_court": ("tennis court", "tenniscourt"),
        "basketball_court": ("basketball court", "basketballcourt"),
        "solar_panel": ("solar panel", "solar panels", "solarpanel"),
    }
)

CLASS_POOL: tuple[str, ...] = tuple(RECIPES)


def render_scene(cls: str, rng: np.random.Generator, size: int) -> Canvas:
    """Paint one scene of class ``cls`` on a fresh ``size`` x ``size`` canvas.

    Args:
        cls: A canonical class key of :data:`RECIPES`.
        rng: The image's own generator.
        size: Canvas side in pixels (the sensor's ground-sample scale decides it).

    Returns:
        The canvas, pixels in roughly [0, 1] (styles clip later) and caption facts.
    """
    c = Canvas(size)
    ang = rng.uniform(0, 2 * np.pi)
    length = rng.uniform(0.8, 2.0)
    c.sun = (float(length * np.cos(ang)), float(length * np.sin(ang)))
    RECIPES[cls](c, rng)
    return c
