"""``HairMeter``: the pipeline's one door to hair count, thickness, thin-hair ratio and density.

>>> meter = HairMeter.load("weights/hair.safetensors", device="cpu")              # doctest: +SKIP
>>> measurement = meter.measure(rgb, magnification=50)                            # doctest: +SKIP
>>> analysis.hair = measurement.to_dict()                                         # doctest: +SKIP
>>> overlay = hair.draw.draw_hairs(rgb, measurement)                              # doctest: +SKIP

Pictures are measured in a *frame*: the picture resized to 640 px wide, the trichoscope
frame the network was trained at (or, for shafts far wider than it was trained on, a smaller
working frame, see :meth:`HairMeter.probabilities`; numbers are still reported in 640 px
frame pixels). Roboflow exports stretch 640 x 480 scope frames to 640 x 640; give ``native_aspect=4/3`` and the frame is un-stretched to 640 x 480
first, so shafts are measured in square pixels and the field area is right. Pixel numbers
in the record (``thickness_px``, ``um_per_px``) are pixels of that frame; for the 640 px
wide pictures scopes save, these are the picture's own pixels.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy import ndimage
from skimage.morphology import skeletonize

from core.weights import short_hash
from hair.measure import HairMeasurement, measure_hairs
from hair.model import HairNet, check_rgb
from hair.shafts import TraceParams
from hair.units import THIN_HAIR_UM, um_per_px_for

#: Width of the frame pictures are measured in: the scope frame the network learned on.
FRAME_WIDTH = 640


@dataclass
class Frame:
    """A picture brought to the working frame, and how to get back."""

    rgb: np.ndarray  # the working frame
    scale_x: float  # working px per picture px, across
    scale_y: float  # working px per picture px, down
    px_scale: float = 1.0  # reference-frame (640 px wide) px per working px


def to_frame(rgb: np.ndarray, frame_width: int = FRAME_WIDTH, native_aspect: float | None = None) -> Frame:
    """Resize a picture to a frame ``frame_width`` px wide (``native_aspect`` = width / height
    of the scope's own frame, e.g. 4/3, undoes a stretch to another aspect)."""
    rgb = check_rgb(rgb)
    height, width = rgb.shape[:2]
    frame_height = round(frame_width / native_aspect) if native_aspect else round(height * frame_width / width)
    px_scale = FRAME_WIDTH / frame_width
    if (frame_height, frame_width) == (height, width):
        return Frame(rgb, 1.0, 1.0, px_scale)
    interpolation = cv2.INTER_AREA if frame_width < width else cv2.INTER_LINEAR
    resized = cv2.resize(rgb, (frame_width, frame_height), interpolation=interpolation)
    return Frame(resized, frame_width / width, frame_height / height, px_scale)


class HairMeter:
    """Hair shafts of a close-up: mask, centre lines, count, widths, density.

    Args:
        net: the trained :class:`~hair.model.HairNet`.
        native_aspect: width / height of the scope's frame when pictures come stretched (4/3
            for Roboflow's 640 x 640 exports of 640 x 480 frames); None measures them as given.
        thin_um: thin-hair threshold in micrometres.
        params: shaft tracing settings.
        working_width: width of the frame the network and the tracer work in, or ``"auto"``
            (the default): chosen per picture from its median shaft width in the 640 px frame
            (see :meth:`probabilities`). 640 suits scopes near the generator's 55x (shafts 2-12
            px across a 640 px frame); for strongly magnifying scopes, whose shafts are 20-40 px
            across, a smaller working frame brings them back to the widths the network learned.
            Results are always reported in pixels of the 640 px reference frame.
    """

    def __init__(
        self,
        net: HairNet,
        native_aspect: float | None = None,
        thin_um: float = THIN_HAIR_UM,
        params: TraceParams = TraceParams(),
        working_width: int | str = "auto",
    ) -> None:
        if working_width != "auto" and not (isinstance(working_width, int)
                                            and MIN_WORKING_WIDTH <= working_width <= FRAME_WIDTH):
            raise ValueError(f"working_width must be 'auto' or {MIN_WORKING_WIDTH}-{FRAME_WIDTH} px, got {working_width!r}")
        self.net = net.eval()
        self.native_aspect = native_aspect
        self.thin_um = float(thin_um)
        self.params = params
        self.working_width = working_width

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", **settings) -> HairMeter:
        """The meter of ``hair.safetensors`` (a file, or a folder holding it) and its config.

        ``settings`` are the constructor's keyword arguments (``native_aspect``, ``thin_um``...).
        """
        return cls(HairNet.load(path, device=device), **settings)

    @property
    def config(self) -> dict:
        return getattr(self.net, "weights_config", self.net.config())

    @property
    def sha256(self) -> str:
        """``sha256:<hex>`` of the weight file (what every Analysis records); empty when untrained."""
        return short_hash(self.config)

    def probabilities(self, rgb: np.ndarray) -> tuple[Frame, np.ndarray, np.ndarray]:
        """The working frame and its hair and centre-line probability maps (0 on blank margins).

        With ``working_width="auto"`` the picture is first looked at in a PROBE_WIDTH frame for
        its median shaft width; when that is wider than the network learned (above
        SCALE_TRIGGER_PX in 640 px frame pixels), it is measured in the frame where the median
        becomes TRAINED_MEDIAN_WIDTH_PX, else in the 640 px frame.
        """
        rgb = check_rgb(rgb)
        width = self.working_width
        if width == "auto":
            probe, hair, centerline = self._frame_maps(rgb, PROBE_WIDTH)
            median = median_shaft_width(hair > self.net.threshold)
            width = working_width_for(None if median is None else median * probe.px_scale)
            if width == PROBE_WIDTH:
                return probe, hair, centerline  # the probe is already that frame
        return self._frame_maps(rgb, width)

    def _frame_maps(self, rgb: np.ndarray, width: int) -> tuple[Frame, np.ndarray, np.ndarray]:
        frame = to_frame(rgb, width, self.native_aspect)
        hair, centerline = self.net.probabilities(frame.rgb)
        top, bottom, left, right = scalp_window(frame.rgb)
        if (top, bottom, left, right) != (0, hair.shape[0], 0, hair.shape[1]):
            # Blank margins have no hairs, and their edge is no shaft.
            keep = np.zeros(hair.shape, bool)
            keep[top + 2 : bottom - 2, left + 2 : right - 2] = True
            hair, centerline = np.where(keep, hair, 0.0), np.where(keep, centerline, 0.0)
        return frame, hair, centerline

    def mask(self, rgb: np.ndarray) -> np.ndarray:
        """Hair mask (H x W bool) at the picture's own size."""
        rgb = check_rgb(rgb)
        _, hair, _ = self.probabilities(rgb)
        height, width = rgb.shape[:2]
        if hair.shape != (height, width):
            hair = cv2.resize(hair, (width, height), interpolation=cv2.INTER_LINEAR)
        return hair > self.net.threshold

    def measure(
        self, rgb: np.ndarray, um_per_px: float | None = None, magnification: float | None = None
    ) -> HairMeasurement:
        """Count and measure the hairs of a close-up.

        Args:
            rgb: H x W x 3 uint8 picture.
            um_per_px: micrometres per pixel *of this picture* (across), if calibrated.
            magnification: else the scope's nominal magnification (see :mod:`hair.units`).
                With neither, widths are reported in pixels and density is null.
        """
        rgb = check_rgb(rgb)
        frame, hair, centerline = self.probabilities(rgb)
        return self.measure_maps(rgb.shape[1], frame, hair, centerline, um_per_px, magnification)

    def measure_maps(
        self,
        picture_width: int,
        frame: Frame,
        hair: np.ndarray,
        centerline: np.ndarray,
        um_per_px: float | None = None,
        magnification: float | None = None,
    ) -> HairMeasurement:
        """:meth:`measure` from probability maps already computed (see :meth:`probabilities`)."""
        scale = um_per_px_for(um_per_px, magnification, picture_width)
        # um per pixel of the 640 px reference frame, in which everything is reported.
        reference_um_per_px = None if scale is None else scale * picture_width / FRAME_WIDTH
        top, bottom, left, right = scalp_window(frame.rgb)
        measurement = measure_hairs(
            hair > self.net.threshold,
            reference_um_per_px,
            centerline=centerline > self.net.centerline_threshold,
            width_map=hair,
            thin_um=self.thin_um,
            params=self.params,
            field_px=(bottom - top) * (right - left),
            width_level=self.net.width_threshold,
            px_scale=frame.px_scale,
        )
        frame_h, frame_w = hair.shape
        measurement.picture_shape = (round(frame_h / frame.scale_y), round(frame_w / frame.scale_x))
        return measurement


#: Working frame: a picture whose median shaft is wider than SCALE_TRIGGER_PX (640 px frame
#: pixels; the generator draws 2-12 px, training zooms reach about 3x) is worked on in a frame
#: where that median becomes TRAINED_MEDIAN_WIDTH_PX, the median width of the synthetic scenes.
#: The width is read in a PROBE_WIDTH frame: at 640 px the network splits very thick real
#: shafts into their two dark rims, which reads them as thin (seen on scalp-data *train*
#: pictures: their median grows from 12-14 px at 640 to 14-19 px at 480, while synthetic
#: scenes read the same at both); at 480 px synthetic 5-10 px shafts still read 7.5-11 px.
PROBE_WIDTH = 480
SCALE_TRIGGER_PX = 14.0
TRAINED_MEDIAN_WIDTH_PX = 7.5
MIN_WORKING_WIDTH = 160
#: Shafts are sampled for the median width only where the mask is at least this many px.
MIN_SHAFT_PIXELS = 50


def median_shaft_width(mask: np.ndarray) -> float | None:
    """Median shaft width (px) of a hair mask: twice the distance to the edge along its skeleton
    (quick: no tracing); None when there is hardly any hair."""
    if mask.sum() < MIN_SHAFT_PIXELS:
        return None
    skeleton = skeletonize(mask)
    values = ndimage.distance_transform_edt(mask)[skeleton]
    return float(2.0 * np.median(values)) if len(values) else None


def working_width_for(median_px: float | None) -> int:
    """The working frame width in which a median shaft of ``median_px`` (reference px) becomes
    about TRAINED_MEDIAN_WIDTH_PX; the 640 px frame up to SCALE_TRIGGER_PX or when unknown."""
    if median_px is None or not np.isfinite(median_px) or median_px <= SCALE_TRIGGER_PX:
        return FRAME_WIDTH
    wanted = FRAME_WIDTH * TRAINED_MEDIAN_WIDTH_PX / median_px
    return int(np.clip(round(wanted / 32) * 32, MIN_WORKING_WIDTH, FRAME_WIDTH))


def suggest_working_width(meter: HairMeter, pictures: Iterable[np.ndarray]) -> tuple[int, float]:
    """One working width for a whole dataset (one scope, one magnification) and the median
    shaft width (reference px) it is based on: the median over the pictures of their median
    shaft width in the 640 px frame. Use unlabelled pictures (a train split), not scored ones.
    """
    widths = []
    for rgb in pictures:
        _, hair, _ = meter._frame_maps(check_rgb(rgb), FRAME_WIDTH)
        width = median_shaft_width(hair > meter.net.threshold)
        if width is not None:
            widths.append(width)
    median = float(np.median(widths)) if widths else float("nan")
    return working_width_for(median), median


def scalp_window(rgb: np.ndarray, level: float = 235.0, spread: float = 10.0) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the part of the frame that shows scalp: blank margins off.

    Some scope apps save frames with white strips along an edge (scalp-data has pictures
    with a 54 px strip at the bottom and 20 px at the right); counting them as scalp would
    lower the density, and their edge looks like a shaft.
    """
    grey = rgb.mean(axis=2)
    height, width = grey.shape

    def blank(lines: np.ndarray) -> bool:
        return bool(lines.mean() >= level and lines.std() <= spread)

    top, bottom, left, right = 0, height, 0, width
    while top < bottom - 1 and blank(grey[top]):
        top += 1
    while bottom - 1 > top and blank(grey[bottom - 1]):
        bottom -= 1
    while left < right - 1 and blank(grey[top:bottom, left]):
        left += 1
    while right - 1 > left and blank(grey[top:bottom, right - 1]):
        right -= 1
    return top, bottom, left, right
