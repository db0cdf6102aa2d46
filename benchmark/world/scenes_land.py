"""Scene recipes for natural and agricultural land cover.

Each recipe paints one scene of its class onto a canvas and appends caption facts. Randomness (layout,
orientation, density, scale, clutter) all comes from the given generator, so every image is reproducible
from its seed. Facts describe appearance only and never name a class.
"""

from __future__ import annotations

import numpy as np

from benchmark.world import palette as P
from benchmark.world.features import ground, road, trees, water
from benchmark.world.primitives import (
    Canvas,
    band,
    blob,
    coverage,
    grid_field,
    half_plane,
    jitter_color,
    make_tables,
    pick_colors,
    textured,
    value_noise,
)

Rng = np.random.Generator


def _centre(c: Canvas, rng: Rng, spread: float = 0.15) -> tuple[float, float]:
    """A point near the canvas centre, so the defining feature stays in view."""
    s = c.size
    return s * (0.5 + rng.uniform(-spread, spread)), s * (0.5 + rng.uniform(-spread, spread))


def forest(c: Canvas, rng: Rng) -> None:
    """Closed canopy of round crowns, sometimes cut by a dirt track."""
    ground(c, rng, P.CANOPY, amp=0.2, cell=10)
    trees(
        c,
        rng,
        density=rng.uniform(0.85, 1.0),
        crown=rng.uniform(2.5, 4.0),
        layers=3,
        color=P.TREE if rng.random() < 0.6 else P.CANOPY,
    )
    c.facts += ["dense dark green canopy", "countless round treetops"]
    if rng.random() < 0.3:
        road(
            c,
            rng,
            *_centre(c, rng),
            rng.uniform(0, np.pi),
            rng.uniform(1.5, 2.5),
            wiggle=rng.uniform(0, 6),
            lanes=1,
            surface=P.SOIL,
        )
        c.facts.append("a narrow dirt track through the trees")


def chaparral(c: Canvas, rng: Rng) -> None:
    """Dry ground with sparse low shrubs."""
    ground(c, rng, P.DRY_GRASS if rng.random() < 0.5 else P.SOIL, amp=0.15, cell=12, tint=P.SHRUB)
    trees(c, rng, density=rng.uniform(0.2, 0.5), crown=rng.uniform(1.4, 2.6), color=P.SHRUB, layers=2)
    c.facts += ["dry brownish ground", "scattered small bushes"]


def meadow(c: Canvas, rng: Rng) -> None:
    """Open grass, smooth, maybe a few lone trees."""
    ground(c, rng, P.GRASS if rng.random() < 0.6 else P.LAWN, amp=0.08, cell=20, tint=P.DRY_GRASS)
    c.facts.append("smooth open green grass")
    if rng.random() < 0.5:
        trees(c, rng, density=rng.uniform(0.01, 0.05), crown=rng.uniform(2.5, 4.0), layers=1)
        c.facts.append("a few isolated trees")


def desert(c: Canvas, rng: Rng) -> None:
    """Sand with parallel wavy dune ridges."""
    ground(c, rng, P.SAND if rng.random() < 0.5 else P.DUNE, amp=0.08, cell=24)
    u, v = c.rotated(0.0, 0.0, rng.uniform(0, np.pi))
    period = rng.uniform(6, 14)
    warp = value_noise(rng, c.size, 16, 1) * rng.uniform(4, 12)
    ridge = np.sin(2 * np.pi * (v + warp) / period)
    c.img *= (1 + 0.12 * ridge)[..., None]
    c.facts += ["pale sandy terrain", "wavy ridges of sand"]


