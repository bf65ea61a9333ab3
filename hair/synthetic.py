"""Synthetic close-ups with per-hair truth for training and checking the hair meter.

``datasets.synth.render_scalp`` draws the picture and keeps, per visible strand, its id map
and its nominal width. Training the shaft tracer also needs each strand's centre line
(through the places where another hair lies on top of it), which the renderer does not
return; :func:`render_hair_scene` captures the strands as the renderer hands them to its
hair painter, without changing a single drawn pixel.

Two facts about the generator's truth are handled here and reported upstream:

- ``thickness_px`` records the thickness given to OpenCV, but OpenCV draws a thick line
  wider than that (a 6 px line is 7 px across, a 7 px line 9 px); :func:`drawn_width` gives
  the width actually on screen, which is what a measurement can see.
- The centre lines are drawn from the strand polylines, so two hairs lying side by side
  keep two lines although their masks merge.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from datasets.synth import render as synth_render
from datasets.synth.hair import Strand, drawn_width
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
    widths_px: np.ndarray  # drawn width of each visible strand (OpenCV's, see drawn_width)
    nominal_px: np.ndarray  # the width the generator asked for (its thickness_px)
    polylines: list[np.ndarray]  # per visible strand, N x 2 float32 (x, y) from root outwards
    scalp: SynthScalp | None = None  # None when read back from disk

    @property
    def count(self) -> int:
        return len(self.widths_px)


@contextlib.contextmanager
def _captured_strands() -> Iterator[list[list[Strand]]]:
    """Record the strands ``render_scalp`` hands to its hair painter (which is left as is)."""
    captured: list[list[Strand]] = []
    original = synth_render.draw_hairs

    def recording(strands, shape, blur_sigma):  # type: ignore[no-untyped-def]
        captured.append(list(strands))
        return original(strands, shape, blur_sigma)

    synth_render.draw_hairs = recording
    try:
        yield captured
    finally:
        synth_render.draw_hairs = original


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
    with _captured_strands() as captured:
        scalp = synth_render.render_scalp(rng, size, subject, grades)
    strands = captured[-1]
    truth = scalp.hair
    mask = truth.mask
    # HairTruth numbers visible strands 1..count in drawing-index order; recover that order.
    visible = _visible_indices(strands, truth, mask.shape)
    centerline = np.zeros(mask.shape, np.uint8)
    for index in visible:
        _draw_centerline(centerline, strands[index], mask.shape)
    reach = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    nominal = np.array([strands[index].width for index in visible], np.int64)  # OpenCV thickness asked for
    widths = np.asarray(truth.thickness_px, np.int64)  # the generator records the drawn width
    polylines = [strands[index].points.astype(np.float32) for index in visible]
    return HairScene(scalp.rgb, mask, (centerline > 0) & reach, truth.ids, widths, nominal, polylines, scalp)


def _visible_indices(strands: list[Strand], truth, shape: tuple[int, int]) -> list[int]:  # type: ignore[no-untyped-def]
    """Indices into ``strands`` of the visible ones, in the order HairTruth numbers them.

    The renderer keeps the drawing-order index of every visible strand sorted, so the k-th
    visible strand is the k-th in-frame strand whose id shows; recompute which those are by
    redrawing the id map (cheap: LINE_8, no blur).
    """
    ids = np.zeros(shape, np.int32)
    height, width = shape
    near = [i for i, s in enumerate(strands) if not s.defocused and _touches(s, width, height)]
    far = [i for i, s in enumerate(strands) if s.defocused and _touches(s, width, height)]
    for index in near + far:
        points = np.round(strands[index].points * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(ids, [points], False, index + 1, strands[index].width, cv2.LINE_8, _SHIFT)
    visible = np.flatnonzero(np.bincount(ids.ravel(), minlength=len(strands) + 1)[1:])
    if len(visible) != truth.count:
        raise RuntimeError(
            f"redrawn id map shows {len(visible)} strands, the renderer reports {truth.count}: "
            "datasets/synth/hair.py changed how it draws; update hair/synthetic.py to match"
        )
    return [int(i) for i in visible]


def _touches(strand: Strand, width: int, height: int) -> bool:
    low, high = strand.points.min(axis=0) - strand.width, strand.points.max(axis=0) + strand.width
    return not (high[0] < 0 or high[1] < 0 or low[0] >= width or low[1] >= height)


def _draw_centerline(canvas: np.ndarray, strand: Strand, shape: tuple[int, int]) -> None:
    draw_centerlines(canvas, [strand.points], CENTERLINE_PX)


def draw_centerlines(canvas: np.ndarray, polylines: list[np.ndarray], width_px: int = CENTERLINE_PX) -> np.ndarray:
    """Draw polylines (x, y) onto ``canvas`` (uint8, in place) as lines ``width_px`` across."""
    thickness = max([t for t in range(1, width_px + 1) if drawn_width(t) <= width_px] or [1])
    for points in polylines:
        fixed = np.round(np.asarray(points, np.float64) * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [fixed], False, 1, thickness, cv2.LINE_8, _SHIFT)
    return canvas
