"""Noise fields and soft shapes the painters build on.

Everything here is a pure function of an explicit ``numpy.random.Generator``; arrays are
float32 in image layout (rows, columns) so they multiply straight into an RGB canvas.
"""
from __future__ import annotations

import cv2
import numpy as np

Shape = tuple[int, int]  # (height, width)


def smooth_noise(rng: np.random.Generator, shape: Shape, cells: tuple[int, int]) -> np.ndarray:
    """Band-limited noise with zero mean and unit spread, features about ``shape / cells`` wide.

    A coarse random grid upsampled bicubically: far cheaper than Perlin noise and smooth
    enough for shading, blotches and ragged outlines.

    >>> smooth_noise(np.random.default_rng(0), (48, 64), (3, 4)).shape
    (48, 64)
    """
    rows, cols = max(2, cells[0]), max(2, cells[1])
    grid = rng.standard_normal((rows + 2, cols + 2)).astype(np.float32)
    height, width = shape
    # Upsample the padded grid, then crop the border where bicubic ringing lives.
    up = cv2.resize(grid, (width * (cols + 2) // cols, height * (rows + 2) // rows), interpolation=cv2.INTER_CUBIC)
    top, left = (up.shape[0] - height) // 2, (up.shape[1] - width) // 2
    field = up[top : top + height, left : left + width]
    return (field - field.mean()) / (field.std() + 1e-6)


def grain_noise(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """Pixel grain of about unit spread, correlated over ~2 px like a demosaiced sensor's.

    Drawn at half size and upsampled: a quarter of the random draws of per-pixel noise.
    """
    height, width = shape
    half = rng.standard_normal((height // 2 + 1, width // 2 + 1), dtype=np.float32)
    # Bilinear upsampling averages neighbours and lowers the spread to about 0.75.
    return cv2.resize(half, (width, height), interpolation=cv2.INTER_LINEAR) * np.float32(1.0 / 0.75)


def soft_blob(
    rng: np.random.Generator,
    shape: Shape,
    center: tuple[float, float],
    axes: tuple[float, float],
    angle: float,
    roughness: float = 0.25,
    softness: float = 0.25,
) -> np.ndarray:
    """A ragged ellipse as an alpha field in [0, 1]; ``alpha >= 0.5`` is its outline.

    ``center`` is (x, y), ``axes`` the semi-axes in pixels, ``angle`` in radians.
    ``roughness`` bends the outline (fraction of the radius), ``softness`` widens the fade.

    >>> a = soft_blob(np.random.default_rng(0), (100, 100), (50, 50), (20, 10), 0.3)
    >>> bool(a[50, 50] == 1.0), bool(a[0, 0] == 0.0)
    (True, True)
    """
    height, width = shape
    # Work only in the window the blob can reach: the ellipse's bounding box, grown by the
    # widest the noise and the fade can push the outline out.
    grow = 1.0 + 0.5 * softness + 1.5 * roughness
    half_w = grow * np.hypot(axes[0] * np.cos(angle), axes[1] * np.sin(angle))
    half_h = grow * np.hypot(axes[0] * np.sin(angle), axes[1] * np.cos(angle))
    x1, x2 = max(0, int(center[0] - half_w)), min(width, int(center[0] + half_w) + 2)
    y1, y2 = max(0, int(center[1] - half_h)), min(height, int(center[1] + half_h) + 2)
    alpha = np.zeros(shape, np.float32)
    if x1 >= x2 or y1 >= y2:
        return alpha
    # The field is smooth, so evaluate it on a coarser grid and upsample (3-10x cheaper).
    step = 4 if min(axes) > 40 else 2 if min(axes) > 12 else 1
    ys = np.arange(y1, y2, step, dtype=np.float32)[:, None] - np.float32(center[1])
    xs = np.arange(x1, x2, step, dtype=np.float32)[None, :] - np.float32(center[0])
    cos, sin = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    u = (xs * cos + ys * sin) / np.float32(axes[0])
    v = (ys * cos - xs * sin) / np.float32(axes[1])
    radius = np.sqrt(u * u + v * v)
    # Ragged edge: perturb the normalized radius by noise with a few bumps per blob diameter.
    cells = (max(3, int(6 * (y2 - y1) / (2 * half_h))), max(3, int(6 * (x2 - x1) / (2 * half_w))))
    radius += np.float32(roughness * 0.5) * smooth_noise(rng, radius.shape, cells)
    window = np.clip((1.0 - radius) / np.float32(softness) + np.float32(0.5), 0.0, 1.0)
    window = window * window * (3.0 - 2.0 * window)  # smoothstep: no hard ring at the fade's ends
    if step > 1:
        window = cv2.resize(window, (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR)
    alpha[y1:y2, x1:x2] = window
    return alpha


def ellipse_axes(area: float, aspect: float) -> tuple[float, float]:
    """Semi-axes (a, b) of an ellipse with the given area and a/b ratio."""
    b = np.sqrt(area / (np.pi * aspect))
    return float(b * aspect), float(b)


def tight_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """The smallest xyxy box (exclusive right/bottom) holding every nonzero pixel, or None."""
    rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
    if not rows.any():
        return None
    y1, y2 = np.flatnonzero(rows)[[0, -1]]
    x1, x2 = np.flatnonzero(cols)[[0, -1]]
    return int(x1), int(y1), int(x2) + 1, int(y2) + 1


def blend_towards(canvas: np.ndarray, target: np.ndarray | float, weight: np.ndarray) -> None:
    """``canvas += (target - canvas) * weight`` in place, ``weight`` H x W (0 keeps, 1 replaces).

    In-place steps avoid numpy's slow path for fresh broadcast (H, W, 3) x (H, W, 1) arrays.
    """
    step = np.subtract(target, canvas, dtype=np.float32)
    step *= weight[:, :, None]
    canvas += step
