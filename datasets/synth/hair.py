"""Follicles and hair strands: where hairs grow, how they run, how they are drawn.

Hairs grow in follicular units of 1-3 shafts from one opening. Each shaft is a polyline
that starts at its follicle, follows the image's growth direction with its own curvature,
and is drawn as a shaded cylinder (dark rim, body, specular streak). Drawing also writes an
instance map, so the count of visible strands is exact even where hairs cross.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

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
#: Shaft widths at 640 px wide frames, and the rendering step along a strand.
MIN_WIDTH_PX, MAX_WIDTH_PX = 2, 12
STEP_PX = 10.0
#: cv2 drawing takes fixed-point coordinates: 4 fractional bits give sub-pixel placement.
_SHIFT = 4


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


@dataclass
class Strand:
    """One hair shaft: polyline from the root outwards, in frame pixels."""

    points: np.ndarray  # N x 2 float32 (x, y), points[0] is the follicle
    width: int
    rgb: tuple[float, float, float]
    in_thinning_patch: bool = False
    glossy: bool = False
    defocused: bool = False  # lifted off the skin, nearer the lens: drawn last and blurred


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
    colour = np.zeros(ids.shape + (3,), np.uint8)
    coverage = np.zeros(ids.shape, np.uint8)
    for index in indices:
        _draw_strand(strands[index], index + 1, colour, coverage, ids)
    # Blurring 8-bit data is 2-3x faster than float; the rounding is far below the grain.
    rgb = cv2.GaussianBlur(colour[window], (0, 0), sigma).astype(np.float32) * np.float32(1 / 255)
    alpha = cv2.GaussianBlur(coverage[window], (0, 0), sigma).astype(np.float32) * np.float32(1 / 255)
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


@functools.cache
def drawn_width(thickness: int) -> int:
    """Pixels across a straight OpenCV polyline drawn with ``thickness``: OpenCV draws a
    thickness ``t`` line ``t + 1`` (even ``t``) or ``t + 2`` (odd ``t``) pixels wide, so the
    truth records this measured width, not the nominal thickness."""
    canvas = np.zeros((4 * thickness + 16, 32), np.uint8)
    y = canvas.shape[0] // 2
    points = np.array([[[0, y << _SHIFT]], [[31 << _SHIFT, y << _SHIFT]]], np.int32)
    cv2.polylines(canvas, [points], False, 1, int(thickness), cv2.LINE_8, _SHIFT)
    return int(canvas[:, 16].sum())


def _draw_strand(strand: Strand, hair_id: int, colour: np.ndarray, coverage: np.ndarray, ids: np.ndarray) -> None:
    pts = np.round(strand.points * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)
    r, g, b = strand.rgb
    w = strand.width
    # A hair is a glossy cylinder: slightly darker rim, body, a thin specular streak off-centre.
    cv2.polylines(colour, [pts], False, _u8(0.75 * r, 0.75 * g, 0.75 * b), w, cv2.LINE_AA, _SHIFT)
    cv2.polylines(coverage, [pts], False, 255, w, cv2.LINE_AA, _SHIFT)
    cv2.polylines(ids, [pts], False, hair_id, w, cv2.LINE_8, _SHIFT)
    # Inside the silhouette plain 8-connected lines do (3x cheaper); the layer blur smooths them.
    if w >= 7:  # on thinner shafts the rim and the streak meet: no body left to see
        cv2.polylines(colour, [pts], False, _u8(r, g, b), round(w * 0.6), cv2.LINE_8, _SHIFT)
    gloss = 0.6 if strand.glossy else 0.3
    streak = np.round(_offset(strand.points, -0.22 * w) * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)
    shine = _u8(r + (1 - r) * gloss, g + (1 - g) * gloss, b + (1 - b) * gloss)
    cv2.polylines(colour, [streak], False, shine, max(1, round(w * 0.18)), cv2.LINE_8, _SHIFT)


def visible_strands(layer: HairLayer) -> np.ndarray:
    """Indices of strands with at least one pixel on top in the frame (sorted)."""
    return np.flatnonzero(np.bincount(layer.ids.ravel())[1:])


def _offset(points: np.ndarray, distance: float) -> np.ndarray:
    """The polyline moved sideways by ``distance`` pixels along its normals."""
    tangent = np.empty_like(points)
    tangent[1:-1] = points[2:] - points[:-2]
    tangent[0], tangent[-1] = points[1] - points[0], points[-1] - points[-2]
    tangent /= np.maximum(np.sqrt((tangent * tangent).sum(axis=1, keepdims=True)), 1e-6)
    return points + distance * np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)


def _u8(r: float, g: float, b: float) -> tuple[int, int, int]:
    """An 8-bit colour for cv2 drawing; layers are RGB, cv2 just writes the three numbers."""
    return (int(min(max(r, 0.0), 1.0) * 255 + 0.5), int(min(max(g, 0.0), 1.0) * 255 + 0.5),
            int(min(max(b, 0.0), 1.0) * 255 + 0.5))
