"""What a trichologist reads off a close-up: hair count, shaft thickness, thin-hair ratio, density.

:func:`measure_hairs` turns a hair mask (and, from the network, a centre-line map) into a
:class:`HairMeasurement`; :meth:`HairMeasurement.to_dict` is the ``Analysis.hair`` record:

    {"count": 41, "density_per_cm2": 108.2, "thickness_um": {"median": 71.3, "p10": 48.0, "p90": 88.1},
     "thin_ratio": 0.07, "units": "um", "um_per_px": 11.11,
     "shafts": [{"paths": [[[12.0, 40.5], [80.0, 52.0]]], "width": 70.2, "thin": false}, ...]}

``shafts`` holds every counted hair as the polylines (x, y in pixels of the analysed
picture) it was traced along, with its width and whether it is thin: what the overlay draws.

Without a scale (no ``um_per_px``, no magnification) widths stay in pixels
(``"thickness_px"``, ``"units": "px"``) and density and the thin ratio are null, because
neither means anything without micrometres.

Widths are read from the mask's distance transform on the shaft's skeleton, computed on the
mask upsampled 2x (so an odd and an even width are told apart) and taken as the median
along the shaft, so crossings, where the mask is wider, do not count.

>>> import cv2
>>> mask = np.zeros((100, 160), np.uint8)
>>> _ = cv2.line(mask, (10, 50), (150, 50), 1, 6)   # OpenCV draws thickness 6 as 7 px
>>> m = measure_hairs(mask > 0)
>>> m.count, m.thickness["median"], m.units, m.density_per_cm2
(1, 7.0, 'px', None)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from scipy import ndimage

from hair.shafts import Shaft, TraceParams, trace_shafts
from hair.units import THIN_HAIR_UM

#: Per-shaft width = this percentile of the widths read along its skeleton.
WIDTH_QUANTILE = 40.0
#: Shaft polylines in the record stay within this many frame pixels of the skeleton.
SIMPLIFY_PX = 1.0


@dataclass
class HairMeasurement:
    """Hair count, thickness and density of one close-up (see the module doc for the record).

    ``shafts`` (pixel paths in the measured frame, per hair) and ``widths_px`` are the raw
    material; the record carries the shafts as polylines in the pixels of ``picture_shape``
    (the analysed picture, which the frame was resized from).
    """

    count: int
    widths_px: np.ndarray  # per hair, in reported pixels
    um_per_px: float | None  # per reported pixel; None = pixels only
    field_px: int  # scalp area in reported pixels (density denominator)
    frame_shape: tuple[int, int] = (0, 0)  # (h, w) of the image the shafts were traced in
    thin_um: float = THIN_HAIR_UM
    shafts: list[Shaft] = field(default_factory=list, repr=False)
    notes: list[str] = field(default_factory=list)
    picture_shape: tuple[int, int] | None = None  # (h, w) the record's coordinates refer to; None = frame_shape

    @property
    def units(self) -> str:
        return "px" if self.um_per_px is None else "um"

    @property
    def widths(self) -> np.ndarray:
        """Per-hair widths in the reported units."""
        return self.widths_px if self.um_per_px is None else self.widths_px * self.um_per_px

    @property
    def thickness(self) -> dict[str, float | None]:
        if not len(self.widths):
            return {"median": None, "p10": None, "p90": None}
        p10, median, p90 = np.percentile(self.widths, [10, 50, 90])
        return {"median": round(float(median), 2), "p10": round(float(p10), 2), "p90": round(float(p90), 2)}

    @property
    def thin(self) -> np.ndarray:
        """Which hairs are thin (below ``thin_um``); all False without a scale."""
        if self.um_per_px is None:
            return np.zeros(len(self.widths_px), bool)
        return self.widths_px * self.um_per_px < self.thin_um

    @property
    def thin_ratio(self) -> float | None:
        if self.um_per_px is None or not self.count:
            return None
        return round(float(self.thin.mean()), 4)

    @property
    def field_cm2(self) -> float | None:
        return None if self.um_per_px is None else self.field_px * (self.um_per_px * 1e-4) ** 2

    @property
    def density_per_cm2(self) -> float | None:
        area = self.field_cm2
        return None if not area else round(self.count / area, 1)

    def shaft_lines(self) -> list[dict[str, Any]]:
        """Each hair as simplified polylines in picture pixels, with its width and thinness."""
        frame_h, frame_w = self.frame_shape
        picture_h, picture_w = self.picture_shape or self.frame_shape
        sx, sy = (picture_w / frame_w, picture_h / frame_h) if frame_w and frame_h else (1.0, 1.0)
        thin, widths = self.thin, self.widths
        lines = []
        for index, shaft in enumerate(self.shafts):
            paths = []
            for path in shaft.paths:
                if len(path) < 2:
                    continue
                # Skeleton pixel chains, thinned to the points that keep them within a pixel.
                chain = np.ascontiguousarray(path[:, ::-1], dtype=np.int32).reshape(-1, 1, 2)
                points = cv2.approxPolyDP(chain, SIMPLIFY_PX, False).reshape(-1, 2).astype(np.float64)
                paths.append([[round(float(x * sx), 1), round(float(y * sy), 1)] for x, y in points])
            lines.append({"paths": paths, "width": round(float(widths[index]), 2), "thin": bool(thin[index])})
        return lines

    def to_dict(self) -> dict[str, Any]:
        """The ``Analysis.hair`` record."""
        return {
            "count": int(self.count),
            "density_per_cm2": self.density_per_cm2,
            f"thickness_{self.units}": self.thickness,
            "thin_ratio": self.thin_ratio,
            "units": self.units,
            "um_per_px": None if self.um_per_px is None else round(float(self.um_per_px), 4),
            "shafts": self.shaft_lines(),
        }


def measure_hairs(
    mask: np.ndarray,
    um_per_px: float | None = None,
    centerline: np.ndarray | None = None,
    width_map: np.ndarray | None = None,
    thin_um: float = THIN_HAIR_UM,
    params: TraceParams = TraceParams(),
    field_px: int | None = None,
    width_level: float = 0.5,
    px_scale: float = 1.0,
) -> HairMeasurement:
    """Count and measure the hairs of a mask.

    Args:
        mask: H x W bool, hair pixels.
        um_per_px: micrometres per pixel of this image (see :mod:`hair.units`), or None.
        centerline: H x W bool, the network's centre-line map; when given, shafts are traced
            on it (hairs lying side by side keep two lines) and widths read from ``mask``.
        width_map: H x W float hair probability to read widths from with sub-pixel edges
            (defaults to ``mask``).
        thin_um: the thin-hair threshold in micrometres.
        field_px: scalp area in pixels for the density (defaults to the whole mask).
        width_level: the probability at which ``width_map``'s shaft edges are drawn.
        px_scale: reported pixels per pixel of ``mask`` (the mask was made in a resized
            frame); ``um_per_px`` is per *reported* pixel.
    """
    mask = np.asarray(mask, bool)
    if centerline is None:
        shafts = trace_shafts(mask, params)
    else:
        shafts = trace_shafts(np.asarray(centerline, bool), params, support=mask)
    widths = shaft_widths(shafts, mask if width_map is None else width_map, width_level)
    keep = counted_shafts(shafts, widths, mask.shape, params)
    shafts, widths = [s for s, k in zip(shafts, keep) if k], widths[keep] * px_scale
    notes = [] if um_per_px is not None else [
        "hair widths in pixels: no um_per_px or magnification given, so density and thin-hair ratio are not reported"
    ]
    area = round((mask.size if field_px is None else field_px) * px_scale * px_scale)
    return HairMeasurement(len(shafts), widths, um_per_px, area, mask.shape, thin_um, shafts, notes)


def counted_shafts(
    shafts: list[Shaft], widths: np.ndarray, shape: tuple[int, int], params: TraceParams = TraceParams()
) -> np.ndarray:
    """Which traced shafts are hairs (bool per shaft).

    A "hair" only a few widths long is most often a fragment: a blob, a piece of a thick
    shaft's rim, a stretch of a shaft whose centre line broke. Below ``params.min_length_widths``
    it is dropped; below ``short_length_widths`` it is dropped when it lies within ``near_widths`` widths
    of a longer counted shaft. A hair peeking in at the frame's edge may show only its tip:
    that one always counts.
    """
    if not shafts:
        return np.zeros(0, bool)
    lengths = np.array([shaft.length_px for shaft in shafts])
    border = np.array([_at_border(shaft, shape) for shaft in shafts], bool)
    long_enough = border | (lengths >= params.short_length_widths * widths)
    keep = long_enough.copy()
    short = np.flatnonzero(~long_enough & (lengths >= params.min_length_widths * widths))
    if len(short):
        off_long = np.ones(shape, bool)
        for shaft in (s for s, k in zip(shafts, long_enough) if k):
            points = np.concatenate(shaft.paths)
            off_long[points[:, 0], points[:, 1]] = False
        distance = ndimage.distance_transform_edt(off_long) if not off_long.all() else np.full(shape, np.inf)
        for index in short:
            points = np.concatenate(shafts[index].paths)
            keep[index] = float(np.median(distance[points[:, 0], points[:, 1]])) > params.near_widths * widths[index]
    return keep


def _at_border(shaft: Shaft, shape: tuple[int, int], margin: int = 3) -> bool:
    points = np.concatenate(shaft.paths)
    return bool((points.min(axis=0) < margin).any() or (points[:, 0] >= shape[0] - margin).any()
                or (points[:, 1] >= shape[1] - margin).any())


def shaft_widths(shafts: list[Shaft], hair: np.ndarray, level: float = 0.5) -> np.ndarray:
    """Width of each shaft in px: a low quantile, along its skeleton, of twice the distance to
    the nearest non-hair pixel, on a 2x upsampled map (units of half pixels = widths in px).

    ``hair`` is a bool mask or a 0-1 probability map (its ``level`` contour is the edge).
    """
    if not shafts:
        return np.zeros(0)
    hair = np.asarray(hair)
    height, width = hair.shape
    if hair.dtype == bool:
        up = cv2.resize(hair.astype(np.uint8), (2 * width, 2 * height), interpolation=cv2.INTER_NEAREST) > 0
    else:
        up = cv2.resize(hair.astype(np.float32), (2 * width, 2 * height), interpolation=cv2.INTER_LINEAR) >= level
    # In half pixels, the distance from a shaft's middle to its edge equals its width in px.
    distance = ndimage.distance_transform_edt(up)
    # A skeleton pixel may sit off the middle: take the ridge within half a pixel. Further out
    # the ridge of a neighbouring hair lying alongside would creep in.
    ridge = ndimage.maximum_filter(distance, size=3)
    widths = []
    for shaft in shafts:
        points = np.concatenate(shaft.paths)
        values = ridge[2 * points[:, 0] + 1, 2 * points[:, 1] + 1]
        values = values[values > 0]
        # A low quantile: where the shaft crosses or touches another hair the mask is wider.
        widths.append(float(np.percentile(values, WIDTH_QUANTILE)) if len(values) else shaft.width_px)
    return np.asarray(widths, np.float64)
