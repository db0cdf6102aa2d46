"""Scene recipes for built-up land: housing, industry, sports grounds, tanks and solar arrays.

Look-alikes are intended: the three residential densities share one house primitive and differ in spacing,
tennis and basketball courts are both lined coloured rectangles, stadiums and ball fields are both green
and red-brown.
"""

from __future__ import annotations

import numpy as np

from benchmark.world import palette as P
from benchmark.world.features import cars, ground, houses, road, trees
from benchmark.world.primitives import (
    Canvas,
    Color,
    coverage,
    disk,
    ellipse,
    grid_field,
    jitter_color,
    make_tables,
    pick_colors,
    rect,
    rect_sdf,
    ring,
)
from benchmark.world.scenes_land import _centre

Rng = np.random.Generator
LINE = 0.35  # half width of painted court lines, pixels


def _outline(sdf: np.ndarray) -> np.ndarray:
    """Coverage of a painted line along the zero level of ``sdf``."""
    return coverage(np.abs(sdf) - LINE)


def storage_tank(c: Canvas, rng: Rng) -> None:
    """Clusters of large round tanks with shadows and floating-roof rims."""
    ground(c, rng, P.CONCRETE if rng.random() < 0.5 else P.SOIL, amp=0.1, cell=14)
    pitch = rng.uniform(10, 18)
    tables = make_tables(rng)
    kw = dict(
        pitch_u=pitch,
        pitch_v=pitch,
        size_u=pitch * rng.uniform(0.55, 0.8),
        size_v=pitch,
        angle=rng.uniform(0, np.pi / 2),
        keep=rng.uniform(0.55, 1.0),
        jitter=0.4,
        size_jitter=0.25,
        disk_shape=True,
        origin=(rng.uniform(0, pitch), rng.uniform(0, pitch)),
        seed_tables=tables,
    )
    c.paint(grid_field(c, rng, shift=(c.sun[0] * 1.5, c.sun[1] * 1.5), **kw).cov * 0.6, P.SHADOW)
    tanks = grid_field(c, rng, **kw)
    c.paint(tanks.cov, pick_colors(tables, tanks.cell, [P.WHITE_METAL, (0.75, 0.75, 0.73), (0.6, 0.62, 0.6)]))
    rim = grid_field(c, rng, **{**kw, "size_u": kw["size_u"] * 0.75}).cov
    c.paint(np.clip(tanks.cov - rim, 0, 1) * 0.25, P.SHADOW)
    c.facts += ["several large round white containers", "their shadows on the ground"]


def baseball_field(c: Canvas, rng: Rng) -> None:
    """A grass fan with a brown diamond infield and white foul lines."""
    ground(c, rng, P.GRASS if rng.random() < 0.5 else P.PAVEMENT, amp=0.1, cell=14)
    trees(c, rng, density=rng.uniform(0.0, 0.3), layers=1)
    hx, hy = _centre(c, rng, 0.15)
    ang = rng.uniform(0, 2 * np.pi)
    r_out = rng.uniform(20, 32)
    u, v = c.rotated(hx, hy, ang)
    fan = coverage(np.sqrt(u**2 + v**2) - r_out) * coverage(np.abs(v) - u)
    c.paint(fan, jitter_color(rng, P.LAWN))
    side = r_out * rng.uniform(0.28, 0.38)
    rot_u, rot_v = (u + v) * 0.7071, (u - v) * 0.7071
    infield = coverage(rect_sdf(rot_u - side / 2, rot_v - side / 2, side / 2 + 1.5, side / 2 + 1.5))
    c.paint(infield * fan, jitter_color(rng, P.CLAY))
    c.paint(coverage(rect_sdf(rot_u - side / 2, rot_v - side / 2, side / 2 - 1.5, side / 2 - 1.5)), P.LAWN)
    c.paint(coverage(np.abs(np.abs(v) - u) - LINE) * (u > 0) * fan * 0.9, P.MARKING)
    c.facts += ["a fan-shaped lawn", "a brown square of bare earth at its tip", "white lines along its edges"]


def _court_surface(rng: Rng, options: list[Color]) -> Color:
    return jitter_color(rng, options[int(rng.integers(len(options)))], 0.08)


