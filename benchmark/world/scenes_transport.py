"""Scene recipes for transport infrastructure: roads, junctions, rail, water fronts and airfields.

Several of these are deliberate look-alikes built from the same road and water primitives (bridge vs
river, freeway vs runway, overpass vs intersection), so the classes are not separable by one cue.
"""

from __future__ import annotations

import numpy as np

from benchmark.world import palette as P
from benchmark.world.features import cars, ground, houses, road, trees, water
from benchmark.world.primitives import (
    Canvas,
    band,
    coverage,
    disk,
    grid_field,
    half_plane,
    jitter_color,
    make_tables,
    pick_colors,
    rect,
    ring,
)
from benchmark.world.scenes_land import _centre

Rng = np.random.Generator


def _green_or_urban(c: Canvas, rng: Rng) -> None:
    """Surroundings of a piece of infrastructure: grass, dry land or pavement."""
    base = [P.GRASS, P.DRY_GRASS, P.PAVEMENT][int(rng.integers(3))]
    ground(c, rng, base, amp=0.12, cell=14)


def harbor(c: Canvas, rng: Rng) -> None:
    """Paved waterfront with piers reaching into water and moored boats."""
    ground(c, rng, P.CONCRETE, amp=0.08, cell=12)
    cx, cy = _centre(c, rng, 0.1)
    ang = rng.uniform(0, 2 * np.pi)
    sea = half_plane(c, cx, cy, ang)
    water(c, rng, sea, color=P.WATER if rng.random() < 0.5 else P.DEEP_WATER, edge=None)
    pitch = rng.uniform(7, 12)
    pier_len = rng.uniform(12, 24)
    tables = make_tables(rng)
    origin = (cx + pitch * rng.random(), cy)
    piers = grid_field(
        c,
        rng,
        pitch_u=pitch,
        pitch_v=1000,
        size_u=1.4,
        size_v=2000,
        angle=ang,
        origin=origin,
        seed_tables=tables,
    ).cov
    u, v = c.rotated(cx, cy, ang)
    piers = piers * (v > 0) * (v < pier_len)
    c.paint(piers, P.CONCRETE)
    boats = grid_field(
        c,
        rng,
        pitch_u=pitch / 2,
        pitch_v=3.6,
        size_u=1.6,
        size_v=3.2,
        angle=ang,
        keep=rng.uniform(0.4, 0.9),
        jitter=0.3,
        origin=(origin[0] + pitch / 4, cy),
        seed_tables=make_tables(rng),
    )
    bcov = boats.cov * sea * (v < pier_len) * (1 - piers)
    c.paint(bcov, pick_colors(tables, boats.cell, P.BOAT_COLORS))
    c.facts += ["straight piers reaching into water", "many small moored boats", "a paved waterfront"]


def bridge(c: Canvas, rng: Rng) -> None:
    """A straight deck crossing a band of water."""
    _green_or_urban(c, rng)
    cx, cy = _centre(c, rng, 0.1)
    ang = rng.uniform(0, np.pi)
    wid = rng.uniform(10, 22)
    banks = band(c, cx, cy, ang, wid + 6, rng.uniform(0, 3), 90)
    trees(c, rng, density=0.4, mask=banks, layers=1)
    water(c, rng, band(c, cx, cy, ang, wid, rng.uniform(0, 3), 90))
    cross = ang + np.pi / 2 + rng.uniform(-0.4, 0.4)
    deck = rng.uniform(3.5, 7)
    c.paint(band(c, cx + c.sun[0] * 2, cy + c.sun[1] * 2, cross, deck) * 0.5, P.SHADOW)
    road(
        c,
        rng,
        cx,
        cy,
        cross,
        deck,
        surface=P.CONCRETE if rng.random() < 0.5 else P.ASPHALT,
        lanes=2 if deck > 5 else 1,
    )
    c.facts += ["a straight grey strip crossing a band of water", "its shadow on the water"]


def overpass(c: Canvas, rng: Rng) -> None:
    """Two roads crossing on different levels, with curved ramps."""
    _green_or_urban(c, rng)
    cx, cy = _centre(c, rng)
    a1 = rng.uniform(0, np.pi)
    r = rng.uniform(10, 18)
    for sx in (-1, 1):
        if rng.random() < 0.7:
            c.paint(ring(c, cx + sx * r, cy + r, r, 2.2) * 0.9, P.CONCRETE)
    road(c, rng, cx, cy, a1, rng.uniform(6, 10), lanes=3)
    a2 = a1 + np.pi / 2 + rng.uniform(-0.5, 0.5)
    w2 = rng.uniform(5, 8)
    c.paint(band(c, cx + 2 * c.sun[0], cy + 2 * c.sun[1], a2, w2) * 0.6, P.SHADOW)
    road(c, rng, cx, cy, a2, w2, lanes=2, surface=P.CONCRETE)
    c.facts += ["two roads crossing on different levels", "curved ramps", "a shadow under the upper deck"]


