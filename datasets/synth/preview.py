"""Contact sheets of synthetic close-ups with their region boxes, for people to look at.

>>> sheet = contact_sheet(seed=0, rows=1, columns=2, size=(320, 240))
>>> sheet.shape
(240, 640, 3)
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from core.taxonomy import INDICATORS
from datasets.synth.render import SynthScalp, render_scalp

#: Box colour per region kind (RGB), one per indicator in taxonomy order.
KIND_COLOURS: dict[str, tuple[int, int, int]] = dict(zip(INDICATORS, [
    (255, 255, 255), (255, 200, 0), (255, 40, 40), (255, 0, 255), (0, 200, 255), (40, 255, 40)]))
_SHORT = {"microkeratin": "mk", "sebum": "sb", "erythema_between_follicles": "eb",
          "follicular_erythema_pustule": "fp", "dandruff": "dd", "hair_loss": "hl"}


def draw_regions(scalp: SynthScalp, width: int | None = None) -> np.ndarray:
    """The picture (resized to ``width`` px wide) with each region's box and a caption of
    the six grades, the hair count and the Low/Mid/High hair-loss grade."""
    canvas = scalp.rgb
    factor = 1.0 if width is None else width / canvas.shape[1]
    if factor != 1.0:
        canvas = cv2.resize(canvas, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    else:
        canvas = canvas.copy()
    for region in scalp.regions:
        x1, y1, x2, y2 = (round(v * factor) for v in region.box)
        colour = KIND_COLOURS[region.kind]
        cv2.rectangle(canvas, (x1, y1), (max(x1, x2 - 1), max(y1, y2 - 1)), colour, 1)
        label = _SHORT[region.kind] + (f"/{region.grade}" if region.grade else "")
        cv2.putText(canvas, label, (x1 + 2, y1 + 11), cv2.FONT_HERSHEY_SIMPLEX, 0.35, colour, 1, cv2.LINE_AA)
    grades = " ".join(f"{_SHORT[name]}{scalp.indicators[name]}" for name in INDICATORS)
    caption = f"{grades}  hairs {scalp.hair.count}  loss {scalp.hair_loss}"
    cv2.rectangle(canvas, (0, canvas.shape[0] - 16), (canvas.shape[1], canvas.shape[0]), (0, 0, 0), -1)
    cv2.putText(canvas, caption, (4, canvas.shape[0] - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1,
                cv2.LINE_AA)
    return canvas


def contact_sheet(
    seed: int = 0,
    rows: int = 3,
    columns: int = 4,
    size: tuple[int, int] = (640, 480),
    tile_width: int | None = None,
    boxes: bool = True,
    clear: bool = False,
) -> np.ndarray:
    """A rows x columns grid (RGB uint8) of fresh synthetic close-ups, tiles ``tile_width`` wide
    (``clear``: the detector's sanity layout, see :func:`render_scalp`)."""
    rng = np.random.default_rng(seed)
    tiles = []
    for _ in range(rows * columns):
        scalp = render_scalp(rng, size, clear=clear)
        if boxes:
            tiles.append(draw_regions(scalp, tile_width))
        else:
            width = tile_width or size[0]
            tiles.append(cv2.resize(scalp.rgb, (width, round(scalp.rgb.shape[0] * width / size[0])),
                                    interpolation=cv2.INTER_AREA))
    grid = [np.hstack(tiles[r * columns : (r + 1) * columns]) for r in range(rows)]
    return np.vstack(grid)


def write_contact_sheet(path: Path, seed: int = 0, tile_width: int = 320, boxes: bool = True,
                        clear: bool = False) -> Path:
    """Render a 4 x 3 sheet of 640 x 480 close-ups, shown ``tile_width`` px wide, as a PNG.

    >>> write_contact_sheet(Path("docs/synthetic_examples.png"))   # doctest: +SKIP
    >>> write_contact_sheet(Path("docs/synthetic_clear_examples.png"), clear=True)   # doctest: +SKIP
    """
    sheet = contact_sheet(seed, tile_width=tile_width, boxes=boxes, clear=clear)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write the contact sheet to {path}")
    return path