def tennis_court(c: Canvas, rng: Rng) -> None:
    """One to four lined courts with nets and service boxes."""
    ground(c, rng, [P.GRASS, P.PAVEMENT, P.DRY_GRASS][int(rng.integers(3))], amp=0.1, cell=14)
    cx, cy = _centre(c, rng, 0.1)
    ang, length = rng.uniform(0, np.pi), rng.uniform(16, 24)
    width = length * 0.46
    n = int(rng.integers(1, 5))
    u, v0 = c.rotated(cx, cy, ang)
    surface = _court_surface(rng, [P.COURT_GREEN, P.COURT_BLUE, P.CLAY])
    c.paint(coverage(rect_sdf(u, v0, length / 2 + 2, n * (width + 2) / 2 + 1)), jitter_color(rng, P.COURT_GREEN))
    for k in range(n):
        v = v0 - (k - (n - 1) / 2) * (width + 2)
        c.paint(coverage(rect_sdf(u, v, length / 2, width / 2)), surface)
        lines = _outline(rect_sdf(u, v, length / 2, width / 2))
        lines = np.maximum(lines, _outline(rect_sdf(u, v, length / 2, width * 0.375)) * (np.abs(u) < length / 2))
        service = coverage(np.abs(np.abs(u) - length * 0.27) - LINE) * (np.abs(v) < width * 0.375)
        centre = coverage(np.abs(v) - LINE) * (np.abs(u) < length * 0.27)
        lines = np.maximum(lines, np.maximum(service, centre))
        c.paint(lines * 0.95, P.MARKING)
        c.paint(coverage(np.abs(u) - 0.4) * (np.abs(v) < width / 2 + 0.8) * 0.8, P.SHADOW)
    c.facts += ["coloured rectangles with white line markings", "a dark line across the middle of each"]


def basketball_court(c: Canvas, rng: Rng) -> None:
    """One to three courts with centre circles, keys and arcs."""
    ground(c, rng, [P.GRASS, P.PAVEMENT, P.CONCRETE][int(rng.integers(3))], amp=0.1, cell=14)
    cx, cy = _centre(c, rng, 0.1)
    ang, length = rng.uniform(0, np.pi), rng.uniform(16, 24)
    width = length * 0.53
    n = int(rng.integers(1, 4))
    u, v0 = c.rotated(cx, cy, ang)
    surface = _court_surface(rng, [P.COURT_TAN, P.COURT_BLUE, P.COURT_GREEN, P.TRACK_RED])
    for k in range(n):
        v = v0 - (k - (n - 1) / 2) * (width + 2.5)
        c.paint(coverage(rect_sdf(u, v, length / 2, width / 2)), surface)
        lines = _outline(rect_sdf(u, v, length / 2, width / 2))
        lines = np.maximum(lines, coverage(np.abs(u) - LINE) * (np.abs(v) < width / 2))
        lines = np.maximum(lines, _outline(np.sqrt(u**2 + v**2) - width * 0.18))
        for end in (-1, 1):
            eu = u - end * length / 2
            key = _outline(rect_sdf(eu, v, length * 0.19, width * 0.17)) * (np.abs(u) < length / 2)
            arc = _outline(np.sqrt(eu**2 + v**2) - width * 0.42) * (np.abs(u) < length / 2)
            lines = np.maximum(lines, np.maximum(key, arc))
        c.paint(lines * 0.95, P.MARKING)
    c.facts += ["coloured rectangles with white line markings", "circles and arcs painted on them"]


def stadium(c: Canvas, rng: Rng) -> None:
    """An oval reddish running track around a green pitch, ringed by grey stands."""
    ground(c, rng, P.PAVEMENT if rng.random() < 0.6 else P.GRASS, amp=0.1, cell=14)
    houses(c, rng, pitch=rng.uniform(8, 12), size=5, angle=rng.uniform(0, np.pi), keep=0.5)
    cx, cy = _centre(c, rng, 0.08)
    ang, ru = rng.uniform(0, np.pi), rng.uniform(15, 22)
    rv = ru * rng.uniform(0.55, 0.7)
    c.paint(ellipse(c, cx, cy, ru + 6, rv + 6, ang), jitter_color(rng, P.CONCRETE, 0.1))
    u, v = c.rotated(cx, cy, ang)
    stands = (np.sin(np.arctan2(v, u) * 40) > 0).astype(np.float32) * 0.1
    c.img *= 1 - (ellipse(c, cx, cy, ru + 6, rv + 6, ang) * stands)[..., None]
    c.paint(ellipse(c, cx, cy, ru, rv, ang), jitter_color(rng, P.TRACK_RED))
    c.paint(ellipse(c, cx, cy, ru - 3.5, rv - 3.5, ang), jitter_color(rng, P.LAWN))
    c.paint(ring(c, cx, cy, ru - 1.7, 0.4, ru / rv, ang) * 0.6, P.MARKING)
    c.facts += ["an oval reddish ring around a green lawn", "grey tiers of seating around it"]


def _streets(c: Canvas, rng: Rng, angle: float, block: float, width: float) -> np.ndarray:
    """A street grid with ``block`` spacing; returns its coverage after painting it."""
    u, v = c.rotated(rng.uniform(0, block), rng.uniform(0, block), angle)
    cov = np.maximum(
        coverage((block / 2 - width / 2) - np.abs(np.mod(u, block) - block / 2)),
        coverage((block * 0.7 - width / 2) - np.abs(np.mod(v, block * 1.4) - block * 0.7)),
    )
    c.paint(cov, jitter_color(rng, P.ASPHALT))
    return cov


