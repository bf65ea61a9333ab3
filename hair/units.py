"""From pixels to micrometres: a measured ``um_per_px`` or a trichoscope magnification preset.

A hair's width in pixels says nothing until the picture's scale is known. Give it either
as ``um_per_px`` (best: photograph a ruler or a calibration slide once per scope and
setting) or as a nominal magnification, which picks an entry of :data:`MAGNIFICATION_UM_PER_PX`.

The presets assume what most handheld USB/digital trichoscopes do: the "magnification" is
the one printed on the scope, and the field of view across the frame is about 390 mm
divided by it (Dino-Lite-class spec sheets list about 7.8 mm across at 50x and 1.95 mm at
200x), imaged onto a 640 px wide frame (640 x 480). So um per px = 390000 / M / 640. This is
an approximation; different optics at the same nominal magnification differ by +-30%.
A frame of another width showing the same field scales the preset by 640 / width.

>>> round(um_per_px_for(magnification=50, image_width=640), 1)
12.2
>>> um_per_px_for(image_width=640) is None
True
"""
from __future__ import annotations

#: Field of view across the frame times magnification, in micrometres (see module doc).
FIELD_TIMES_MAGNIFICATION_UM = 390_000.0
#: The frame width the presets refer to (a 640 x 480 trichoscope frame).
PRESET_FRAME_WIDTH = 640
#: um per px of a 640 px wide frame for common trichoscope magnifications.
MAGNIFICATION_UM_PER_PX: dict[int, float] = {
    m: round(FIELD_TIMES_MAGNIFICATION_UM / m / PRESET_FRAME_WIDTH, 2) for m in (20, 30, 40, 50, 60, 70, 100, 150, 200)
}
#: The synthetic generator's scale: 900 px per cm at 640 px wide (datasets.synth.render.PX_PER_CM).
SYNTHETIC_UM_PER_PX = 1e4 / 900.0
#: Hairs thinner than this are counted as thin (vellus-like); trichoscopy uses 30-40 um.
THIN_HAIR_UM = 30.0


class ScaleError(ValueError):
    """A scale setting that cannot be used; the message says which and what to give instead."""


def um_per_px_for(
    um_per_px: float | None = None, magnification: float | None = None, image_width: int = PRESET_FRAME_WIDTH
) -> float | None:
    """Micrometres per pixel of an image ``image_width`` px wide, or None when unknown.

    ``um_per_px`` (the image's own scale) wins over ``magnification``; a magnification that
    is not a preset is interpolated as ``390000 / M / 640`` all the same.
    """
    if um_per_px is not None:
        if not um_per_px > 0:
            raise ScaleError(f"um_per_px must be a positive number of micrometres per pixel, got {um_per_px!r}")
        return float(um_per_px)
    if magnification is None:
        return None
    if not magnification > 0:
        raise ScaleError(f"magnification must be positive (e.g. 50 for a 50x scope), got {magnification!r}")
    if image_width <= 0:
        raise ScaleError(f"image width must be positive, got {image_width}")
    per_frame_px = MAGNIFICATION_UM_PER_PX.get(int(magnification)) if float(magnification).is_integer() else None
    if per_frame_px is None:
        per_frame_px = FIELD_TIMES_MAGNIFICATION_UM / float(magnification) / PRESET_FRAME_WIDTH
    return per_frame_px * PRESET_FRAME_WIDTH / image_width
