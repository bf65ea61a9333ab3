"""Hand marks on real close-ups: read them, and measure a shaft's width across its direction.

A mark file (``tests/fixtures/hair-marks/*.json``, see the README there) lists, for one
scalp-data picture, every hair a person saw as a polyline in the file's own pixels
(640 x 640, the Roboflow stretch of a 640 x 480 frame). Widths are measured in the
un-stretched 640 x 480 frame, the one the meter measures in, from intensity profiles across
the shaft (:func:`profile_widths`), and compared with the meter's mask along the same lines
(:func:`mask_widths`).
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

#: The scalp-data pictures are 640 x 480 frames stretched to 640 x 640.
MARKED_SIZE = (640, 640)
FRAME_SIZE = (640, 480)
#: Profiles are taken this far apart along a marked hair, and this long across it (px).
PROFILE_STEP_PX = 16.0
PROFILE_HALF_LENGTH_PX = 45.0
#: The profile's extreme is looked for this far either side of the marked line (marks are
#: placed by eye, a few px off the middle).
SNAP_PX = 8.0


@dataclass
class MarkedHair:
    polyline: np.ndarray  # N x 2 (x, y) in the 640 x 480 frame
    certain: bool = True
    width_px: float | None = None  # from intensity profiles, frame px


@dataclass
class MarkedImage:
    image: str  # path relative to the scalp-data dataset folder (``data import``)
    hairs: list[MarkedHair] = field(default_factory=list)
    source_file: str | None = None  # path relative to the Roboflow export itself

    def picture(self, root: Path) -> Path:
        """The marked picture under ``root``: an imported dataset folder or the Roboflow export."""
        for relative in (self.image, self.source_file):
            if relative and (Path(root) / relative).is_file():
                return Path(root) / relative
        raise FileNotFoundError(f"{self.image} is neither in {root} nor, as {self.source_file}, in a Roboflow export there")

    @property
    def count(self) -> int:
        """Hairs the marker was sure of."""
        return sum(h.certain for h in self.hairs)

    @property
    def count_range(self) -> tuple[int, int]:
        """(sure hairs, sure + unsure hairs)."""
        return self.count, len(self.hairs)


def load_marks(path: Path) -> MarkedImage:
    """One mark file, polylines converted to the 640 x 480 frame."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    sx = FRAME_SIZE[0] / MARKED_SIZE[0]
    sy = FRAME_SIZE[1] / MARKED_SIZE[1]
    hairs = [
        MarkedHair(np.asarray(h["polyline"], np.float64) * [sx, sy], bool(h.get("certain", True)), h.get("width_px"))
        for h in data["hairs"]
    ]
    return MarkedImage(data["image"], hairs, data.get("source_file"))


def _samples(polyline: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Points every ``step`` px along a polyline (ends excluded) and unit normals there."""
    points, normals = [], []
    for a, b in itertools.pairwise(polyline):
        delta = b - a
        length = float(np.hypot(*delta))
        if length < 1e-6:
            continue
        tangent = delta / length
        normal = np.array([-tangent[1], tangent[0]])
        for t in np.arange(step / 2, length - step / 4, step):
            points.append(a + t * tangent)
            normals.append(normal)
    return np.asarray(points).reshape(-1, 2), np.asarray(normals).reshape(-1, 2)


def _profile(image: np.ndarray, point: np.ndarray, normal: np.ndarray, half: float) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.arange(-half, half + 0.5, 0.5)
    xs = (point[0] + offsets * normal[0]).astype(np.float32)
    ys = (point[1] + offsets * normal[1]).astype(np.float32)
    values = cv2.remap(image, xs[None], ys[None], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)[0]
    return offsets, values.astype(np.float64)


def profile_widths(gray: np.ndarray, polyline: np.ndarray) -> list[float]:
    """Full width at half depth of the shaft's intensity dip (or peak, for white hairs), at
    points along a marked polyline; profiles that show no clean single shaft are skipped.

    ``gray`` is the 640 x 480 frame as float32 grey levels, lightly smoothed.
    """
    widths = []
    points, normals = _samples(polyline, PROFILE_STEP_PX)
    for point, normal in zip(points, normals):
        offsets, values = _profile(gray, point, normal, PROFILE_HALF_LENGTH_PX)
        if not (0 <= point[0] < gray.shape[1] and 0 <= point[1] < gray.shape[0]):
            continue
        outer = np.abs(offsets) >= 0.6 * PROFILE_HALF_LENGTH_PX
        background = float(np.median(values[outer]))
        near = np.abs(offsets) <= SNAP_PX
        dark, bright = background - values[near].min(), values[near].max() - background
        sign = 1.0 if dark >= bright else -1.0
        depth = max(dark, bright)
        if depth < 12.0:  # grey levels: too faint to place its edges
            continue
        contrast = sign * (background - values)  # positive inside the shaft
        centre = int(np.flatnonzero(near)[np.argmax(contrast[near])])
        half = depth / 2.0
        left = centre
        while left > 0 and contrast[left] >= half:
            left -= 1
        right = centre
        while right < len(values) - 1 and contrast[right] >= half:
            right += 1
        if left == 0 or right == len(values) - 1:
            continue  # the dip runs off the profile: another hair lies alongside
        # Interpolate the half-depth crossings between samples (0.5 px apart).
        x_left = offsets[left] + (half - contrast[left]) / (contrast[left + 1] - contrast[left] + 1e-9) * 0.5
        x_right = offsets[right - 1] + (contrast[right - 1] - half) / (contrast[right - 1] - contrast[right] + 1e-9) * 0.5
        widths.append(float(x_right - x_left))
    return widths


def mask_widths(mask: np.ndarray, polyline: np.ndarray) -> list[float]:
    """Run length of ``mask`` across a marked polyline (through the mask pixel nearest the
    line within ``SNAP_PX``), at the same points as :func:`profile_widths`."""
    widths = []
    points, normals = _samples(polyline, PROFILE_STEP_PX)
    as_float = mask.astype(np.float32)
    for point, normal in zip(points, normals):
        offsets, values = _profile(as_float, point, normal, PROFILE_HALF_LENGTH_PX)
        inside = values >= 0.5
        near = np.flatnonzero(inside & (np.abs(offsets) <= SNAP_PX))
        if not len(near):
            widths.append(0.0)  # the mask misses the hair here
            continue
        centre = near[np.argmin(np.abs(offsets[near]))]
        left, right = centre, centre
        while left > 0 and inside[left - 1]:
            left -= 1
        while right < len(inside) - 1 and inside[right + 1]:
            right += 1
        if left == 0 or right == len(inside) - 1:
            continue
        widths.append(float((right - left + 1) * 0.5))
    return widths


def frame_gray(rgb_file: np.ndarray) -> np.ndarray:
    """The 640 x 480 frame of a 640 x 640 scalp-data picture, as smoothed float32 grey."""
    frame = cv2.resize(rgb_file, FRAME_SIZE, interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return cv2.GaussianBlur(gray, (0, 0), 0.7)
