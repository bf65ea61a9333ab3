"""Follicles and hair strands: where hairs grow, how they run, how they are drawn.

Hairs grow in follicular units of 1-3 shafts from one opening. Each shaft is a polyline
that starts at its follicle, follows the image's growth direction with its own curvature,
and is drawn as a shaded cylinder (darker rim, body, an off-centre specular streak) of an
exact, real-valued width: a pixel belongs to the shaft when its centre lies within half the
width of the polyline, and its edge is anti-aliased by that same distance. Drawing also
writes an instance map, so the count of visible strands and each one's width are exact
even where hairs cross.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from datasets.synth.fields import Shape

#: Shaft colours (RGB 0-1) as the scope shows them; grey hairs mix into any of them.
HAIR_COLOURS: dict[str, tuple[float, float, float]] = {
    "black": (0.09, 0.095, 0.11),
    "brown": (0.25, 0.18, 0.13),
    "blond": (0.66, 0.56, 0.38),
    "grey": (0.64, 0.65, 0.66),
}
#: Hairs per follicular unit, with their chances (normal scalp: mostly 2-hair units).
UNIT_SIZES, UNIT_SIZE_P = (1, 2, 3), (0.3, 0.5, 0.2)
#: Shaft widths at 640 px wide frames (real-valued), and the rendering step along a strand.
MIN_WIDTH_PX, MAX_WIDTH_PX = 2.0, 12.0
STEP_PX = 10.0
#: cv2 drawing takes fixed-point coordinates: 4 fractional bits give sub-pixel placement.
_SHIFT = 4
#: Segments either side of the one a pixel was drawn by that are searched for its nearest point.
_NEIGHBOURS = 2


@dataclass(frozen=True)
class HairStyle:
    """A subject's hair: colour, shaft width, length, waviness and follicle density."""

    colour: str
    grey_fraction: float
    width_px: float  # mean shaft width at 640 px
    length_px: float  # mean visible shaft length at 640 px
    curl: float  # spread of curvature, radians per pixel
    units_per_cm2: float  # follicular units per cm2 of scalp

    @classmethod
    def sample(cls, rng: np.random.Generator) -> HairStyle:
        colour = str(rng.choice(["black", "black", "brown", "brown", "blond", "grey"]))
        return cls(
            colour=colour,
            grey_fraction=float(rng.choice([0.0, 0.0, 0.05, 0.2])) if colour != "grey" else 1.0,
            width_px=float(rng.uniform(5.0, 10.0)),
            length_px=float(rng.uniform(200, 420)),
            curl=float(rng.uniform(0.0003, 0.0025)),
            units_per_cm2=float(rng.uniform(55, 120)),
        )


@dataclass(frozen=True)
class ShaftShading:
    """How light falls across one shaft, by the signed distance from its axis in half-widths
    (-1 at one edge, +1 at the other).

    Under a scope's ring light a shaft is a glossy cylinder: its rim is darker (``rim``: the
    share lost at the edge; grey and blond hairs look like tubes with dark outlines), and the
    light's reflection runs along it as a bright streak at ``streak_at`` with width
    ``streak_spread`` and strength ``gloss``. A wide, strong streak makes one shaft look like
    two dark lines: the look the hair meter must not count twice.
    """

    rim: float = 0.3
    streak_at: float = -0.45
    streak_spread: float = 0.22
    gloss: float = 0.3

    @classmethod
    def sample(cls, rng: np.random.Generator, glossy: bool) -> ShaftShading:
        return cls(
            rim=float(rng.uniform(0.1, 0.65)),
            streak_at=float(rng.uniform(-0.6, 0.6)),
            streak_spread=float(rng.uniform(0.12, 0.45)),
            gloss=float(min(0.9, (0.6 if glossy else 0.3) * rng.uniform(0.3, 1.8))),
        )


@dataclass
class Strand:
    """One hair shaft: polyline from the root outwards, in frame pixels."""

    points: np.ndarray  # N x 2 float32 (x, y), points[0] is the follicle
    width: float  # px across, exact: the drawn shaft is this wide
    rgb: tuple[float, float, float]
    in_thinning_patch: bool = False
    glossy: bool = False
    defocused: bool = False  # lifted off the skin, nearer the lens: drawn last and blurred
    shading: ShaftShading = field(default_factory=ShaftShading)


@dataclass
class HairLayer:
    """Drawn hairs, ready to lay over skin."""

    rgb: np.ndarray  # H x W x 3 float32, premultiplied by alpha
    alpha: np.ndarray  # H x W float32, coverage 0-1
    ids: np.ndarray  # H x W int32: 1 + index of the topmost strand, 0 where no hair


