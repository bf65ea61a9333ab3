"""How good are the masks: Dice and IoU per region against the dataset's outlines.

Every number comes with its baselines, measured on the same regions, so the U-Net's gain is a
ratio and not a claim:

- ``box``: the mask is the box itself (what you have without a segmenter);
- ``threshold``: the seed method (:func:`segmentation.weak.threshold_mask`);
- ``weak``: threshold + GrabCut (:func:`segmentation.weak.weak_mask`), the weak label itself;
- ``unet``: the refiner.

:func:`evaluate_segmenter` prompts with the ground-truth boxes (the segmenter's own quality);
:func:`evaluate_end_to_end` prompts with a detector's boxes and scores the union of the masks
per picture (what a user gets).

Command line (also for the lead's end-to-end run once detector weights exist)::

    python -m segmentation.evaluate DATASET --weights DIR [--split val] [--detector detector.pt] [--out metrics.json]
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.images import load_image
from datasets.folder import DatasetFolder
from datasets.records import Region, Sample
from evaluation.masks import RegionScore, dice_iou, summarize
from segmentation.data import has_outline
from segmentation.model import MaskRefiner
from segmentation.weak import picture_box_mask, threshold_mask, weak_mask

log = logging.getLogger(__name__)

METHODS = ("unet", "box", "threshold", "weak")
DEFAULT_METHODS = ("unet", "box", "threshold")

#: A detector as the evaluation sees it: RGB picture in, N x 4 xyxy pixel boxes out.
Detect = Callable[[np.ndarray], np.ndarray]


def _scored_regions(sample: Sample, kinds: set[str] | None) -> list[Region]:
    """Regions with a drawn outline (a box-only region has no truth to score a mask against)."""
    return [r for r in sample.regions if has_outline(r) and (kinds is None or r.kind in kinds)]


def evaluate_segmenter(
    refiner: MaskRefiner | None,
    folder: DatasetFolder,
    split: str | None = "val",
    methods: Sequence[str] = DEFAULT_METHODS,
    kinds: Iterable[str] | None = None,
    limit: int | None = None,
    progress: bool = True,
    samples: list[Sample] | None = None,
) -> dict:
    """Per-method Dice and IoU (mean over regions, and per kind) with ground-truth boxes as prompts.

    Returns ``{"dataset", "split", "prompts", "n_images", "n_regions", "methods": {method: {"dice",
    "iou", "n", "per_kind"}}, "gain": {...}}``; ``gain`` holds, for each baseline, the U-Net's Dice
    and IoU divided by the baseline's and minus it. ``samples`` scores those pictures of
    ``folder`` instead of ``split`` (e.g. a held-out part of a folder without a val split).

    >>> refiner, folder = MaskRefiner.load("weights"), DatasetFolder.load("data/scalp")   # doctest: +SKIP
    >>> scores = evaluate_segmenter(refiner, folder, "val")                                # doctest: +SKIP
    >>> scores["methods"]["unet"]["dice"], scores["methods"]["box"]["dice"]                # doctest: +SKIP
    (0.87, 0.83)
    """
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown method(s) {sorted(unknown)}; choose from {', '.join(METHODS)}")
    if "unet" in methods and refiner is None:
        raise ValueError("method 'unet' needs a refiner")
    wanted = set(kinds) if kinds is not None else None
    pool = folder.split(split) if samples is None else samples
    samples = [s for s in pool if _scored_regions(s, wanted)][:limit]
    skipped = sum(1 for s in pool for r in s.regions if not has_outline(r))
    scores: dict[str, list[RegionScore]] = {m: [] for m in methods}
    for sample in tqdm(samples, desc=f"evaluate {split or 'all'}", unit="img", disable=not progress):
        rgb = load_image(folder.image_path(sample)).rgb
        shape = rgb.shape[:2]
        regions = _scored_regions(sample, wanted)
        boxes = np.array([r.box for r in regions], dtype=np.float32)
        predicted = refiner.refine(rgb, boxes, binary=True) if "unet" in methods else None
        for i, region in enumerate(regions):
            truth = folder.region_mask(sample, region, shape)
            for method in methods:
                if method == "unet":
                    mask = predicted[i]
                elif method == "box":
                    mask = picture_box_mask(region.box, shape)
                elif method == "threshold":
                    mask = threshold_mask(rgb, region.box)
                else:
                    mask = weak_mask(rgb, region.box)
                dice, iou = dice_iou(mask, truth)
                scores[method].append(RegionScore(region.kind, dice, iou))
    summaries = {}
    for method, items in scores.items():
        summary = summarize(items)
        summary["per_kind"] = summary.pop("per_group")
        summaries[method] = summary
    return {
        "dataset": folder.name,
        "split": split,
        "prompts": "ground-truth boxes",
        "n_images": len(samples),
        "n_regions": len(next(iter(scores.values()))) if scores else 0,
        "n_regions_without_outline": skipped,
        "methods": summaries,
        "gain": _gains(summaries),
    }


def _gains(summaries: dict) -> dict:
    unet = summaries.get("unet")
    gains = {}
    if not unet or unet["dice"] is None:
        return gains
    for baseline in ("box", "threshold", "weak"):
        base = summaries.get(baseline)
        if not base or base["dice"] is None:
            continue
        for metric in ("dice", "iou"):
            gains[f"{metric}_over_{baseline}"] = unet[metric] / base[metric] if base[metric] else None
            gains[f"{metric}_minus_{baseline}"] = unet[metric] - base[metric]
    return gains


def evaluate_end_to_end(
    refiner: MaskRefiner,
    folder: DatasetFolder,
    detect: Detect,
    split: str | None = "val",
    limit: int | None = None,
    progress: bool = True,
) -> dict:
    """Dice and IoU of the union of refined masks per picture, prompted by ``detect``'s boxes.

    Kind-agnostic: the affected area a user is shown against the union of all outlined regions.
    Pictures with neither a true region nor a detection are counted (``n_both_empty``) but not
    averaged (they would score a perfect 1 for doing nothing). ``pooled_dice`` pools pixels over
    all pictures. The box-only baseline (union of the detected boxes) is reported beside it.
    """
    pool = folder.split(split)
    # A picture counts only when every region in it is outlined: a box is no truth for a mask.
    samples = [s for s in pool if all(has_outline(r) for r in s.regions)][:limit]
    per_method: dict[str, list[tuple[float, float]]] = {"unet": [], "box": []}
    pooled = {m: np.zeros(3, dtype=np.int64) for m in per_method}  # intersection, |pred|, |truth|
    n_boxes = 0
    both_empty = 0
    for sample in tqdm(samples, desc=f"end-to-end {split or 'all'}", unit="img", disable=not progress):
        rgb = load_image(folder.image_path(sample)).rgb
        shape = rgb.shape[:2]
        truth = np.zeros(shape, dtype=bool)
        for region in sample.regions:
            truth |= folder.region_mask(sample, region, shape)
        boxes = np.asarray(detect(rgb), dtype=np.float32).reshape(-1, 4)
        n_boxes += len(boxes)
        unet = refiner.refine(rgb, boxes, binary=True).any(axis=0) if len(boxes) else np.zeros(shape, bool)
        box = np.zeros(shape, dtype=bool)
        for b in boxes:
            box |= picture_box_mask(b, shape)
        if not truth.any() and not unet.any() and not box.any():
            both_empty += 1
            continue
        for method, mask in (("unet", unet), ("box", box)):
            per_method[method].append(dice_iou(mask, truth))
            pooled[method] += (np.count_nonzero(mask & truth), np.count_nonzero(mask), np.count_nonzero(truth))
    methods = {}
    for method, values in per_method.items():
        inter, n_pred, n_truth = pooled[method]
        methods[method] = {
            "dice": float(np.mean([d for d, _ in values])) if values else None,
            "iou": float(np.mean([i for _, i in values])) if values else None,
            "pooled_dice": float(2 * inter / (n_pred + n_truth)) if n_pred + n_truth else None,
            "n": len(values),
        }
    return {
        "dataset": folder.name,
        "split": split,
        "prompts": "detector boxes",
        "n_images": len(samples),
        "n_images_not_outlined": len(pool) - len(samples),
        "n_boxes": n_boxes,
        "n_both_empty": both_empty,
        "methods": methods,
    }


def yolo_detector(weights: str | Path, conf: float = 0.25, imgsz: int = 640, device: str = "cpu") -> Detect:
    """A :data:`Detect` from an ultralytics checkpoint (the detection stage's ``detector.pt``)."""
    from ultralytics import YOLO

    model = YOLO(str(weights))

    def detect(rgb: np.ndarray) -> np.ndarray:
        # ultralytics expects BGR arrays (OpenCV order).
        result = model.predict(rgb[:, :, ::-1], conf=conf, imgsz=imgsz, device=device, verbose=False)[0]
        return result.boxes.xyxy.cpu().numpy()

    return detect


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m segmentation.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--weights", type=Path, required=True, help="segmenter.safetensors or the folder holding it")
    parser.add_argument("--split", default="val")
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), choices=METHODS)
    parser.add_argument("--detector", type=Path, help="ultralytics detector .pt: also score end to end")
    parser.add_argument("--conf", type=float, default=0.25, help="detector confidence threshold")
    parser.add_argument("--imgsz", type=int, default=640, help="detector input size")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--limit", type=int, help="only the first N pictures (quick checks)")
    parser.add_argument("--out", type=Path, help="write the scores as JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    from core.io import atomic_write_json

    refiner = MaskRefiner.load(args.weights, device=args.device)
    folder = DatasetFolder.load(args.dataset)
    report = {"weights": str(args.weights), "sha256": refiner.weights_config.get("sha256")}
    report["gt_boxes"] = evaluate_segmenter(refiner, folder, args.split, args.methods, limit=args.limit)
    if args.detector:
        detect = yolo_detector(args.detector, args.conf, args.imgsz, args.device)
        report["end_to_end"] = evaluate_end_to_end(refiner, folder, detect, args.split, limit=args.limit)
    print(json.dumps(report, indent=2))
    if args.out:
        atomic_write_json(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
