"""Synthetic close-ups with per-hair truth for training and checking the hair meter.

``datasets.synth.render_scalp`` draws the picture and keeps, per visible strand, its id map,
its exact width and its centre line (through the places where another hair lies on top of
it); :func:`render_hair_scene` adds the centre-line target the network learns, drawn from
those polylines, so two hairs lying side by side keep two lines although their masks merge.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from datasets.synth import render as synth_render
from datasets.synth.render import Subject, SynthScalp

#: Width of the centre-line target in px at 640 px frames: thin enough that hairs lying
#: side by side keep apart, thick enough to learn.
CENTERLINE_PX = 3
_SHIFT = 4


@dataclass
class HairScene:
    """A rendered close-up and its hair truth, at the rendered size."""

    rgb: np.ndarray  # H x W x 3 uint8
    mask: np.ndarray  # H x W bool, every visible hair pixel
    centerline: np.ndarray  # H x W bool, centre lines of the visible strands (3 px wide)
    ids: np.ndarray  # H x W int32, 1..count for the strand on top, 0 elsewhere
    widths_px: np.ndarray  # exact drawn width of each visible strand (float, px)
    polylines: list[np.ndarray]  # per visible strand, N x 2 float32 (x, y) from root outwards
    scalp: SynthScalp | None = None  # None when read back from disk

    @property
    def count(self) -> int:
        return len(self.widths_px)


def render_hair_scene(
    rng: np.random.Generator,
    size: tuple[int, int] = (640, 480),
    subject: Subject | None = None,
    grades: dict[str, int] | None = None,
) -> HairScene:
    """Render one synthetic close-up with the hair truth the meter is trained and checked on.

    >>> scene = render_hair_scene(np.random.default_rng(0), (320, 240))
    >>> scene.mask.shape, scene.count == scene.scalp.hair.count
    ((240, 320), True)
    """
    scalp = synth_render.render_scalp(rng, size, subject, grades)
    truth = scalp.hair
    mask = truth.mask
    centerline = draw_centerlines(np.zeros(mask.shape, np.uint8), truth.polylines)
    reach = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    widths = np.asarray(truth.thickness_px, np.float64)
    polylines = [p.astype(np.float32) for p in truth.polylines]
    return HairScene(scalp.rgb, mask, (centerline > 0) & reach, truth.ids, widths, polylines, scalp)


@functools.cache
def drawn_width(thickness: int) -> int:
    """Pixels across a straight OpenCV polyline drawn with ``thickness``: OpenCV draws a
    thickness ``t`` line ``t + 1`` (even ``t``) or ``t + 2`` (odd ``t``) pixels wide."""
    canvas = np.zeros((4 * thickness + 16, 32), np.uint8)
    y = canvas.shape[0] // 2
    points = np.array([[[0, y << _SHIFT]], [[31 << _SHIFT, y << _SHIFT]]], np.int32)
    cv2.polylines(canvas, [points], False, 1, int(thickness), cv2.LINE_8, _SHIFT)
    return int(canvas[:, 16].sum())


def draw_centerlines(canvas: np.ndarray, polylines: list[np.ndarray], width_px: int = CENTERLINE_PX) -> np.ndarray:
    """Draw polylines (x, y) onto ``canvas`` (uint8, in place) as lines ``width_px`` across."""
    thickness = max([t for t in range(1, width_px + 1) if drawn_width(t) <= width_px] or [1])
    for points in polylines:
        fixed = np.round(np.asarray(points, np.float64) * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [fixed], False, 1, thickness, cv2.LINE_8, _SHIFT)
    return canvas
