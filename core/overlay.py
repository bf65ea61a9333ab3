"""Drawing an :class:`~core.analysis.Analysis` over its image (used by ``Analysis.plot``).

Pure PIL + numpy so batch runs stay fast and no font is ever downloaded (Pillow's built-in
font is used).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from core.taxonomy import INDICATOR_GRADE_NAMES, INDICATORS

if TYPE_CHECKING:
    from core.analysis import Analysis

MASK_ALPHA = 0.45
PANEL_WIDTH = 300  # legend panel width at a 640 px tall image; scales with the image
#: Hair shafts (``Analysis.hair["shafts"]``): ordinary hairs, and thin (vellus-like) hairs, which stand out.
HAIR_COLOR = (40, 200, 230)
THIN_COLOR = (255, 60, 200)


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(9, size))


def draw_hair_shafts(draw: ImageDraw.ImageDraw, record: dict, scale_x: float, scale_y: float, unit: float) -> None:
    """Trace every counted hair of a record (thin ones in magenta, a little thicker)."""
    for shaft in record.get("shafts") or []:
        color = THIN_COLOR if shaft.get("thin") else HAIR_COLOR
        line = max(1, round((3 if shaft.get("thin") else 2) * unit))
        for path in shaft["paths"]:
            if len(path) >= 2:
                draw.line([(x * scale_x, y * scale_y) for x, y in path], fill=color, width=line)


def draw_analysis(analysis: Analysis, rgb: np.ndarray, legend: bool = True) -> np.ndarray:
    from core.analysis import DISCLAIMER, GRADE_COLORS, HAIR_LOSS_COLORS, SHORT_NAMES, grade_color, hair_label

    base = np.asarray(rgb, dtype=np.float32).copy()
    height, width = base.shape[:2]
    scale = width / analysis.size[0] if analysis.size[0] else 1.0
    unit = max(height, width) / 640
    # Masks first, tinted by grade, so boxes and text stay readable on top.
    for region in analysis.regions:
        mask = region.mask()
        if mask is None:
            continue
        if mask.shape != (height, width):
            mask = np.asarray(Image.fromarray(mask).resize((width, height), Image.Resampling.NEAREST))
        color = np.asarray(grade_color(region, analysis), dtype=np.float32)
        base[mask] = (1 - MASK_ALPHA) * base[mask] + MASK_ALPHA * color
    canvas = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    if analysis.hair:
        draw_hair_shafts(draw, analysis.hair, scale, scale, unit)
    small = _font(round(12 * unit))
    line = max(1, round(2 * unit))
    for region in analysis.regions:
        x1, y1, x2, y2 = (v * scale for v in region.box)
        color = grade_color(region, analysis)
        draw.rectangle((x1, y1, x2, y2), outline=color, width=line)
        text = f"{SHORT_NAMES.get(region.kind, region.kind)}{' ' + region.grade if region.grade else ''} {region.confidence:.2f}"
        tx, ty = x1, max(0, y1 - small.size - 4)
        box = draw.textbbox((tx, ty), text, font=small)
        draw.rectangle((box[0] - 2, box[1] - 1, box[2] + 2, box[3] + 1), fill=color)
        draw.text((tx, ty), text, fill=(255, 255, 255), font=small)
    if not analysis.is_scalp:
        shade = Image.new("RGBA", canvas.size, (40, 40, 40, 150))
        canvas = Image.alpha_composite(canvas.convert("RGBA"), shade).convert("RGB")
        draw = ImageDraw.Draw(canvas)
        big = _font(round(22 * unit))
        draw.text((width / 2, height / 2), "Not graded: this does not look\nlike a scalp photo", fill=(255, 255, 255),
                  font=big, anchor="mm", align="center")
    if not legend:
        return np.asarray(canvas)

    panel_w = round(PANEL_WIDTH * max(height, 480) / 640)
    panel = Image.new("RGB", (panel_w, height), (250, 250, 250))
    pen = ImageDraw.Draw(panel)
    ph = max(height, 480) / 640
    title, body = _font(round(17 * ph)), _font(round(13 * ph))
    y = round(10 * ph)
    pad = round(12 * ph)

    def write(text: str, font=body, color=(30, 30, 30)) -> None:
        nonlocal y
        pen.text((pad, y), text, fill=color, font=font)
        y += font.size + round(6 * ph)

    write("scalpscope", title)
    if not analysis.is_scalp:
        write(f"not a scalp photo (score {analysis.scalp_score:.2f})")
        write("nothing was graded")
    else:
        write(f"view: {analysis.view or '?'} ({(analysis.view_confidence or 0):.2f})")
        if analysis.hair_loss is not None:
            grade = str(analysis.hair_loss.grade)
            write(f"hair loss: {grade.upper()} ({analysis.hair_loss.confidence:.2f})", title, HAIR_LOSS_COLORS.get(grade, (0, 0, 0)))
        dot = round(10 * ph)
        for name in INDICATORS:
            result = analysis.indicators.get(name)
            if result is None:
                continue
            g = int(result.grade)
            pen.ellipse((pad, y + 2, pad + dot, y + 2 + dot), fill=GRADE_COLORS[g])
            pen.text((pad + dot + round(6 * ph), y), f"{SHORT_NAMES[name]}: {g} {INDICATOR_GRADE_NAMES[g]} ({result.confidence:.2f})",
                     fill=(30, 30, 30), font=body)
            y += body.size + round(6 * ph)
        if analysis.hair and analysis.hair.get("count") is not None:
            write(hair_label(analysis.hair))
        write(f"regions: {len(analysis.regions)}")
    # The disclaimer sits at the bottom of every overlay, wrapped to the panel.
    words, lines, current = DISCLAIMER.split(), [], ""
    for word in words:
        trial = f"{current} {word}".strip()
        if pen.textlength(trial, font=body) > panel_w - 2 * pad:
            lines.append(current)
            current = word
        else:
            current = trial
    lines.append(current)
    y = height - (len(lines)) * (body.size + 4) - pad
    for text in lines:
        pen.text((pad, y), text, fill=(120, 40, 40), font=body)
        y += body.size + 4
    out = Image.new("RGB", (width + panel_w, height), (255, 255, 255))
    out.paste(canvas, (0, 0))
    out.paste(panel, (width, 0))
    return np.asarray(out)
