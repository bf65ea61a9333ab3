"""Hairs over a picture: every counted shaft traced, thin ones highlighted, and a one-line label.

The drawing itself is ``core.overlay``'s (the pipeline's overlay draws ``Analysis.hair`` the
same way); this module draws a :class:`~hair.measure.HairMeasurement` or its record over any
picture, for the meter's own figures and checks.

>>> import numpy as np, cv2
>>> from hair.measure import measure_hairs
>>> mask = np.zeros((120, 160), np.uint8)
>>> _ = cv2.line(mask, (10, 60), (150, 60), 1, 6)
>>> rgb = np.full((120, 160, 3), 200, np.uint8)
>>> draw_hairs(rgb, measure_hairs(mask > 0, um_per_px=10.0)).shape
(120, 160, 3)
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from core.analysis import hair_label
from core.overlay import HAIR_COLOR, THIN_COLOR, draw_hair_shafts
from hair.measure import HairMeasurement

__all__ = ["HAIR_COLOR", "THIN_COLOR", "draw_hairs", "hair_label"]


def draw_hairs(rgb: np.ndarray, measurement: HairMeasurement, label: bool = True) -> np.ndarray:
    """A copy of ``rgb`` with each counted hair traced (thin ones in magenta, drawn thicker).

    The record's coordinates are pixels of the measured picture; they are scaled to ``rgb``'s
    size, so the picture may be the original or any resized copy. With ``label`` a one-line
    summary is written in the top-left corner (count, median thickness, thin share).
    """
    canvas = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    draw = ImageDraw.Draw(canvas)
    record = measurement.to_dict()
    picture_h, picture_w = measurement.picture_shape or measurement.frame_shape
    if not picture_h or not picture_w:
        picture_h, picture_w = canvas.height, canvas.width
    unit = max(canvas.height, canvas.width) / 640
    draw_hair_shafts(draw, record, canvas.width / picture_w, canvas.height / picture_h, unit)
    if label:
        font = ImageFont.load_default(size=max(9, round(14 * unit)))
        text = hair_label(record)
        pad = max(2, round(4 * unit))
        box = draw.textbbox((pad, pad), text, font=font)
        draw.rectangle((box[0] - pad // 2, box[1] - pad // 2, box[2] + pad // 2, box[3] + pad // 2), fill=(20, 20, 20))
        draw.text((pad, pad), text, fill=(255, 255, 255), font=font)
    return np.array(canvas)  # writable, unlike np.asarray of a PIL image
