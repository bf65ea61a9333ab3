"""Contact sheets that show what the masks look like (the PNGs under ``docs/``).

Each row is one region: its crop with the box, then one tile per method with the mask's outline
and its Dice against the drawn outline. ::

    python -m segmentation.figures weak DATASET --split val --out docs/segmentation_weak_masks.jpg
    python -m segmentation.figures examples DATASET --weights DIR --split val --out docs/segmentation_examples.jpg
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from core.images import load_image
from core.io import atomic_write_bytes
from datasets.folder import DatasetFolder
from evaluation.masks import dice_score
from segmentation.crops import crop_window, cut_window
from segmentation.data import has_outline
from segmentation.weak import picture_box_mask, threshold_mask, weak_mask

TILE = 144
#: method name -> (rgb, box, refined mask or None) -> mask
Method = Callable[[np.ndarray, Sequence[float], np.ndarray | None], np.ndarray]

COLOURS = {"box": (255, 80, 80), "truth": (255, 220, 0), "mask": (0, 255, 90)}


def _tile(rgb: np.ndarray, window: tuple[int, int, int, int], mask: np.ndarray | None, box: Sequence[float],
          colour: tuple[int, int, int], label: str) -> np.ndarray:
    scale = TILE / (window[2] - window[0])
    tile = cv2.resize(cut_window(rgb, window), (TILE, TILE), interpolation=cv2.INTER_LINEAR)
    if mask is None:
        left, top = window[0], window[1]
        x1, y1 = (box[0] - left) * scale, (box[1] - top) * scale
        x2, y2 = (box[2] - left) * scale, (box[3] - top) * scale
        cv2.rectangle(tile, (int(x1), int(y1)), (round(x2), round(y2)), COLOURS["box"], 1)
    else:
        local = cv2.resize(cut_window(mask.astype(np.uint8), window), (TILE, TILE), interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(local, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(tile, contours, -1, colour, 1)
    cv2.putText(tile, label, (3, TILE - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 2, cv2.LINE_AA)
    cv2.putText(tile, label, (3, TILE - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def _header(names: Sequence[str]) -> np.ndarray:
    row = np.full((22, TILE * len(names), 3), 255, np.uint8)
    for i, name in enumerate(names):
        cv2.putText(row, name, (i * TILE + 4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return row


def contact_sheet(
    folder: DatasetFolder,
    methods: dict[str, Method],
    split: str | None = "val",
    rows: int = 8,
    columns: int = 2,
    refine: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    seed: int = 0,
) -> np.ndarray:
    """An RGB sheet of ``rows x columns`` regions picked at random (seeded) from outlined regions."""
    pool = [(s, i) for s in folder.split(split) for i, r in enumerate(s.regions) if has_outline(r)]
    rng = np.random.default_rng(seed)
    picked = [pool[i] for i in rng.choice(len(pool), size=min(rows * columns, len(pool)), replace=False)]
    names = ["image + box", "outline", *methods]
    blocks = []
    for sample, index in picked:
        rgb = load_image(folder.image_path(sample)).rgb
        region = sample.regions[index]
        truth = folder.region_mask(sample, region, rgb.shape[:2])
        window = crop_window(region.box, 0.6, 40)
        refined = refine(rgb, np.array([region.box], np.float32))[0] if refine is not None else None
        tiles = [_tile(rgb, window, None, region.box, COLOURS["box"], region.kind[:14]),
                 _tile(rgb, window, truth, region.box, COLOURS["truth"], "drawn")]
        for method in methods.values():
            mask = method(rgb, region.box, refined)
            tiles.append(_tile(rgb, window, mask, region.box, COLOURS["mask"], f"Dice {dice_score(mask, truth):.2f}"))
        blocks.append(np.hstack(tiles))
    while len(blocks) % columns:
        blocks.append(np.full_like(blocks[0], 255))
    lines = [_side_by_side(blocks[r * columns : (r + 1) * columns]) for r in range(len(blocks) // columns)]
    return np.vstack([_side_by_side([_header(names)] * columns), *lines])


def _side_by_side(blocks: list[np.ndarray], gap: int = 6) -> np.ndarray:
    spacer = np.full((blocks[0].shape[0], gap, 3), 255, np.uint8)
    parts = [blocks[0]]
    for block in blocks[1:]:
        parts += [spacer, block]
    return np.hstack(parts)


def save_figure(rgb: np.ndarray, path: Path) -> None:
    """Write ``rgb`` as PNG or JPEG (by the file's suffix), atomically."""
    suffix = Path(path).suffix.lower() or ".png"
    params = [cv2.IMWRITE_JPEG_QUALITY, 85] if suffix in (".jpg", ".jpeg") else []
    ok, data = cv2.imencode(suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    atomic_write_bytes(Path(path), data.tobytes())


BASELINES: dict[str, Method] = {
    "box": lambda rgb, box, _: picture_box_mask(box, rgb.shape[:2]),
    "threshold": lambda rgb, box, _: threshold_mask(rgb, box),
    "threshold+GrabCut": lambda rgb, box, _: weak_mask(rgb, box),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m segmentation.figures", description=__doc__.split("\n")[0])
    parser.add_argument("sheet", choices=["weak", "examples"])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--weights", type=Path, help="segmenter weights (examples sheet)")
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    folder = DatasetFolder.load(args.dataset)
    if args.sheet == "weak":
        methods = {"threshold": BASELINES["threshold"], "threshold+GrabCut": BASELINES["threshold+GrabCut"]}
        sheet = contact_sheet(folder, methods, args.split, rows=args.rows, seed=args.seed)
    else:
        if args.weights is None:
            parser.error("the examples sheet needs --weights")
        from segmentation.model import MaskRefiner

        refiner = MaskRefiner.load(args.weights)
        methods = {"box": BASELINES["box"], "threshold": BASELINES["threshold"],
                   "U-Net": lambda rgb, box, refined: refined > refiner.threshold}
        sheet = contact_sheet(folder, methods, args.split, rows=args.rows, refine=refiner.refine, seed=args.seed)
    save_figure(sheet, args.out)
    print(f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