def beach(c: Canvas, rng: Rng) -> None:
    """Sand meeting water along a wavy shoreline, with a line of surf."""
    ground(c, rng, P.SAND, amp=0.06, cell=18)
    cx, cy = _centre(c, rng, 0.2)
    ang = rng.uniform(0, 2 * np.pi)
    phase = rng.uniform(0, 2 * np.pi)
    wig = rng.uniform(0.5, 3)
    sea = half_plane(c, cx, cy, ang, wig, 50, phase)
    water(c, rng, sea, color=P.WATER if rng.random() < 0.5 else P.SHALLOW, edge=None)
    u, v = c.rotated(cx, cy, ang)
    surf = coverage(np.abs(v - wig * np.sin(2 * np.pi * u / 50 + phase) + 1.0) - 0.8)
    c.paint(surf * 0.8, P.MARKING)
    c.facts += ["a strip of light sand", "blue water along one side", "a thin white line of surf"]
    if rng.random() < 0.4:
        inland = coverage(v - wig * np.sin(2 * np.pi * u / 50 + phase) + c.size * rng.uniform(0.2, 0.4))
        trees(c, rng, density=0.6, mask=inland, layers=1)
        c.facts.append("greenery further inland")


def lake(c: Canvas, rng: Rng) -> None:
    """A large irregular water body in green or dry surroundings."""
    ground(c, rng, P.GRASS if rng.random() < 0.7 else P.DRY_GRASS, amp=0.12, cell=14)
    trees(c, rng, density=rng.uniform(0.1, 0.5), layers=1)
    cx, cy = _centre(c, rng, 0.15)
    wb = blob(c, rng, cx, cy, c.size * rng.uniform(0.25, 0.42), roughness=rng.uniform(0.2, 0.45))
    water(c, rng, wb, color=P.WATER if rng.random() < 0.5 else P.DEEP_WATER)
    c.facts += ["a large irregular patch of dark water", "green shores with some trees"]


def river(c: Canvas, rng: Rng) -> None:
    """A meandering water band with vegetated banks."""
    ground(c, rng, P.GRASS if rng.random() < 0.6 else P.SOIL, amp=0.14, cell=14, tint=P.DRY_GRASS)
    cx, cy = _centre(c, rng)
    ang, wid = rng.uniform(0, np.pi), rng.uniform(5, 13)
    wig, per, ph = rng.uniform(3, 10), rng.uniform(45, 90), rng.uniform(0, 2 * np.pi)
    banks = band(c, cx, cy, ang, wid + rng.uniform(5, 10), wig, per, ph)
    trees(c, rng, density=rng.uniform(0.3, 0.8), mask=banks, layers=1)
    water(c, rng, band(c, cx, cy, ang, wid, wig, per, ph), color=P.WATER if rng.random() < 0.6 else P.SHALLOW)
    c.facts += ["a winding band of water", "tree-lined banks"]


def wetland(c: Canvas, rng: Rng) -> None:
    """Marsh vegetation interleaved with many small pools."""
    ground(c, rng, P.MARSH, amp=0.15, cell=10, tint=P.GRASS)
    n = value_noise(rng, c.size, rng.uniform(6, 12), 3)
    pools = coverage((rng.uniform(0.5, 0.6) - n) * 8)
    water(c, rng, pools, color=P.SHALLOW if rng.random() < 0.5 else P.WATER, edge=None)
    trees(c, rng, density=rng.uniform(0.05, 0.2), crown=2.0, color=P.MARSH, layers=1)
    c.facts += ["a patchy mix of shallow water and marsh plants", "many small pools"]


def mountain(c: Canvas, rng: Rng) -> None:
    """Ridged, hill-shaded relief, green in valleys and rocky on crests."""
    n = value_noise(rng, c.size, rng.uniform(14, 26), 3)
    ridges = 1 - np.abs(2 * n - 1)
    gy, gx = np.gradient(ridges)
    az = rng.uniform(0, 2 * np.pi)
    shade = np.clip(0.75 + 6.0 * (gx * np.cos(az) + gy * np.sin(az)), 0.3, 1.3)
    low, high = np.asarray(jitter_color(rng, P.CANOPY if rng.random() < 0.6 else P.SHRUB)), np.asarray(P.ROCK)
    img = low + ridges[..., None] ** 2 * (high - low)
    c.img[:] = img * shade[..., None]
    c.facts += ["rugged relief with sharp ridges and shadowed valleys"]
    if rng.random() < 0.3:
        c.paint(np.clip((ridges - 0.85) * 10, 0, 1), P.MARKING)
        c.facts.append("white patches on the crests")


