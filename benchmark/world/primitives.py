"""Drawing primitives of the embedded RS world: textures, soft shapes and gridded object fields.

Every scene recipe (``scenes_*.py``) is a composition of these functions, so classes share their building
blocks (roads, water, roofs, crowns) and differ in layout and proportion, as real scene classes do. All
shapes are signed-distance fields turned into soft coverage, which anti-aliases edges for free. Objects
that come in large numbers (houses, cars, crowns, panels) are drawn as *gridded fields*: one vectorised pass
over the canvas in rotated coordinates with per-cell random properties, so their cost does not grow with
their count. Only numpy; every random number comes from the caller's ``numpy.random.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

Color = tuple[float, float, float]

#: Size of the per-image random property tables that gridded fields index by cell (cells wrap modulo it).
CELL_TABLE = 64


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates of a square canvas, cached because every primitive needs them."""
    ax = np.arange(size, dtype=np.float32) + 0.5
    yy, xx = np.meshgrid(ax, ax, indexing="ij")
    yy.setflags(write=False)
    xx.setflags(write=False)
    return xx, yy


@dataclass
class Canvas:
    """A float RGB image in [0, 1] plus the visible facts a caption will mention.

    Attributes:
        size: Side length in pixels (the sensor's ground-sample scale decides it).
        img: ``[size, size, 3]`` float32 pixels.
        facts: Short phrases describing what was drawn, in drawing order (never the class name).
        sun: Shadow offset in pixels (the sun direction of this scene).
    """

    size: int
    img: np.ndarray = field(init=False)
    facts: list[str] = field(default_factory=list)
    sun: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self) -> None:
        self.img = np.zeros((self.size, self.size, 3), np.float32)

    @property
    def xy(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre x and y coordinate arrays."""
        return _grid(self.size)

    def rotated(self, cx: float, cy: float, angle: float) -> tuple[np.ndarray, np.ndarray]:
        """Coordinates (u along ``angle``, v across it) relative to the point (cx, cy)."""
        xx, yy = self.xy
        dx, dy = xx - cx, yy - cy
        ca, sa = np.float32(np.cos(angle)), np.float32(np.sin(angle))
        return dx * ca + dy * sa, -dx * sa + dy * ca

    def paint(self, cov: np.ndarray, color: Color | np.ndarray) -> None:
        """Alpha-blend ``color`` (RGB or per-pixel RGB) where coverage ``cov`` in [0, 1] is positive."""
        a = cov[..., None]
        self.img += a * (np.asarray(color, np.float32) - self.img)


def coverage(sdf: np.ndarray, soft: float = 1.0) -> np.ndarray:
    """Soft coverage of a signed distance field (negative inside), one ``soft`` pixel of anti-aliasing."""
    return np.clip(0.5 - sdf / soft, 0.0, 1.0)


def value_noise(rng: np.random.Generator, size: int, cell: float, octaves: int = 1) -> np.ndarray:
    """Smooth random field in [0, 1]: bilinear value noise with ``octaves`` halvings of ``cell``.

    Why: land cover (grass, sand, canopy) needs low-frequency blotches, and value noise gives them at a cost
    of a few vectorised ops, unlike Perlin noise or filtering white noise.
    """
    out = np.zeros((size, size), np.float32)
    amp, total = 1.0, 0.0
    for _ in range(octaves):
        n = int(np.ceil(size / max(cell, 1.0))) + 2
        g = rng.random((n, n), dtype=np.float32)
        t = (np.arange(size, dtype=np.float32) + 0.5) / max(cell, 1.0)
        i = t.astype(np.int32)
        f = t - i
        f = f * f * (3 - 2 * f)  # smoothstep: no visible grid creases
        rows = g[i] * (1 - f)[:, None] + g[i + 1] * f[:, None]
        out += amp * (rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :])
        total += amp
        amp *= 0.5
        cell /= 2
    return out / total


def textured(
    rng: np.random.Generator,
    size: int,
    base: Color,
    amp: float,
    cell: float,
    octaves: int = 2,
    tint: Color | None = None,
) -> np.ndarray:
    """A land-cover texture: ``base`` colour modulated by noise, optionally blended toward ``tint``."""
    n = value_noise(rng, size, cell, octaves)[..., None] - 0.5
    img = np.asarray(base, np.float32) * (1 + 2 * amp * n)
    if tint is not None:
        m = value_noise(rng, size, cell * 2, 1)[..., None]
        img = img + m * amp * (np.asarray(tint, np.float32) - img)
    return img


def rect_sdf(u: np.ndarray, v: np.ndarray, half_u: float, half_v: float) -> np.ndarray:
    """Signed distance to an axis-aligned (in u, v) rectangle centred at the origin."""
    du, dv = np.abs(u) - half_u, np.abs(v) - half_v
    outside = np.sqrt(np.maximum(du, 0) ** 2 + np.maximum(dv, 0) ** 2)
    return outside + np.minimum(np.maximum(du, dv), 0)


def rect(c: Canvas, cx: float, cy: float, length: float, width: float, angle: float) -> np.ndarray:
    """Coverage of a rotated rectangle (``length`` along ``angle``)."""
    u, v = c.rotated(cx, cy, angle)
    return coverage(rect_sdf(u, v, length / 2, width / 2))


def disk(c: Canvas, cx: float, cy: float, r: float) -> np.ndarray:
    """Coverage of a disk."""
    xx, yy = c.xy
    return coverage(np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) - r)


def ring(
    c: Canvas, cx: float, cy: float, r: float, width: float, aspect: float = 1.0, angle: float = 0.0
) -> np.ndarray:
    """Coverage of an (elliptical, when ``aspect`` != 1) ring of radius ``r`` and thickness ``width``."""
    u, v = c.rotated(cx, cy, angle)
    d = np.sqrt(u**2 + (v * aspect) ** 2)
    return coverage(np.abs(d - r) - width / 2)


def ellipse(c: Canvas, cx: float, cy: float, ru: float, rv: float, angle: float) -> np.ndarray:
    """Coverage of a rotated ellipse (approximate distance, exact enough at these sizes)."""
    u, v = c.rotated(cx, cy, angle)
    k = np.sqrt((u / ru) ** 2 + (v / rv) ** 2)
    return coverage((k - 1) * min(ru, rv))


def band(
    c: Canvas,
    cx: float,
    cy: float,
    angle: float,
    width: float,
    wiggle: float = 0.0,
    period: float = 60.0,
    phase: float = 0.0,
) -> np.ndarray:
    """Coverage of an infinite band through (cx, cy), straight or sinusoidally meandering.

    Why: rivers, roads, railways, runways and shorelines are all bands that differ in width, wiggle and
    surface, which makes look-alikes (a canal-like road vs a river) come for free.
    """
    u, v = c.rotated(cx, cy, angle)
    centre = wiggle * np.sin(2 * np.pi * u / period + phase) if wiggle else 0.0
    return coverage(np.abs(v - centre) - width / 2)


def half_plane(
    c: Canvas,
    cx: float,
    cy: float,
    angle: float,
    wiggle: float = 0.0,
    period: float = 40.0,
    phase: float = 0.0,
) -> np.ndarray:
    """Coverage of the side v > 0 of a (wavy) line through (cx, cy): coastlines, field edges."""
    u, v = c.rotated(cx, cy, angle)
    centre = wiggle * np.sin(2 * np.pi * u / period + phase) if wiggle else 0.0
    return coverage(centre - v)


def blob(c: Canvas, rng: np.random.Generator, cx: float, cy: float, r: float, roughness: float = 0.35) -> np.ndarray:
    """Coverage of an irregular blob (lakes, ponds, bunkers): a disk whose radius is noise-modulated."""
    xx, yy = c.xy
    d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
    n = value_noise(rng, c.size, max(r * 0.8, 2.0), 2) - 0.5
    return coverage(d - r * (1 + 2 * roughness * n))


@dataclass(frozen=True)
class GridField:
    """Result of :func:`grid_field`: coverage of all objects, plus per-pixel object index for colouring."""

    cov: np.ndarray  # [H, W] in [0, 1]
    cell: np.ndarray  # [H, W] int index into the per-image property tables (CELL_TABLE**2 entries)


def grid_field(
    c: Canvas,
    rng: np.random.Generator,
    *,
    pitch_u: float,
    pitch_v: float,
    size_u: float,
    size_v: float,
    angle: float,
    keep: float = 1.0,
    jitter: float = 0.0,
    size_jitter: float = 0.0,
    disk_shape: bool = False,
    origin: tuple[float, float] = (0.0, 0.0),
    shift: tuple[float, float] = (0.0, 0.0),
    seed_tables: dict | None = None,
) -> GridField:
    """Objects on a rotated lattice, each cell with its own jitter, size and presence, in one pass.

    Args:
        c: Canvas whose coordinates are used.
        rng: Source of the per-cell property tables (ignored when ``seed_tables`` is given).
        pitch_u: Lattice spacing along ``angle``.
        pitch_v: Lattice spacing across ``angle``.
        size_u: Object extent along ``angle`` (diameter for disks).
        size_v: Object extent across ``angle``.
        angle: Lattice orientation in radians.
        keep: Probability that a cell holds an object (clutter and gaps).
        jitter: Maximum offset of an object inside its cell, as a fraction of the free space.
        size_jitter: Relative size variation between objects.
        disk_shape: Round objects (crowns, tanks) instead of rectangles (roofs, cars, panels).
        origin: Lattice origin in pixels.
        shift: Extra offset of every object; drawing the same tables shifted gives their shadows.
        seed_tables: Tables from an earlier call, so shadows and highlights line up with their objects.

    Returns:
        The coverage and per-pixel cell index (to look up per-object colours).
    """
    tables = seed_tables if seed_tables is not None else make_tables(rng)
    u, v = c.rotated(origin[0] + shift[0], origin[1] + shift[1], angle)
    iu = np.floor(u / pitch_u).astype(np.int32)
    iv = np.floor(v / pitch_v).astype(np.int32)
    cell = (iu % CELL_TABLE) * CELL_TABLE + (iv % CELL_TABLE)
    scale = 1 + size_jitter * (tables["size"][cell] - 0.5) * 2
    su, sv = size_u * scale / 2, size_v * scale / 2
    free_u = np.maximum(pitch_u / 2 - su, 0)
    free_v = np.maximum(pitch_v / 2 - sv, 0)
    du = u - (iu + 0.5) * pitch_u - jitter * free_u * (tables["ju"][cell] * 2 - 1)
    dv = v - (iv + 0.5) * pitch_v - jitter * free_v * (tables["jv"][cell] * 2 - 1)
    if disk_shape:
        sdf = np.sqrt(du**2 + dv**2) - su
    else:
        sdf = rect_sdf(du, dv, su, sv)
    cov = coverage(sdf) * (tables["keep"][cell] < keep)
    return GridField(cov=cov.astype(np.float32), cell=cell)


def make_tables(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-cell uniform random properties for :func:`grid_field` (shared between object and shadow)."""
    n = CELL_TABLE * CELL_TABLE
    return {k: rng.random(n, dtype=np.float32) for k in ("size", "ju", "jv", "keep", "color")}


def pick_colors(
    tables: dict[str, np.ndarray], cell: np.ndarray, palette: list[Color], shade: float = 0.0
) -> np.ndarray:
    """Per-pixel colours: each object takes one palette entry (and a brightness wobble ``shade``)."""
    pal = np.asarray(palette, np.float32)
    r = tables["color"][cell]
    idx = np.minimum((r * len(pal)).astype(np.int32), len(pal) - 1)
    col = pal[idx]
    if shade:
        wobble = 1 + shade * (np.modf(r * 97.0)[0] - 0.5) * 2
        col = col * wobble[..., None]
    return col


def jitter_color(rng: np.random.Generator, color: Color, amount: float = 0.06) -> Color:
    """A colour with small independent per-channel variation, so no two scenes share an exact tone."""
    c = np.clip(np.asarray(color) * (1 + rng.uniform(-amount, amount, 3)), 0, 1)
    return (float(c[0]), float(c[1]), float(c[2]))
