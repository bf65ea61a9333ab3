"""Hairs on the overlay: every counted shaft traced along its skeleton, thin ones highlighted.

``core/overlay.py`` can call :func:`draw_hairs` on the picture before it draws regions, so
masks and boxes stay on top. Pure numpy + PIL, like the rest of the overlay.

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

from hair.measure import HairMeasurement

#: Shaft colours (RGB): ordinary hairs, and thin (vellus-like) hairs, which stand out.
HAIR_COLOR = (40, 200, 230)
THIN_COLOR = (255, 60, 200)


def draw_hairs(rgb: np.ndarray, measurement: HairMeasurement, label: bool = True) -> np.ndarray:
    """A copy of ``rgb`` with each counted hair traced (thin ones in magenta, drawn thicker).

    The shafts were traced in the measuring frame; they are scaled to ``rgb``'s size, so the
    picture may be the original or the frame. With ``label`` a one-line summary is written
    in the top-left corner (count, median thickness, thin share).
    """
    canvas = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    draw = ImageDraw.Draw(canvas)
    height, width = canvas.height, canvas.width
    frame_h, frame_w = measurement.frame_shape if all(measurement.frame_shape) else (height, width)
    sy, sx = height / frame_h, width / frame_w
    unit = max(height, width) / 640
    thin = measurement.thin
    for index, shaft in enumerate(measurement.shafts):
        is_thin = bool(thin[index]) if index < len(thin) else False
        color = THIN_COLOR if is_thin else HAIR_COLOR
        line = max(1, round((3 if is_thin else 2) * unit))
        for path in shaft.paths:
            if len(path) < 2:
                continue
            # Skeleton paths are pixel chains; every 3rd point keeps the line smooth and cheap.
            points = path[:: 3] if len(path) > 6 else path
            if (points[-1] != path[-1]).any():
                points = np.vstack([points, path[-1:]])
            draw.line([(float(c * sx), float(r * sy)) for r, c in points], fill=color, width=line)
    if label:
        _write_label(draw, measurement, unit)
    return np.array(canvas)  # writable, unlike np.asarray of a PIL image


def hair_label(measurement: HairMeasurement | dict) -> str:
    """One line for people: ``41 hairs, median 71 um, thin 7%, 108/cm2`` (or widths in px).

    Takes the measurement or its record (``Analysis.hair``), so the overlay panel can use it.
    """
    record = measurement.to_dict() if isinstance(measurement, HairMeasurement) else measurement
    thickness = record[f"thickness_{record['units']}"]["median"]
    parts = [f"{record['count']} hairs"]
    if thickness is not None:
        parts.append(f"median {thickness:.0f} {record['units']}")  # ASCII: the built-in font has no µ
    if record["thin_ratio"] is not None:
        parts.append(f"thin {100 * record['thin_ratio']:.0f}%")
    if record["density_per_cm2"] is not None:
        parts.append(f"{record['density_per_cm2']:.0f}/cm2")
    return ", ".join(parts)


def _write_label(draw: ImageDraw.ImageDraw, measurement: HairMeasurement, unit: float) -> None:
    font = ImageFont.load_default(size=max(9, round(14 * unit)))
    text = hair_label(measurement)
    pad = max(2, round(4 * unit))
    box = draw.textbbox((pad, pad), text, font=font)
    draw.rectangle((box[0] - pad // 2, box[1] - pad // 2, box[2] + pad // 2, box[3] + pad // 2), fill=(20, 20, 20))
    draw.text((pad, pad), text, fill=(255, 255, 255), font=font)
