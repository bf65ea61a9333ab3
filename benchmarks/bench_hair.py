#!/usr/bin/env python
"""How long does the hair meter take per close-up, network and shaft tracing apart?

Times ``HairMeter.probabilities`` (the U-Net on the 640 px frame) and ``measure_maps`` (masks,
skeleton, grouping, widths) on a real close-up (the committed fixture, un-stretched to 640 x 480),
each the median of several repeats after a warm-up. Network speed does not depend on the
weights' values, so without ``--weights`` a fresh network is timed (its tracing time is then
meaningless: an untrained mask is noise).

    python benchmarks/bench_hair.py [--weights /work/scratch/hair/final] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.timing import median_ms

FIXTURE = REPO / "tests" / "fixtures" / "scalp-data-mini" / "valid" / "images" / "D_18_jpg.rf.0a62b764df3d2ca232c54ec2b789850e.jpg"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", type=Path, help="hair weights (file or folder); default: a fresh network")
    parser.add_argument("--image", type=Path, default=FIXTURE)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    import torch

    from hair.meter import HairMeter
    from hair.model import HairNet

    if args.threads:
        torch.set_num_threads(args.threads)
    meter = HairMeter.load(args.weights, native_aspect=4 / 3) if args.weights else HairMeter(
        HairNet(pretrained=False), native_aspect=4 / 3)
    rgb = cv2.cvtColor(cv2.imread(str(args.image)), cv2.COLOR_BGR2RGB)
    frame, hair, centerline = meter.probabilities(rgb)
    results = {
        "image": args.image.name,
        "frame": list(frame.rgb.shape[:2]),
        "threads": torch.get_num_threads(),
        "trained": bool(args.weights),
        "network_ms": round(median_ms(lambda: meter.probabilities(rgb), args.repeats), 1),
        "tracing_ms": round(median_ms(lambda: meter.measure_maps(rgb.shape[1], frame, hair, centerline), args.repeats), 1),
    }
    results["total_ms"] = round(results["network_ms"] + results["tracing_ms"], 1)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