def intersection(c: Canvas, rng: Rng) -> None:
    """Two streets meeting at grade, crosswalks, cars, buildings in the corners."""
    ground(c, rng, P.PAVEMENT if rng.random() < 0.6 else P.GRASS, amp=0.1, cell=12)
    cx, cy = _centre(c, rng)
    a1 = rng.uniform(0, np.pi)
    a2 = a1 + np.pi / 2 + rng.uniform(-0.25, 0.25)
    w1, w2 = rng.uniform(6, 10), rng.uniform(5, 9)
    houses(c, rng, pitch=rng.uniform(8, 12), size=rng.uniform(5, 8), angle=a1, keep=0.7)
    r1 = road(c, rng, cx, cy, a1, w1, lanes=2)
    r2 = road(c, rng, cx, cy, a2, w2, lanes=2)
    roads = np.maximum(r1, r2)
    box = rect(c, cx, cy, w2 + 8, w1 + 8, a1) * (1 - rect(c, cx, cy, w2 + 2, w1 + 2, a1))
    u, _ = c.rotated(cx, cy, a1)
    c.paint(box * roads * (np.sin(u * 2.6) > 0.2) * 0.9, P.MARKING)
    cars(c, rng, region=roads, angle=a1, density=rng.uniform(0.1, 0.3))
    c.facts += [
        "two streets meeting at a crossing",
        "striped crosswalks",
        "a few cars",
        "buildings at the corners",
    ]


def freeway(c: Canvas, rng: Rng) -> None:
    """A wide divided multi-lane road with traffic."""
    _green_or_urban(c, rng)
    cx, cy = _centre(c, rng)
    ang, lane = rng.uniform(0, np.pi), rng.uniform(6, 9)
    wig = rng.uniform(0, 4)
    trees(c, rng, density=rng.uniform(0.1, 0.5), layers=1)
    for s in (-1.0, 1.0):
        ox, oy = -np.sin(ang) * s * (lane / 2 + 1.2), np.cos(ang) * s * (lane / 2 + 1.2)
        cov = road(c, rng, cx + ox, cy + oy, ang, lane, wiggle=wig, period=200, lanes=3, shoulder=P.CONCRETE)
        cars(
            c,
            rng,
            region=cov,
            angle=ang + np.pi / 2,
            density=rng.uniform(0.1, 0.4),
            pitch_u=lane / 3,
            pitch_v=4.0,
            origin=(cx + ox, cy + oy),
        )
    c.facts += ["a wide divided road with many lanes", "vehicles in both directions", "a narrow median"]


def roundabout(c: Canvas, rng: Rng) -> None:
    """A ring road around a green island with radiating roads."""
    _green_or_urban(c, rng)
    cx, cy = _centre(c, rng, 0.08)
    r = rng.uniform(7, 13)
    a0 = rng.uniform(0, np.pi)
    for k in range(int(rng.integers(3, 5))):
        ang = a0 + k * np.pi / 2 + rng.uniform(-0.2, 0.2)
        u, v = c.rotated(cx, cy, ang)
        c.paint(coverage(np.abs(v) - 2.5) * (u > 0), P.ASPHALT)
    c.paint(disk(c, cx, cy, r + 2.5), P.ASPHALT)
    c.paint(disk(c, cx, cy, r - 2.5), jitter_color(rng, P.LAWN))
    c.paint(ring(c, cx, cy, r, 0.5) * 0.7, P.MARKING)
    c.facts += ["a ring-shaped road around a green centre", "roads radiating outward"]


def railway(c: Canvas, rng: Rng) -> None:
    """Parallel tracks (rails and sleepers) on a gravel bed."""
    _green_or_urban(c, rng)
    cx, cy = _centre(c, rng)
    ang = rng.uniform(0, np.pi)
    n = int(rng.integers(1, 4))
    gauge, spacing = 1.6, rng.uniform(4.5, 6.0)
    wig = rng.uniform(0, 3)
    c.paint(band(c, cx, cy, ang, n * spacing + 3, wig, 200), jitter_color(rng, P.GRAVEL))
    u, v = c.rotated(cx, cy, ang)
    centre = wig * np.sin(2 * np.pi * u / 200)
    sleepers = (np.sin(2 * np.pi * u / 1.6) > 0.2).astype(np.float32)
    for k in range(n):
        off = (k - (n - 1) / 2) * spacing
        d = np.abs(v - centre - off)
        c.paint(coverage(d - gauge) * sleepers * 0.7, P.SLEEPER)
        c.paint(coverage(np.abs(d - gauge / 2) - 0.3), P.RAIL)
    c.facts += ["parallel thin dark lines on a gravel bed", "closely spaced cross ties"]