def place_follicles(
    rng: np.random.Generator, shape: Shape, margin: int, per_px: float, count: int, inside: np.ndarray | None
) -> np.ndarray:
    """``count`` follicle openings (x, y) spread evenly over a frame padded by ``margin``.

    ``inside`` (padded-frame bool mask) limits them to an area; an even spread (no two
    closer than half the mean spacing) looks like scalp, where pure random points clump.
    """
    height, width = shape
    min_gap2 = (0.5 / np.sqrt(per_px)) ** 2
    chosen: list[np.ndarray] = []
    for _ in range(40):  # batches of candidates; a crowded area falls back to fewer gaps
        if len(chosen) >= count:
            break
        batch = rng.uniform((-margin, -margin), (width + margin, height + margin), size=(4 * count + 8, 2))
        if inside is not None:
            cols = np.clip(batch[:, 0] + margin, 0, inside.shape[1] - 1).astype(int)
            rows = np.clip(batch[:, 1] + margin, 0, inside.shape[0] - 1).astype(int)
            batch = batch[inside[rows, cols]]
        for point in batch:
            if len(chosen) >= count:
                break
            if chosen and (((np.asarray(chosen) - point) ** 2).sum(axis=1) < min_gap2).any():
                continue
            chosen.append(point)
        min_gap2 *= 0.7
    return np.asarray(chosen, np.float32).reshape(-1, 2)


def grow_strand(
    rng: np.random.Generator,
    root: np.ndarray,
    angle: float,
    length: float,
    curvature: float,
    scale: float,
    attractor: np.ndarray | None = None,
) -> np.ndarray:
    """Polyline of a shaft: constant curvature plus a little wander.

    An ``attractor`` (x, y) bends the shaft towards it until reached, then the shaft runs on
    in that direction: greasy hairs stuck together in a clump.
    """
    step = STEP_PX * scale
    n = max(2, int(length / step) + 1)
    wander = np.cumsum(rng.normal(0.0, 0.015, n - 1))
    if attractor is None:
        headings = angle + curvature * step * np.arange(1, n) + wander
    else:
        headings = np.empty(n - 1)
        x, y, heading = float(root[0]), float(root[1]), angle
        target: tuple[float, float] | None = (float(attractor[0]), float(attractor[1]))
        for i in range(n - 1):
            if target is not None and math.hypot(target[0] - x, target[1] - y) < 2 * step:
                target = None
            if target is not None:
                desired = math.atan2(target[1] - y, target[0] - x)
                # Turn a third of the way towards the clump each step (wrapped to -pi..pi).
                heading += 0.3 * math.remainder(desired - heading, 2 * math.pi)
            headings[i] = heading + wander[i]
            x, y = x + step * math.cos(headings[i]), y + step * math.sin(headings[i])
    steps = step * np.stack([np.cos(headings), np.sin(headings)], axis=1)
    points = np.concatenate([np.asarray(root, np.float64)[None], root + np.cumsum(steps, axis=0)])
    return points.astype(np.float32)


def draw_hairs(strands: list[Strand], shape: Shape, blur_sigma: float) -> HairLayer:
    """Rasterize strands in order (later ones on top), each as a shaded cylinder.

    Defocused strands go on top of all others, blurred more: they float nearer the lens.
    """
    height, width = shape
    ids = np.zeros(shape, np.int32)
    in_frame = [i for i, strand in enumerate(strands) if _touches_frame(strand, width, height)]
    near = [i for i in in_frame if not strands[i].defocused]
    far = [i for i in in_frame if strands[i].defocused]
    everywhere = (slice(0, height), slice(0, width))
    rgb, alpha = _render(strands, near, ids, everywhere, blur_sigma)
    if far:
        sigma = 4.0 * blur_sigma + 1.0
        window = _reach(strands, far, shape, pad=int(3 * sigma) + 1)
        top_rgb, top_alpha = _render(strands, far, ids, window, sigma)
        below = rgb[window]
        below *= (1.0 - top_alpha)[:, :, None]
        below += top_rgb
        alpha[window] = top_alpha + alpha[window] * (1.0 - top_alpha)
    return HairLayer(rgb=rgb, alpha=alpha, ids=ids)


