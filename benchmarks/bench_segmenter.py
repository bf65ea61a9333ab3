#!/usr/bin/env python
"""How long does the segmenter take per box, against the threshold baseline in the same run?

Times ``MaskRefiner.refine`` on a real close-up (the committed fixture) with all its boxes in one
batched call, the same boxes one call each, and the seed method (``threshold_mask``), each the
median of several repeats after a warm-up. Speed does not depend on the weights' values, so
without ``--weights`` a freshly built refiner (default architecture) is timed.

    python benchmarks/bench_segmenter.py [--weights DIR] [--boxes 8] [--crop-sizes 128 256] [--threads 2]
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.timing import median_ms

FIXTURES = REPO / "tests" / "fixtures" / "scalp-data-mini" / "valid" / "images"
FIXTURE = FIXTURES / "D_18_jpg.rf.0a62b764df3d2ca232c54ec2b789850e.jpg"


def boxes_for(rgb: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Lesion-sized boxes (20-120 px sides, like scalp-data's), spread over the picture."""
    rng = np.random.default_rng(seed)
    height, width = rgb.shape[:2]
    sides = rng.uniform(20, 120, size=(count, 2))
    x1 = rng.uniform(0, width - sides[:, 0])
    y1 = rng.uniform(0, height - sides[:, 1])
    return np.stack([x1, y1, x1 + sides[:, 0], y1 + sides[:, 1]], axis=1).astype(np.float32)


def _one_box_per_call(refiner, rgb: np.ndarray, boxes: np.ndarray) -> None:
    for i in range(len(boxes)):
        refiner.refine(rgb, boxes[i : i + 1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", type=Path, help="segmenter weights (default: a fresh default refiner)")
    parser.add_argument("--image", type=Path, default=FIXTURE)
    parser.add_argument("--boxes", type=int, default=8, help="boxes per picture")
    parser.add_argument("--crop-sizes", type=int, nargs="+", help="time these crop sizes too (fresh refiners)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    import torch

    from core.images import load_image
    from segmentation.model import MaskRefiner
    from segmentation.weak import threshold_mask

    if args.threads:
        torch.set_num_threads(args.threads)
    rgb = load_image(args.image).rgb
    boxes = boxes_for(rgb, args.boxes, seed=0)
    refiners = {}
    if args.weights:
        refiner = MaskRefiner.load(args.weights, device=args.device)
        refiners[f"{args.weights} (crop {refiner.geometry.crop_size})"] = refiner
    else:
        refiner = MaskRefiner().to(args.device).eval()
        refiners[f"default (crop {refiner.geometry.crop_size})"] = refiner
    for size in args.crop_sizes or []:
        if all(r.geometry.crop_size != size for r in refiners.values()):
            refiners[f"crop {size}"] = MaskRefiner(crop_size=size, pretrained=False).to(args.device).eval()

    n = len(boxes)
    results = {"image": str(args.image), "size": list(rgb.shape[:2]), "boxes": n, "threads": torch.get_num_threads(),
               "device": args.device, "ms_per_box": {}}
    timings = results["ms_per_box"]
    timings["threshold baseline"] = median_ms(lambda: [threshold_mask(rgb, b) for b in boxes], args.repeats) / n
    for name, refiner in refiners.items():
        batched = functools.partial(refiner.refine, rgb, boxes)
        one_by_one = functools.partial(_one_box_per_call, refiner, rgb, boxes)
        timings[f"U-Net {name}, batched"] = median_ms(batched, args.repeats) / n
        timings[f"U-Net {name}, one box per call"] = median_ms(one_by_one, args.repeats) / n
    baseline = results["ms_per_box"]["threshold baseline"]
    print(f"{rgb.shape[1]}x{rgb.shape[0]} picture, {n} boxes, {results['threads']} torch threads, {args.device}")
    print(f"{'method':<66} {'ms/box':>8} {'x threshold':>12}")
    for name, ms in results["ms_per_box"].items():
        print(f"{name:<66} {ms:>8.1f} {ms / baseline:>12.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