def _residential(c: Canvas, rng: Rng, pitch: float, keep: float, tree_density: float) -> np.ndarray:
    """Shared body of the residential classes; they differ only in spacing, occupancy and greenery."""
    ground(c, rng, P.LAWN if pitch > 8 else P.PAVEMENT, amp=0.12, cell=12, tint=P.GRASS)
    ang = rng.uniform(0, np.pi)
    if pitch > 10:
        streets = road(c, rng, *_centre(c, rng), ang, 3.5, wiggle=rng.uniform(2, 8), lanes=1)
    else:
        streets = _streets(c, rng, ang, pitch * rng.uniform(3, 4.5), rng.uniform(2.5, 3.5))
    trees(c, rng, density=tree_density, mask=1 - streets, layers=1)
    size = min(pitch * rng.uniform(0.55, 0.8), 6.5)
    return houses(c, rng, pitch=pitch, size=size, angle=ang, keep=keep, mask=1 - streets, aspect=rng.uniform(1.0, 1.5))


def dense_residential(c: Canvas, rng: Rng) -> None:
    """Tightly packed small houses on a fine street grid, little green."""
    _residential(c, rng, rng.uniform(5.0, 6.5), rng.uniform(0.85, 1.0), rng.uniform(0.02, 0.15))
    c.facts += ["tightly packed small roofs", "narrow streets in a grid", "hardly any greenery"]


def medium_residential(c: Canvas, rng: Rng) -> None:
    """Houses at moderate spacing with gardens and street trees."""
    _residential(c, rng, rng.uniform(7.0, 9.0), rng.uniform(0.6, 0.85), rng.uniform(0.15, 0.35))
    c.facts += ["rows of small roofs with gardens", "streets in a grid", "some trees"]


def sparse_residential(c: Canvas, rng: Rng) -> None:
    """Scattered houses on large lawns along a curving street, many trees."""
    _residential(c, rng, rng.uniform(11.0, 15.0), rng.uniform(0.35, 0.65), rng.uniform(0.25, 0.5))
    c.facts += ["scattered small roofs among lawns", "a curving street", "many trees"]


def industrial_area(c: Canvas, rng: Rng) -> None:
    """Large flat roofs, paved yards, trucks and sometimes small tanks."""
    ground(c, rng, P.PAVEMENT, amp=0.1, cell=12)
    ang = rng.uniform(0, np.pi)
    streets = _streets(c, rng, ang, rng.uniform(24, 34), rng.uniform(3, 4.5))
    houses(
        c,
        rng,
        pitch=rng.uniform(14, 22),
        size=rng.uniform(9, 15),
        angle=ang,
        keep=rng.uniform(0.6, 0.9),
        mask=1 - streets,
        palette=P.FACTORY_ROOFS,
        aspect=rng.uniform(1.0, 1.8),
        jitter=0.3,
    )
    cars(c, rng, region=1 - streets, angle=ang, density=0.08, pitch_u=4, pitch_v=6)
    c.facts += ["large flat pale roofs", "wide paved yards", "a few trucks"]
    if rng.random() < 0.3:
        x, y = _centre(c, rng, 0.3)
        c.paint(disk(c, x, y, rng.uniform(2.5, 4)), P.WHITE_METAL)
        c.facts.append("a small round container")


def solar_panel(c: Canvas, rng: Rng) -> None:
    """Regular rows of dark blue panels with narrow gaps, on bare or grassy ground."""
    ground(c, rng, P.SOIL if rng.random() < 0.5 else P.DRY_GRASS, amp=0.1, cell=16)
    cx, cy = _centre(c, rng, 0.1)
    ang = rng.uniform(0, np.pi)
    pv = rng.uniform(3.2, 4.6)
    pu = rng.uniform(6, 12)
    tables = make_tables(rng)
    f = grid_field(
        c,
        rng,
        pitch_u=pu,
        pitch_v=pv,
        size_u=pu - 0.7,
        size_v=pv * rng.uniform(0.5, 0.7),
        angle=ang,
        keep=rng.uniform(0.9, 1.0),
        origin=(cx, cy),
        seed_tables=tables,
    )
    area = rect(c, cx, cy, c.size * rng.uniform(0.7, 1.4), c.size * rng.uniform(0.7, 1.4), ang)
    c.paint(f.cov * area, pick_colors(tables, f.cell, [jitter_color(rng, P.SOLAR, 0.15)], shade=0.2))
    c.facts += ["rows of dark blue rectangles", "regular narrow gaps between the rows"]