def _render(
    strands: list[Strand], indices: list[int], ids: np.ndarray, window: tuple[slice, slice], sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Draw some strands (ids too) and return their blurred colour and coverage in ``window``.

    Colour is drawn over black, so it comes out premultiplied by coverage: blurring both
    alike keeps shaft edges consistent, and compositing is ``skin * (1 - alpha) + rgb``.
    """
    colour = np.zeros(ids.shape + (3,), np.float32)
    coverage = np.zeros(ids.shape, np.float32)
    for index in indices:
        _draw_strand(strands[index], index + 1, colour, coverage, ids)
    rgb = cv2.GaussianBlur(colour[window], (0, 0), sigma)
    alpha = cv2.GaussianBlur(coverage[window], (0, 0), sigma)
    return rgb, alpha


def _reach(strands: list[Strand], indices: list[int], shape: Shape, pad: int) -> tuple[slice, slice]:
    """The frame window holding the given strands, grown by their width and ``pad``."""
    low = np.min([strands[i].points.min(axis=0) - strands[i].width for i in indices], axis=0) - pad
    high = np.max([strands[i].points.max(axis=0) + strands[i].width for i in indices], axis=0) + pad
    x1, y1 = max(0, int(low[0])), max(0, int(low[1]))
    x2, y2 = min(shape[1], int(high[0]) + 1), min(shape[0], int(high[1]) + 1)
    return slice(y1, y2), slice(x1, x2)


def _touches_frame(strand: Strand, width: int, height: int) -> bool:
    low, high = strand.points.min(axis=0) - strand.width, strand.points.max(axis=0) + strand.width
    return not (high[0] < 0 or high[1] < 0 or low[0] >= width or low[1] >= height)


def strand_pixels(points: np.ndarray, reach: float, shape: Shape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels whose centre lies within ``reach`` of a polyline, and their signed distance to it.

    Returns (rows, cols, signed distance in px); the sign says on which side of the polyline
    (by its direction) a pixel lies. Caps are round. Pixel (r, c) has its centre at x=c, y=r.
    """
    height, width = shape
    low = np.floor(points.min(axis=0) - reach).astype(int)
    high = np.ceil(points.max(axis=0) + reach).astype(int)
    x0, y0 = max(0, low[0]), max(0, low[1])
    x1, y1 = min(width - 1, high[0]), min(height - 1, high[1])
    empty = np.zeros(0, np.int64)
    if x1 < x0 or y1 < y0:
        return empty, empty, np.zeros(0, np.float32)
    # Candidates: each segment drawn thicker than the reach, labelled with its index; exact
    # distances are then taken to that segment and its neighbours (where the nearest one is).
    labels = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.int32)
    fixed = np.round((points - (x0, y0)) * (1 << _SHIFT)).astype(np.int32)
    thickness = int(2 * math.ceil(reach) + 3)
    for index in range(len(points) - 1):
        cv2.line(labels, tuple(fixed[index]), tuple(fixed[index + 1]), index + 1, thickness, cv2.LINE_8, _SHIFT)
    rows, cols = np.nonzero(labels)
    if not len(rows):
        return empty, empty, np.zeros(0, np.float32)
    near = labels[rows, cols] - 1
    rows, cols = rows + y0, cols + x0
    centres = np.stack([cols, rows], axis=1).astype(np.float32)
    start, along = points[:-1].astype(np.float32), np.diff(points, axis=0).astype(np.float32)
    length2 = np.maximum((along * along).sum(axis=1), 1e-9)
    segments = np.clip(near[:, None] + np.arange(-_NEIGHBOURS, _NEIGHBOURS + 1)[None], 0, len(along) - 1)  # N x K
    offset = centres[:, None, :] - start[segments]  # N x K x 2
    t = np.clip((offset * along[segments]).sum(axis=2) / length2[segments], 0.0, 1.0)
    gap = offset - t[:, :, None] * along[segments]
    distance2 = (gap * gap).sum(axis=2)
    best = distance2.argmin(axis=1)
    pick = np.arange(len(rows))
    nearest = segments[pick, best]
    distance = np.sqrt(distance2[pick, best])
    side = along[nearest, 0] * offset[pick, best, 1] - along[nearest, 1] * offset[pick, best, 0]
    signed = np.where(side < 0, -distance, distance).astype(np.float32)
    keep = distance <= reach
    return rows[keep], cols[keep], signed[keep]


def _draw_strand(strand: Strand, hair_id: int, colour: np.ndarray, coverage: np.ndarray, ids: np.ndarray) -> None:
    """Lay one shaft over what is drawn: a cylinder of exactly ``strand.width`` px.

    Coverage falls from 1 to 0 over the pixel at the shaft's edge (anti-aliasing by the exact
    distance); the instance map takes the pixels whose centre is inside the shaft.
    """
    half = 0.5 * float(strand.width)
    rows, cols, signed = strand_pixels(strand.points, half + 0.5, ids.shape)
    if not len(rows):
        return
    alpha = np.clip(half + 0.5 - np.abs(signed), 0.0, 1.0)[:, None]
    across = np.clip(signed / half, -1.0, 1.0)  # -1..1 from one edge to the other
    light = strand.shading
    body = np.asarray(strand.rgb, np.float32)[None] * (1.0 - light.rim * across[:, None] ** 4)
    gloss = light.gloss * np.exp(-(((across - light.streak_at) / light.streak_spread) ** 2))
    shade = body + (1.0 - body) * gloss[:, None]
    colour[rows, cols] = colour[rows, cols] * (1.0 - alpha) + alpha * shade
    coverage[rows, cols] = alpha[:, 0] + coverage[rows, cols] * (1.0 - alpha[:, 0])
    inside = np.abs(signed) <= half
    ids[rows[inside], cols[inside]] = hair_id


def visible_strands(layer: HairLayer) -> np.ndarray:
    """Indices of strands with at least one pixel on top in the frame (sorted)."""
    return np.flatnonzero(np.bincount(layer.ids.ravel())[1:])
