"""Capture profiles: how a picture was taken, measured from its pixels, so two visits can be
judged comparable before their grades are.

A grade that moves between two visits means something only if the two pictures were taken
alike: same view, similar focus, exposure and magnification. :func:`capture_profile` measures
those from the image alone; :func:`consistency` scores two profiles from 0 (taken nothing
alike) to 1 (taken alike), limited by the factor that differs most.

Every measure is taken on a working copy whose long side is :data:`WORK_SIDE` pixels, so the
same field of view saved at another resolution measures the same.

>>> import numpy as np
>>> rgb = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
>>> consistency(capture_profile(rgb), capture_profile(rgb)).score
1.0
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np

#: Long side of the working copy every measure is taken on (a trichoscope frame is 640 px).
WORK_SIDE = 640
#: Blown highlights: luma at or above this counts as clipped.
CLIP_LUMA = 250
#: Dark structures narrower than this (at working size) count as hair shafts.
HAIR_KERNEL = 41
#: Below these a picture has too few hair shafts for a width to mean anything.
MIN_HAIR_FRACTION = 0.05
MIN_HAIR_RIDGE_PX = 1500
PROFILE_VERSION = 1

#: For each factor, the difference at which its score falls to 0.5 (scores are
#: ``0.5 ** (difference / half_point) ** 2``): focus and magnification as ratios, exposure in
#: luma levels (0-255) and highlights as a share of the frame.
HALF_POINTS: dict[str, float] = {
    "sharpness": 1.5,  # ratio of edge widths
    "brightness": 30.0,  # difference of skin luma
    "highlights": 0.05,  # difference of clipped share
    "scale": 1.4,  # ratio of hair-shaft widths
}
#: Captures scoring below this are not compared (see :func:`consistency`).
MIN_CONSISTENCY = 0.5


@dataclass(frozen=True)
class CaptureProfile:
    """Focus, exposure and magnification of one picture, measured from its pixels."""

    width: int  # pixels of the analysed image
    height: int
    laplacian_var: float  # variance of the Laplacian: the classic focus measure (content-dependent)
    edge_width: float  # sqrt(mean |grad|^2 / mean lap^2): grows with blur and magnification, not with content
    brightness: float  # mean luma, 0-255 (moves with hair cover as well as exposure)
    skin_brightness: float  # median luma outside hair shafts: exposure, not hair cover
    p05: float  # luma percentiles
    p95: float
    clipped: float  # share of pixels at or above CLIP_LUMA
    hair_fraction: float  # share of the frame covered by thin dark structures (hair shafts)
    hair_width_px: float | None  # mean width of the thicker half of hair shafts; None when too few
    version: int = PROFILE_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaptureProfile:
        known = {name for name in cls.__dataclass_fields__}
        return cls(**{key: value for key, value in data.items() if key in known})


@dataclass(frozen=True)
class Consistency:
    """How alike two captures were taken: ``score`` is the lowest factor score."""

    score: float
    factors: dict[str, float]  # factor -> 0..1
    details: dict[str, str] = field(default_factory=dict)  # factor -> what was measured, for people
    skipped: dict[str, str] = field(default_factory=dict)  # factor -> why it could not be measured

    @property
    def comparable(self) -> bool:
        return self.score >= MIN_CONSISTENCY

    @property
    def weakest(self) -> str | None:
        return min(self.factors, key=self.factors.get) if self.factors else None

    def explain(self) -> str:
        """One line: the score and what limits it, e.g. ``0.12 (sharpness: edge width 0.14 -> 0.36, 2.6x)``."""
        if self.weakest is None:
            return f"{self.score:.2f}"
        return f"{self.score:.2f} ({self.weakest}: {self.details[self.weakest]})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------- measuring
def _working_gray(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        gray = rgb.astype(np.uint8)
    else:
        gray = cv2.cvtColor(np.ascontiguousarray(rgb[:, :, :3]).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    height, width = gray.shape
    scale = WORK_SIDE / max(height, width)
    if scale != 1.0:
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        gray = cv2.resize(
            gray, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=interpolation
        )
    return gray


def _hair_shafts(gray: np.ndarray) -> tuple[np.ndarray, float | None]:
    """The hair-shaft mask and the mean width of the thicker half of the shafts.

    Hair shafts are the thin dark structures a black-hat transform lifts out of the skin. Their
    width is twice the distance-transform value along their centre lines. The thicker half is
    used because miniaturization, a real change between visits, adds thin hairs while the
    terminal hairs that set this width stay as they were.
    """
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (HAIR_KERNEL, HAIR_KERNEL))
    blackhat = cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, kernel)
    otsu, _ = cv2.threshold(blackhat, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = (blackhat > max(otsu, 12)).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    keep = np.zeros(count, dtype=bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= 40  # specks are pores and noise, not hair
    mask = keep[labels].astype(np.uint8)
    fraction = float(mask.mean())
    shafts = mask.astype(bool)
    distance = cv2.distanceTransform(mask, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    ridge = (mask > 0) & (distance >= cv2.dilate(distance, np.ones((3, 3), np.uint8)) - 1e-6)
    if fraction < MIN_HAIR_FRACTION or int(ridge.sum()) < MIN_HAIR_RIDGE_PX:
        return shafts, None
    widths = np.sort(2.0 * distance[ridge])
    return shafts, float(widths[len(widths) // 2 :].mean())


def capture_profile(rgb: np.ndarray) -> CaptureProfile:
    """Measure focus, exposure and magnification of an RGB uint8 picture (about 30 ms at 640 px)."""
    height, width = np.asarray(rgb).shape[:2]
    gray = _working_gray(rgb)
    values = gray.astype(np.float32)
    laplacian = cv2.Laplacian(values, cv2.CV_32F, ksize=3)
    grad_x = cv2.Sobel(values, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    grad_y = cv2.Sobel(values, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    gradient_energy = float((grad_x**2 + grad_y**2).mean())
    laplacian_energy = float((laplacian**2).mean())
    # A flat picture has no edges: call its edges infinitely wide rather than divide by zero.
    edge_width = math.sqrt(gradient_energy / laplacian_energy) if laplacian_energy > 1e-9 else float("inf")
    p05, p95 = np.percentile(values, [5, 95])
    shafts, hair_width = _hair_shafts(gray)
    # Exposure is read off the skin: fewer hairs (a real change) brighten the whole frame.
    skin = gray[~shafts] if (~shafts).any() else gray.ravel()
    return CaptureProfile(
        width=int(width),
        height=int(height),
        laplacian_var=round(float(laplacian.var()), 3),
        edge_width=round(edge_width, 5) if math.isfinite(edge_width) else edge_width,
        brightness=round(float(values.mean()), 3),
        skin_brightness=round(float(np.median(skin)), 2),
        p05=round(float(p05), 2),
        p95=round(float(p95), 2),
        clipped=round(float((gray >= CLIP_LUMA).mean()), 5),
        hair_fraction=round(float(shafts.mean()), 5),
        hair_width_px=None if hair_width is None else round(hair_width, 3),
    )


# ----------------------------------------------------------------------------- comparing
def _similarity(difference: float, half_point: float) -> float:
    return float(0.5 ** ((difference / half_point) ** 2))


def _ratio_factor(a: float, b: float, half_ratio: float) -> tuple[float, float]:
    """Score and ratio (>= 1) of two positive measures."""
    if not (math.isfinite(a) and math.isfinite(b)) or a <= 0 or b <= 0:
        return (1.0, 1.0) if a == b else (0.0, float("inf"))
    ratio = max(a, b) / min(a, b)
    return _similarity(math.log(ratio), math.log(half_ratio)), ratio


def consistency(earlier: CaptureProfile, later: CaptureProfile) -> Consistency:
    """Score how alike two captures were taken, from 0 to 1: the lowest of four factor scores.

    - sharpness: ratio of edge widths (blur, focus, motion, and a lower resolution all widen edges);
    - brightness: difference of skin luma, the median outside hair shafts (exposure, lighting);
    - highlights: difference of the share of blown pixels (glare, overexposure);
    - scale: ratio of hair-shaft widths (magnification); skipped where either picture has too
      few hair shafts, e.g. head photos.

    Each factor scores ``0.5 ** (difference / HALF_POINTS[factor]) ** 2``; captures under
    :data:`MIN_CONSISTENCY` are not compared.
    """
    factors: dict[str, float] = {}
    details: dict[str, str] = {}
    skipped: dict[str, str] = {}

    score, ratio = _ratio_factor(earlier.edge_width, later.edge_width, HALF_POINTS["sharpness"])
    factors["sharpness"] = score
    details["sharpness"] = (
        f"edge width {earlier.edge_width:.3g} -> {later.edge_width:.3g} ({ratio:.2g}x); "
        f"Laplacian variance {earlier.laplacian_var:.0f} -> {later.laplacian_var:.0f}"
    )

    shift = later.skin_brightness - earlier.skin_brightness
    factors["brightness"] = _similarity(abs(shift), HALF_POINTS["brightness"])
    details["brightness"] = (
        f"skin luma {earlier.skin_brightness:.0f} -> {later.skin_brightness:.0f} ({shift:+.0f} of 255)"
    )

    shift = later.clipped - earlier.clipped
    factors["highlights"] = _similarity(abs(shift), HALF_POINTS["highlights"])
    details["highlights"] = f"blown pixels {100 * earlier.clipped:.1f}% -> {100 * later.clipped:.1f}%"

    if earlier.hair_width_px is None or later.hair_width_px is None:
        skipped["scale"] = "too few hair shafts to measure magnification"
    else:
        score, ratio = _ratio_factor(earlier.hair_width_px, later.hair_width_px, HALF_POINTS["scale"])
        factors["scale"] = score
        details["scale"] = (
            f"hair-shaft width {earlier.hair_width_px:.1f} -> {later.hair_width_px:.1f} px ({ratio:.2g}x)"
        )
    overall = min(factors.values())
    return Consistency(round(overall, 4), {k: round(v, 4) for k, v in factors.items()}, details, skipped)