def farmland(c: Canvas, rng: Rng) -> None:
    """A patchwork of rectangular plots with parallel crop rows."""
    ground(c, rng, P.SOIL, amp=0.08, cell=20)
    ang = rng.uniform(0, np.pi)
    pu, pv = rng.uniform(14, 26), rng.uniform(10, 20)
    tables = make_tables(rng)
    f = grid_field(
        c,
        rng,
        pitch_u=pu,
        pitch_v=pv,
        size_u=pu - 1.2,
        size_v=pv - 1.2,
        angle=ang,
        keep=1.0,
        origin=(rng.uniform(0, pu), rng.uniform(0, pv)),
        seed_tables=tables,
    )
    col = pick_colors(tables, f.cell, P.CROP_COLORS, shade=0.1)
    u, _ = c.rotated(0.0, 0.0, ang + (np.pi / 2 if rng.random() < 0.5 else 0.0))
    rows = 1 + 0.12 * np.sin(2 * np.pi * u / rng.uniform(1.8, 3.0))
    c.paint(f.cov, col * rows[..., None])
    c.facts += [
        "a patchwork of rectangular plots in green and brown",
        "parallel crop rows",
        "thin boundaries",
    ]


def circular_farmland(c: Canvas, rng: Rng) -> None:
    """Round irrigated plots on dry ground."""
    ground(c, rng, P.DRY_GRASS if rng.random() < 0.5 else P.SOIL, amp=0.1, cell=20)
    pitch = rng.uniform(22, 36)
    tables = make_tables(rng)
    f = grid_field(
        c,
        rng,
        pitch_u=pitch,
        pitch_v=pitch,
        size_u=pitch * 0.9,
        size_v=pitch * 0.9,
        angle=rng.uniform(0, np.pi / 2),
        keep=rng.uniform(0.7, 1.0),
        jitter=0.3,
        size_jitter=0.1,
        disk_shape=True,
        origin=(rng.uniform(0, pitch), rng.uniform(0, pitch)),
        seed_tables=tables,
    )
    c.paint(f.cov, pick_colors(tables, f.cell, P.CROP_COLORS[:4], shade=0.15))
    c.facts += ["large round plots of green and brown crops", "dry ground between the circles"]


def golf_course(c: Canvas, rng: Rng) -> None:
    """Lawn with light winding fairways, sand bunkers, tree clumps and maybe a pond."""
    ground(c, rng, P.GRASS, amp=0.1, cell=16)
    n = value_noise(rng, c.size, rng.uniform(14, 22), 2)
    fair = coverage((n - rng.uniform(0.45, 0.55)) * -10)
    trees(c, rng, density=rng.uniform(0.4, 0.8), mask=1 - fair, layers=2)
    c.paint(fair, textured(rng, c.size, jitter_color(rng, P.LAWN), 0.05, 8, 1) * 1.08)
    for _ in range(int(rng.integers(2, 6))):
        x, y = rng.uniform(0, c.size, 2)
        c.paint(blob(c, rng, x, y, rng.uniform(1.5, 3.0), 0.3) * fair, P.SAND)
    c.facts += ["light green winding lawns", "small pale sand patches", "clumps of trees"]
    if rng.random() < 0.4:
        x, y = rng.uniform(0.2, 0.8, 2) * c.size
        water(c, rng, blob(c, rng, x, y, rng.uniform(3, 6)), edge=None)
        c.facts.append("a small pond")
