"""The five drawn lesion kinds: plan where they go, then paint them onto a float RGB canvas.

Planning returns each region's exact mask before anything is painted, so a lesion too small
to keep (see ``MIN_REGION_PX``) is never drawn and an indicator at grade 0 shows nothing.
Masks are where the lesion is at least half its strength; painting fades out beyond that.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from datasets.synth.fields import Shape, blend_towards, ellipse_axes, smooth_noise, soft_blob, tight_box

#: Regions whose visible mask is smaller than this are dropped (and not drawn).
MIN_REGION_PX = 30
#: Outline raggedness of a patch in the ``clear`` layout (the default patches use 0.35).
CLEAR_ROUGHNESS = 0.15
#: In the ``clear`` layout a flake lies at most this many cluster spreads from its centre.
CLEAR_FLAKE_REACH = 1.5
#: At most this many inflamed follicles in one picture.
MAX_FOLLICLE_LESIONS = 60
#: Colours (RGB 0-1): keratin scales, dandruff flakes (white to yellowish), sebum, pustule.
SCALE_WHITE = np.array([0.95, 0.94, 0.93], np.float32)
FLAKE_WHITE, FLAKE_YELLOW = np.array([0.99, 0.99, 0.97]), np.array([0.97, 0.93, 0.78])
SEBUM_TINT = np.array([1.04, 0.97, 0.78], np.float32)  # multiplies skin: yellow, translucent
PUS_YELLOW = np.array([0.97, 0.92, 0.70], np.float32)


@dataclass
class Patch:
    """A diffuse lesion area: soft strength field and its half-strength outline."""

    alpha: np.ndarray  # H x W float32, 0-1
    mask: np.ndarray  # H x W bool, alpha >= 0.5

    @property
    def window(self) -> tuple[slice, slice]:
        """Rows and columns where the patch has any strength: paint there, not everywhere."""
        x1, y1, x2, y2 = tight_box(self.alpha > 0) or (0, 0, 0, 0)
        return slice(y1, y2), slice(x1, x2)


def plan_patches(
    rng: np.random.Generator, shape: Shape, area_fraction: float, max_patches: int = 3, roughness: float = 0.35,
    center: tuple[float, float] | None = None,
) -> list[Patch]:
    """Ragged patches whose areas add up to about ``area_fraction`` of the frame.

    With ``center`` (x, y) there is one patch, centred there, rounder and less ragged: the
    one clear region per kind of the generator's ``clear`` layout.
    """
    if area_fraction <= 0:
        return []
    height, width = shape
    count = 1 if center else int(rng.integers(1, max_patches + 1))
    shares = rng.dirichlet(np.full(count, 3.0)) * area_fraction * height * width
    patches = []
    for area in shares:
        axes = ellipse_axes(float(area), float(rng.uniform(1.0, 1.5 if center else 2.2)))
        if center is None:
            # Keep the centre far enough in that most of the patch is in the frame.
            reach = min(axes[1], 0.4 * min(height, width))
            at = (float(rng.uniform(reach, width - reach)), float(rng.uniform(reach, height - reach)))
        else:
            at, roughness = center, min(roughness, CLEAR_ROUGHNESS)
        alpha = soft_blob(rng, shape, at, axes, float(rng.uniform(0, np.pi)), roughness, softness=0.45)
        mask = alpha >= 0.5
        if mask.sum() >= MIN_REGION_PX:
            patches.append(Patch(alpha, mask))
    return patches


def redden(canvas: np.ndarray, weight: np.ndarray) -> None:
    """Shift skin towards inflamed red in place; ``weight`` 0-1 per pixel (or ROI)."""
    canvas[..., 1] *= 1.0 - 0.32 * weight
    canvas[..., 2] *= 1.0 - 0.24 * weight
    canvas[..., 0] = np.minimum(canvas[..., 0] * (1.0 + 0.03 * weight), 1.0)


def paint_erythema(rng: np.random.Generator, canvas: np.ndarray, patches: list[Patch], strength: float) -> None:
    """Diffuse redness between follicles: mottled, strongest in the patch centre."""
    for patch in patches:
        window = patch.window
        alpha = patch.alpha[window]
        mottle = np.clip(0.8 + 0.25 * smooth_noise(rng, alpha.shape, _cells(alpha.shape, 40)), 0.45, 1.0)
        redden(canvas[window], strength * alpha * mottle)


def paint_microkeratin(
    rng: np.random.Generator, canvas: np.ndarray, patches: list[Patch], strength: float, scale: float
) -> None:
    """Fine whitish scaling: a dull haze plus many thin, short scale edges lifting off the skin."""
    for patch in patches:
        window = patch.window
        alpha, region = patch.alpha[window], canvas[window]
        blend_towards(region, SCALE_WHITE, 0.28 * strength * alpha)
        slivers = np.zeros(alpha.shape, np.uint8)
        where = np.flatnonzero(patch.mask[window])
        count = int(len(where) / (110.0 * scale * scale) * strength)
        rows, cols = np.divmod(rng.choice(where, size=count), alpha.shape[1])
        half = 0.5 * rng.uniform(3, 10, count) * scale
        angles = rng.uniform(0, np.pi, count)
        dx, dy = half * np.cos(angles), half * np.sin(angles)
        ends = np.round(np.stack([cols - dx, rows - dy, cols + dx, rows + dy], axis=1)).astype(int)
        shades, widths = rng.integers(90, 220, count), rng.integers(1, 3, count)
        for (x1, y1, x2, y2), shade, thickness in zip(ends.tolist(), shades.tolist(), widths.tolist()):
            cv2.line(slivers, (x1, y1), (x2, y2), shade, thickness, cv2.LINE_AA)
        # Fade slivers with the patch so the drawing stops where the mask says.
        slivers = cv2.GaussianBlur(slivers, (0, 0), 0.6)
        cover = slivers.astype(np.float32) * ((0.35 + 0.35 * strength) / 255.0) * np.clip(alpha * 1.6, 0, 1)
        blend_towards(region, SCALE_WHITE, cover)


def paint_sebum_film(canvas: np.ndarray, patches: list[Patch], strength: float) -> None:
    """Greasy film: skin turns yellowish and more saturated under a layer of sebum."""
    for patch in patches:
        window = patch.window
        region = canvas[window]
        blend_towards(region, SEBUM_TINT * region, 0.8 * strength * patch.alpha[window])


def paint_sebum_glints(
    rng: np.random.Generator, canvas: np.ndarray, patches: list[Patch], strength: float, scale: float
) -> None:
    """Specular reflections on the oil film, laid over skin and hairs alike."""
    for patch in patches:
        window = patch.window
        alpha, region = patch.alpha[window], canvas[window]
        # Broad sheen plus droplets: small, sharp highlights where fine noise peaks.
        droplets = smooth_noise(rng, alpha.shape, _cells(alpha.shape, 9 * scale))
        glints = np.clip((droplets - 1.7) / 0.5, 0.0, 1.0) * (0.5 + 0.3 * strength) + 0.06 * strength
        blend_towards(region, 1.0, glints * alpha)


def _cells(shape: Shape, feature_px: float) -> tuple[int, int]:
    """Noise grid for features about ``feature_px`` wide over ``shape``."""
    return max(2, int(shape[0] / feature_px)), max(2, int(shape[1] / feature_px))


def clump_points(rng: np.random.Generator, patch: Patch, count: int) -> np.ndarray:
    """Points (x, y) inside a sebum patch where greasy hairs gather into clumps."""
    rows, cols = np.nonzero(patch.mask)
    pick = rng.choice(len(rows), size=count)
    return np.stack([cols[pick], rows[pick]], axis=1).astype(np.float32)


@dataclass
class FollicleLesion:
    """Red ring around one follicle, with a pustule on about half of them."""

    center: tuple[float, float]
    radius: float
    pustule: float  # pustule radius in pixels, 0 for none
    mask: np.ndarray  # H x W bool


def plan_follicular(
    rng: np.random.Generator, shape: Shape, follicles: np.ndarray, area_fraction: float, scale: float,
    window: tuple[float, float, float, float] | None = None,
) -> list[FollicleLesion]:
    """Inflamed follicles, preferring real follicle openings, covering about ``area_fraction``.

    ``window`` (x1, y1, x2, y2) keeps every lesion centre inside it (default: the frame), and
    its lesions apart: a ring whose box would touch the box of one already placed is not drawn.
    """
    if area_fraction <= 0:
        return []
    height, width = shape
    border = 12 * scale
    x1, y1, x2, y2 = window or (0.0, 0.0, float(width), float(height))
    low, high = (max(x1, border), max(y1, border)), (min(x2, width - border), min(y2, height - border))
    inside = (follicles[:, 0] > low[0]) & (follicles[:, 0] < high[0])
    inside &= (follicles[:, 1] > low[1]) & (follicles[:, 1] < high[1])
    sites = list(rng.permutation(follicles[inside])) if len(follicles) else []
    lesions: list[FollicleLesion] = []
    placed: list[tuple[int, int, int, int]] = []  # their boxes, when kept apart
    covered = np.zeros(shape, bool)
    budget = area_fraction * height * width
    for _ in range(MAX_FOLLICLE_LESIONS):
        if covered.sum() >= budget:
            break
        center = sites.pop() if sites else rng.uniform(low, high)
        radius = float(rng.uniform(7, 15) * scale)
        mask = np.zeros(shape, np.uint8)
        # The ring is at half strength 1.4 radii out: that circle is the lesion's outline.
        cv2.circle(mask, (round(center[0]), round(center[1])), round(1.4 * radius), 1, -1)
        pustule = float(rng.uniform(0.35, 0.55) * radius) if rng.uniform() < 0.5 else 0.0
        box = tight_box(mask) if window is not None else None
        if box is not None and any(_boxes_touch(box, other) for other in placed):
            continue
        if mask.sum() >= MIN_REGION_PX:  # tiny frames: a ring too small to keep is not drawn
            lesions.append(FollicleLesion((float(center[0]), float(center[1])), radius, pustule, mask.astype(bool)))
            covered |= lesions[-1].mask
            if box is not None:
                placed.append(box)
    return lesions


def _boxes_touch(box: tuple[int, int, int, int], other: tuple[int, int, int, int], gap: int = 2) -> bool:
    """Whether two xyxy boxes come within ``gap`` px of each other."""
    return box[0] < other[2] + gap and other[0] < box[2] + gap and box[1] < other[3] + gap and other[1] < box[3] + gap


def paint_follicular(canvas: np.ndarray, lesions: list[FollicleLesion], strength: float) -> None:
    """Perifollicular red rings and yellow-white pustule domes, each in a small window."""
    height, width = canvas.shape[:2]
    for lesion in lesions:
        cx, cy, r = lesion.center[0], lesion.center[1], lesion.radius
        x1, x2 = max(0, int(cx - 2 * r)), min(width, int(cx + 2 * r) + 1)
        y1, y2 = max(0, int(cy - 2 * r)), min(height, int(cy + 2 * r) + 1)
        ys, xs = np.mgrid[y1:y2, x1:x2].astype(np.float32)
        dist = np.hypot(xs - cx, ys - cy)
        ring = np.exp(-(((dist - r) / (0.45 * r)) ** 2)) + 0.6 * np.exp(-((dist / r) ** 2))
        window = canvas[y1:y2, x1:x2]
        redden(window, np.clip(strength * 1.2 * ring, 0, 1))
        if lesion.pustule:
            # A dome of pus: opaque yellow-white centre fading out, with a specular dot.
            dome = np.clip(1.0 - (dist / lesion.pustule) ** 2, 0, 1) ** 0.5
            blend_towards(window, PUS_YELLOW, 0.9 * dome)
            hx, hy = cx - 0.3 * lesion.pustule, cy - 0.3 * lesion.pustule
            spot = np.exp(-(np.hypot(xs - hx, ys - hy) / (0.25 * lesion.pustule + 0.5)) ** 2)
            blend_towards(window, 1.0, 0.8 * spot)


@dataclass
class FlakeCluster:
    """A cluster of dandruff flakes, some lying on skin (under hairs), some stuck on hairs."""

    under_rgb: np.ndarray  # H x W x 3 uint8, premultiplied by opacity
    under_alpha: np.ndarray  # H x W uint8
    over_rgb: np.ndarray
    over_alpha: np.ndarray
    mask: np.ndarray  # H x W bool: flake pixels not hidden by hairs


def plan_dandruff(
    rng: np.random.Generator, shape: Shape, area_fraction: float, scale: float, hair_cover: np.ndarray,
    center: tuple[float, float] | None = None,
) -> list[FlakeCluster]:
    """Clusters of irregular flakes adding up to about ``area_fraction`` of the frame.

    ``hair_cover`` (bool, where hairs lie on top) hides flakes under hairs from the mask and
    gives flakes stuck on hair shafts a place to sit. With ``center`` (x, y) there is one
    cluster there, its flakes no further than ``CLEAR_FLAKE_REACH`` spreads out (no strays
    that make the cluster's box a matter of opinion), none stuck on hairs.
    """
    if area_fraction <= 0:
        return []
    height, width = shape
    count = 1 if center else int(rng.integers(1, 4)) + int(area_fraction > 0.02)
    shares = rng.dirichlet(np.full(count, 2.0)) * area_fraction * height * width
    clusters = []
    for area in shares:
        spread = float(np.sqrt(area) * rng.uniform(0.5, 0.8) + 6 * scale)
        if center is None:
            center_xy = rng.uniform((spread, spread), (width - spread, height - spread))
        else:
            center_xy, spread = np.asarray(center, np.float64), spread * 0.5
        # Hair pixels near the cluster, where flakes stuck on shafts can sit (none when clear).
        hair_near = np.empty((0, 2))
        if center is None:
            x0, y0 = max(0, int(center_xy[0] - 2 * spread)), max(0, int(center_xy[1] - 2 * spread))
            x1, y1 = int(center_xy[0] + 2 * spread), int(center_xy[1] + 2 * spread)
            hair_rows, hair_cols = np.nonzero(hair_cover[y0:y1, x0:x1])
            hair_near = np.stack([hair_cols + x0, hair_rows + y0], axis=1).astype(np.float64)
        under_rgb, over_rgb = np.zeros((height, width, 3), np.uint8), np.zeros((height, width, 3), np.uint8)
        under_alpha, over_alpha = np.zeros((height, width), np.uint8), np.zeros((height, width), np.uint8)
        drawn = 0.0
        while drawn < area:
            on_hair = rng.uniform() < 0.3 and len(hair_near) > 0
            # Flakes on skin scatter around the cluster; flakes stuck on a shaft sit on it.
            if on_hair:
                spot = hair_near[rng.integers(len(hair_near))]
            else:
                offset = rng.normal(0, spread, 2)
                spot = center_xy + (offset if center is None else np.clip(offset, -CLEAR_FLAKE_REACH * spread,
                                                                          CLEAR_FLAKE_REACH * spread))
            polygon = _flake_polygon(rng, spot, scale)
            drawn += float(cv2.contourArea(polygon.astype(np.float32)))
            colour = FLAKE_WHITE + (FLAKE_YELLOW - FLAKE_WHITE) * rng.uniform(0, 1)
            opacity = float(rng.uniform(0.75, 0.95))
            rgb, alpha = (over_rgb, over_alpha) if on_hair else (under_rgb, under_alpha)
            pts = np.round(polygon * 16).astype(np.int32).reshape(-1, 1, 2)
            cv2.fillPoly(rgb, [pts], _rgb255(colour * opacity), cv2.LINE_AA, 4)
            cv2.fillPoly(alpha, [pts], int(opacity * 255), cv2.LINE_AA, 4)
        mask = ((under_alpha >= 128) & ~hair_cover) | (over_alpha >= 128)
        if mask.sum() >= MIN_REGION_PX:
            clusters.append(FlakeCluster(under_rgb, under_alpha, over_rgb, over_alpha, mask))
    return clusters


def paint_flakes(canvas: np.ndarray, clusters: list[FlakeCluster], over_hair: bool) -> None:
    """Lay the flakes of one depth (on skin, or on hairs) onto the canvas."""
    for cluster in clusters:
        rgb, alpha = (cluster.over_rgb, cluster.over_alpha) if over_hair else (cluster.under_rgb, cluster.under_alpha)
        box = tight_box(alpha)
        if box is None:
            continue
        window = slice(box[1], box[3]), slice(box[0], box[2])
        region = canvas[window]
        # A touch of blur: flakes are thin, translucent and rarely in perfect focus.
        region *= 1.0 - cv2.GaussianBlur(alpha[window].astype(np.float32) / 255.0, (0, 0), 0.7)[:, :, None]
        region += cv2.GaussianBlur(rgb[window].astype(np.float32) / 255.0, (0, 0), 0.7)  # premultiplied


def _flake_polygon(rng: np.random.Generator, center: np.ndarray, scale: float) -> np.ndarray:
    """An irregular plate: a wobbly, sometimes elongated outline with a few jagged notches."""
    size = float(np.clip(rng.lognormal(np.log(6.0), 0.5), 3.5, 26.0)) * scale
    vertices = int(rng.integers(12, 20))
    angles = np.linspace(0, 2 * np.pi, vertices, endpoint=False) + rng.uniform(0, 2 * np.pi)
    # Smooth wobble (circular moving average of noise) plus sharp notches on some vertices.
    wobble = rng.normal(0, 1, vertices)
    wobble = (np.roll(wobble, 1) + wobble + np.roll(wobble, -1)) / 3
    radii = size * np.clip(1.0 + 0.35 * wobble - 0.35 * (rng.uniform(size=vertices) < 0.15), 0.3, 1.6)
    stretch, tilt = rng.uniform(1.0, 2.0), rng.uniform(0, np.pi)
    x, y = radii * np.cos(angles) * stretch, radii * np.sin(angles)
    rotated = np.stack([x * np.cos(tilt) - y * np.sin(tilt), x * np.sin(tilt) + y * np.cos(tilt)], axis=1)
    return rotated + center


def _rgb255(rgb: np.ndarray) -> tuple[int, int, int]:
    return tuple(round(v * 255) for v in np.clip(rgb, 0.0, 1.0))  # type: ignore[return-value]