def runway(c: Canvas, rng: Rng) -> None:
    """A very wide pale strip with centre dashes and threshold bars, in grass."""
    ground(c, rng, P.GRASS if rng.random() < 0.6 else P.DRY_GRASS, amp=0.08, cell=18)
    cx, cy = _centre(c, rng)
    ang, w = rng.uniform(0, np.pi), rng.uniform(10, 16)
    if rng.random() < 0.6:
        ox, oy = -np.sin(ang) * (w + 6), np.cos(ang) * (w + 6)
        road(c, rng, cx + ox, cy + oy, ang, 3.0, lanes=1, surface=P.ASPHALT)
    c.paint(band(c, cx, cy, ang, w), jitter_color(rng, P.CONCRETE))
    u, v = c.rotated(cx, cy, ang)
    c.paint(coverage(np.abs(v) - 0.4) * (np.sin(2 * np.pi * u / 9) > 0.3) * 0.9, P.MARKING)
    end = rng.uniform(-c.size / 2, c.size / 2)
    bars = coverage(np.abs(v) - w / 2 + 1.5) * (np.sin(v * 2.2) > 0) * (np.abs(u - end) < 4)
    c.paint(bars * 0.9, P.MARKING)
    c.facts += ["a long wide pale strip", "a dashed white centre line", "grass on both sides"]


def _plane(c: Canvas, cx: float, cy: float, ang: float, length: float) -> np.ndarray:
    """Coverage of an aircraft silhouette: fuselage, swept wings and tail."""
    ca, sa = np.cos(ang), np.sin(ang)
    cov = rect(c, cx, cy, length, length * 0.13, ang)
    for side in (-1, 1):
        wx = cx + ca * length * 0.02 - sa * side * length * 0.22
        wy = cy + sa * length * 0.02 + ca * side * length * 0.22
        cov = np.maximum(cov, rect(c, wx, wy, length * 0.16, length * 0.48, ang - side * 0.5))
        tx = cx - ca * length * 0.42 - sa * side * length * 0.09
        ty = cy - sa * length * 0.42 + ca * side * length * 0.09
        cov = np.maximum(cov, rect(c, tx, ty, length * 0.08, length * 0.2, ang - side * 0.4))
    return cov


def airplane(c: Canvas, rng: Rng) -> None:
    """One to three winged aircraft parked on an apron."""
    ground(c, rng, P.CONCRETE if rng.random() < 0.6 else P.PAVEMENT, amp=0.06, cell=20)
    if rng.random() < 0.5:
        u, _ = c.rotated(0.0, 0.0, rng.uniform(0, np.pi))
        c.paint(coverage(np.abs(np.mod(u, 22) - 11) - 0.3) * 0.6, (0.85, 0.78, 0.3))
    n = int(rng.integers(1, 4))
    for _ in range(n):
        x, y = _centre(c, rng, 0.25 if n > 1 else 0.1)
        ang, length = rng.uniform(0, 2 * np.pi), rng.uniform(14, 26) / (1 + 0.25 * (n - 1))
        c.paint(_plane(c, x + 1.5 * c.sun[0], y + 1.5 * c.sun[1], ang, length) * 0.5, P.SHADOW)
        c.paint(_plane(c, x, y, ang, length), jitter_color(rng, P.WHITE_METAL, 0.04))
    c.facts += ["white cross-shaped objects with wide wings", "flat grey pavement around them"]


def parking_lot(c: Canvas, rng: Rng) -> None:
    """Asphalt with painted bays and rows of parked cars."""
    _green_or_urban(c, rng)
    cx, cy = _centre(c, rng, 0.1)
    ang = rng.uniform(0, np.pi)
    lot = rect(c, cx, cy, c.size * rng.uniform(0.8, 1.3), c.size * rng.uniform(0.7, 1.3), ang)
    c.paint(lot, jitter_color(rng, P.ASPHALT, 0.1))
    u, v = c.rotated(cx, cy, ang)
    bays = coverage(np.abs(np.mod(u, 3.4) - 1.7) - 1.45) * (np.mod(v, 9) < 6.0)
    c.paint(bays * lot * 0.5, P.MARKING)
    bays_mask = lot * (np.mod(v, 9) < 6.0)
    cars(
        c,
        rng,
        region=bays_mask,
        angle=ang,
        density=rng.uniform(0.45, 0.95),
        pitch_u=3.4,
        pitch_v=3.0,
        origin=(cx, cy),
    )
    c.facts += ["rows of small colourful vehicles", "grey pavement with painted lines"]
