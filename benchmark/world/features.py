"""Composite features shared by scene recipes: ground cover, trees, roads, houses, cars, water.

Each helper paints onto a :class:`Canvas` and returns the coverage it used, so a recipe can keep later
layers off it (no houses on the road). Helpers do not write caption facts; recipes do, because the same
feature is described differently depending on its role in the scene.
"""

from __future__ import annotations

import numpy as np

from benchmark.world import palette as P
from benchmark.world.primitives import (
    Canvas,
    Color,
    band,
    coverage,
    grid_field,
    jitter_color,
    make_tables,
    pick_colors,
    textured,
)

#: Typical sizes in pixels at ground-sample scale 1 (one canvas pixel).
HOUSE = 4.5
CAR_LEN, CAR_WID = 2.6, 1.4
CROWN = 3.0
SHADOW_STRENGTH = 0.55


def ground(
    c: Canvas,
    rng: np.random.Generator,
    base: Color,
    *,
    amp: float = 0.12,
    cell: float = 14.0,
    tint: Color | None = None,
) -> None:
    """Fill the whole canvas with a noisy land-cover texture."""
    c.img[:] = textured(rng, c.size, jitter_color(rng, base), amp, cell * rng.uniform(0.7, 1.4), 2, tint)


def trees(
    c: Canvas,
    rng: np.random.Generator,
    *,
    density: float,
    crown: float = CROWN,
    mask: np.ndarray | None = None,
    color: Color = P.TREE,
    layers: int = 2,
) -> np.ndarray:
    """Scatter round tree crowns with shadows; ``density`` in [0, 1] is the share of occupied cells."""
    total = np.zeros((c.size, c.size), np.float32)
    for _ in range(layers):
        angle = rng.uniform(0, np.pi)
        pitch = crown * rng.uniform(1.3, 1.8)
        origin = (rng.uniform(0, pitch), rng.uniform(0, pitch))
        tables = make_tables(rng)
        kw = dict(
            pitch_u=pitch,
            pitch_v=pitch,
            size_u=crown,
            size_v=crown,
            angle=angle,
            keep=density,
            jitter=1.0,
            size_jitter=0.35,
            disk_shape=True,
            origin=origin,
            seed_tables=tables,
        )
        shadow = grid_field(c, rng, shift=c.sun, **kw).cov
        crowns = grid_field(c, rng, **kw)
        if mask is not None:
            shadow, cov = shadow * mask, crowns.cov * mask
        else:
            cov = crowns.cov
        c.paint(shadow * SHADOW_STRENGTH, P.SHADOW)
        col = pick_colors(tables, crowns.cell, [jitter_color(rng, color, 0.1)], shade=0.25)
        c.paint(cov, col)
        total = np.maximum(total, cov)
    return total


def road(
    c: Canvas,
    rng: np.random.Generator,
    cx: float,
    cy: float,
    angle: float,
    width: float,
    *,
    wiggle: float = 0.0,
    period: float = 80.0,
    lanes: int = 2,
    surface: Color = P.ASPHALT,
    dashed: bool = True,
    shoulder: Color | None = None,
) -> np.ndarray:
    """A road band with optional shoulders and lane markings; returns its coverage."""
    phase = rng.uniform(0, 2 * np.pi)
    if shoulder is not None:
        c.paint(band(c, cx, cy, angle, width + 2.5, wiggle, period, phase), shoulder)
    cov = band(c, cx, cy, angle, width, wiggle, period, phase)
    c.paint(cov, jitter_color(rng, surface, 0.08))
    if lanes > 1 and width >= 4:
        u, v = c.rotated(cx, cy, angle)
        centre = wiggle * np.sin(2 * np.pi * u / period + phase) if wiggle else 0.0
        dash = (np.sin(2 * np.pi * u / rng.uniform(5, 8)) > (0.0 if dashed else -2.0)).astype(np.float32)
        for k in range(1, lanes):
            off = -width / 2 + k * width / lanes
            line = coverage(np.abs(v - centre - off) - 0.3)
            c.paint(line * dash * 0.8, P.MARKING)
    return cov


