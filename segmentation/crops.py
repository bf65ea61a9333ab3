"""From a box in the picture to the network's square crop, and from its mask back again.

A box becomes a square *window*: centred on the box, its side the box's longer side times
``1 + 2 * margin`` (context on every side), never smaller than ``min_window`` pixels. Keeping
the window square keeps the aspect ratio, so hair shafts and flakes are never stretched and
the box prior really says where inside the crop the box lies. Windows are whole pixels, so a
crop and its paste-back use exactly the same geometry; parts of a window outside the picture
(boxes at the border) are padded with black, like a trichoscope's vignette.

>>> window = crop_window((100, 100, 140, 120), margin=0.25, min_window=32)
>>> window
(90, 80, 150, 140)
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from segmentation.options import DEFAULT_CROP_SIZE

Box = Sequence[float]


@dataclass(frozen=True)
class CropGeometry:
    """How boxes are cut out and resized; stored in the segmenter's config."""

    crop_size: int = DEFAULT_CROP_SIZE
    margin: float = 0.25  # context on each side, as a fraction of the box's longer side
    min_window: int = 32  # smallest window side in image pixels (tiny boxes still get context)
    prior_softness: float = 0.1  # soft-edge width of the box prior, as a fraction of the box side

    def window(self, box: Box) -> tuple[int, int, int, int]:
        return crop_window(box, self.margin, self.min_window)


def crop_window(box: Box, margin: float, min_window: int) -> tuple[int, int, int, int]:
    """The square window (x1, y1, x2, y2 whole pixels, x2 exclusive) cut out around ``box``."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1, 1.0) * (1.0 + 2.0 * margin)
    side_px = max(round(side), int(min_window), 1)
    left = round((x1 + x2) / 2.0 - side_px / 2.0)
    top = round((y1 + y2) / 2.0 - side_px / 2.0)
    return left, top, left + side_px, top + side_px


def cut_window(image: np.ndarray, window: tuple[int, int, int, int], fill: float = 0) -> np.ndarray:
    """The pixels of ``window`` (may reach outside ``image``; outside is ``fill``), unresized."""
    left, top, right, bottom = window
    height, width = image.shape[:2]
    out = np.full((bottom - top, right - left) + image.shape[2:], fill, dtype=image.dtype)
    sx1, sy1, sx2, sy2 = max(left, 0), max(top, 0), min(right, width), min(bottom, height)
    if sx2 > sx1 and sy2 > sy1:
        out[sy1 - top : sy2 - top, sx1 - left : sx2 - left] = image[sy1:sy2, sx1:sx2]
    return out


def resize_square(patch: np.ndarray, size: int, nearest: bool = False) -> np.ndarray:
    """Resize a square patch to ``size`` x ``size`` (area averaging when shrinking)."""
    if patch.shape[0] == size and patch.shape[1] == size:
        return patch
    if nearest:
        interpolation = cv2.INTER_NEAREST
    else:
        interpolation = cv2.INTER_AREA if patch.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interpolation)


def crop_rgb(rgb: np.ndarray, box: Box, geometry: CropGeometry) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The RGB crop (size x size x 3, uint8) around ``box`` and the window it came from."""
    window = geometry.window(box)
    return resize_square(cut_window(rgb, window), geometry.crop_size), window


def crop_mask(mask: np.ndarray, window: tuple[int, int, int, int], size: int) -> np.ndarray:
    """A full-picture bool mask cut to ``window`` and resized to the crop (float 0..1, area-averaged)."""
    patch = cut_window(mask.astype(np.float32), window)
    return resize_square(patch, size)


def box_in_window(box: Box, window: tuple[int, int, int, int], size: int) -> tuple[float, float, float, float]:
    """``box`` in the crop's pixel coordinates (continuous: pixel i spans [i, i+1))."""
    left, top, right, _ = window
    scale = size / float(right - left)
    x1, y1, x2, y2 = (float(v) for v in box)
    return (x1 - left) * scale, (y1 - top) * scale, (x2 - left) * scale, (y2 - top) * scale


def box_prior(box: Box, size: int, softness: float = 0.1) -> np.ndarray:
    """The soft box: 1 well inside ``box`` (crop coordinates), 0.5 on its edge, 0 away from it.

    Each axis ramps linearly over ``softness`` times the box's extent on that axis (at least
    one pixel), and the two ramps multiply. A soft edge tells the network "about here" rather
    than a hard, possibly wrong line, which is what a detector box is.
    """
    x1, y1, x2, y2 = box
    centres = np.arange(size, dtype=np.float32) + 0.5

    def ramp(lo: float, hi: float) -> np.ndarray:
        width = max(softness * (hi - lo), 1.0)
        inside = np.minimum(centres - lo, hi - centres)  # signed distance to the nearer edge
        return np.clip(0.5 + inside / width, 0.0, 1.0)

    return np.outer(ramp(y1, y2), ramp(x1, x2)).astype(np.float32)


def box_mask(box: Box, size: int) -> np.ndarray:
    """The hard box in crop coordinates (float 0/1): pixels whose centre lies inside it."""
    x1, y1, x2, y2 = box
    centres = np.arange(size, dtype=np.float32) + 0.5
    rows = (centres >= y1) & (centres < y2)
    cols = (centres >= x1) & (centres < x2)
    return np.outer(rows, cols).astype(np.float32)


def paste_back(crop_probs: np.ndarray, window: tuple[int, int, int, int], image_shape: tuple[int, int]) -> np.ndarray:
    """A crop's probabilities (size x size) put back into the picture (H x W float32, 0 outside)."""
    height, width = image_shape
    out = np.zeros((height, width), dtype=np.float32)
    paste_into(out, crop_probs, window)
    return out


def paste_into(canvas: np.ndarray, crop_probs: np.ndarray, window: tuple[int, int, int, int]) -> None:
    """Write ``crop_probs`` resized to ``window`` into ``canvas`` (in place), clipped to the picture."""
    left, top, right, bottom = window
    height, width = canvas.shape[:2]
    sx1, sy1, sx2, sy2 = max(left, 0), max(top, 0), min(right, width), min(bottom, height)
    if sx2 <= sx1 or sy2 <= sy1:
        return
    side = right - left
    if crop_probs.shape[0] == side:
        resized = crop_probs
    else:
        # Only the part of the window inside the picture is computed: warp the crop straight
        # into that sub-rectangle (same pixel-centre convention as cv2.resize).
        scale = crop_probs.shape[0] / float(side)
        offset_x = (sx1 - left + 0.5) * scale - 0.5
        offset_y = (sy1 - top + 0.5) * scale - 0.5
        matrix = np.array([[scale, 0.0, offset_x], [0.0, scale, offset_y]], dtype=np.float64)
        canvas[sy1:sy2, sx1:sx2] = cv2.warpAffine(
            crop_probs.astype(np.float32), matrix, (sx2 - sx1, sy2 - sy1),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE,
        )
        return
    canvas[sy1:sy2, sx1:sx2] = resized[sy1 - top : sy2 - top, sx1 - left : sx2 - left]


__all__ = [
    "CropGeometry",
    "box_in_window",
    "box_mask",
    "box_prior",
    "crop_mask",
    "crop_rgb",
    "crop_window",
    "cut_window",
    "paste_back",
    "paste_into",
    "resize_square",
]