def houses(
    c: Canvas,
    rng: np.random.Generator,
    *,
    pitch: float,
    size: float,
    angle: float,
    keep: float,
    mask: np.ndarray | None = None,
    palette: list[Color] | None = None,
    aspect: float = 1.0,
    jitter: float = 0.6,
    size_jitter: float = 0.3,
) -> np.ndarray:
    """Rectangular roofs on a lattice, with shadows and a lit/shaded roof split; returns coverage."""
    tables = make_tables(rng)
    origin = (rng.uniform(0, pitch), rng.uniform(0, pitch))
    kw = dict(
        pitch_u=pitch * aspect,
        pitch_v=pitch,
        size_u=size * aspect,
        size_v=size,
        angle=angle,
        keep=keep,
        jitter=jitter,
        size_jitter=size_jitter,
        origin=origin,
        seed_tables=tables,
    )
    shadow = grid_field(c, rng, shift=c.sun, **kw).cov
    roofs = grid_field(c, rng, **kw)
    cov = roofs.cov if mask is None else roofs.cov * mask
    if mask is not None:
        shadow = shadow * mask
    c.paint(shadow * SHADOW_STRENGTH, P.SHADOW)
    col = pick_colors(tables, roofs.cell, palette or P.ROOFS, shade=0.15)
    # A ridge line: half of each roof is a little darker, as a pitched roof under oblique sun.
    u, _ = c.rotated(0.0, 0.0, angle + np.pi / 2)
    ridge = (np.sin(u * np.pi / pitch) > 0).astype(np.float32) * 0.12
    c.paint(cov, col * (1 - ridge[..., None]))
    return cov


def cars(
    c: Canvas,
    rng: np.random.Generator,
    *,
    region: np.ndarray,
    angle: float,
    density: float,
    pitch_u: float = 3.4,
    pitch_v: float = 5.0,
    origin: tuple[float, float] | None = None,
) -> np.ndarray:
    """Small cars in rows inside ``region`` (a coverage map); returns their coverage.

    Cars lie across ``angle`` (their length along v); ``origin`` aligns the rows with painted bays.
    """
    tables = make_tables(rng)
    if origin is None:
        origin = (rng.uniform(0, pitch_u), rng.uniform(0, pitch_v))
    f = grid_field(
        c,
        rng,
        pitch_u=pitch_u,
        pitch_v=pitch_v,
        size_u=CAR_WID,
        size_v=CAR_LEN,
        angle=angle,
        keep=density,
        jitter=0.5,
        size_jitter=0.15,
        origin=origin,
        seed_tables=tables,
    )
    cov = f.cov * (region > 0.9)
    c.paint(cov, pick_colors(tables, f.cell, P.CAR_COLORS, shade=0.1))
    return cov


def water(
    c: Canvas,
    rng: np.random.Generator,
    cov: np.ndarray,
    *,
    color: Color = P.WATER,
    edge: Color | None = P.SHALLOW,
) -> None:
    """Paint a water body: textured water, darker in the middle, with a lighter shallow rim."""
    tex = textured(rng, c.size, jitter_color(rng, color, 0.1), 0.08, 10.0, 2)
    if edge is not None:
        c.paint(cov, jitter_color(rng, edge, 0.08))
        inner = np.clip((cov - 0.999) * 1000, 0, 1) if cov.max() > 0 else cov
        c.paint(erode(inner, 2) * 0.95, tex)
    else:
        c.paint(cov, tex)


def erode(cov: np.ndarray, steps: int) -> np.ndarray:
    """Cheap morphological erosion by shifting (shallow rims, field margins)."""
    out = cov.copy()
    for _ in range(steps):
        out[1:, :] = np.minimum(out[1:, :], out[:-1, :])
        out[:-1, :] = np.minimum(out[:-1, :], out[1:, :])
        out[:, 1:] = np.minimum(out[:, 1:], out[:, :-1])
        out[:, :-1] = np.minimum(out[:, :-1], out[:, 1:])
    return out
