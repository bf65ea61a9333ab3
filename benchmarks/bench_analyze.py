#!/usr/bin/env python
"""End-to-end analysis speed: naive reference vs our pipeline on PyTorch vs on ONNX Runtime.

    python benchmarks/bench_analyze.py [--n 200] [--weights weights] [--threads 0]

One run measures three variants on the same N pictures (synthetic 640x480 close-ups plus the
bundled real samples, cycled), one after the other, each in a fresh subprocess so its peak RSS
is its own:

(a) naive: the hackathon seed's way. The YOLO detector, then per box a torchvision
    ``fcn_resnet50`` on the crop, then a ResNet50 classifier on the picture, one image at a
    time in eager PyTorch. (Their weights are random: no checkpoint can be downloaded here,
    and speed does not depend on the values.)
(b) our Pipeline on PyTorch, batched, with the prefetching loader of ``analyze``;
(c) the same on ONNX Runtime (``python pipeline.py export onnx`` first; done here if missing).

It prints images/s, ms per stage, peak RSS, FLOPs per picture of (c) and the achieved GFLOP/s,
and ends with one machine-readable line:
``onnx_images_per_s=<x> torch_images_per_s=<y> naive_images_per_s=<z> ratio_vs_naive=<x/z> peak_rss_mb=<m>``
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_images(n: int, folder: Path, real_only: bool = False) -> list[Path]:
    """N pictures: synthetic 640x480 close-ups and the real samples, cycled, as JPEG files
    (the samples cropped to 640x480, never stretched).

    The scalp check declines most synthetic close-ups (they do not look like the real training
    pictures), so they only pay for the check; ``real_only`` uses the bundled samples alone,
    where every stage runs on the close-ups.
    """
    import cv2

    from datasets.synth import generate

    sources = []
    if not real_only:
        synth = generate(max(1, n // 2), folder / "synth", seed=11, progress=False, size=(640, 480))
        sources = [synth.image_path(s) for s in synth.samples]
    sources += sorted((REPO / "samples").glob("*.jpg"))
    out = folder / "images"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        rgb = cover_crop(cv2.imread(str(sources[i % len(sources)])), 640, 480)
        path = out / f"{i:05d}.jpg"
        cv2.imwrite(str(path), rgb, [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(path)
    return paths


def cover_crop(bgr, width: int, height: int):
    """Scale to cover ``width`` x ``height`` and cut the middle out: a camera's framing, no distortion."""
    import cv2

    scale = max(width / bgr.shape[1], height / bgr.shape[0])
    resized = cv2.resize(bgr, (round(bgr.shape[1] * scale), round(bgr.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    top, left = (resized.shape[0] - height) // 2, (resized.shape[1] - width) // 2
    return resized[top : top + height, left : left + width]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------- variants (child side)
def run_naive(paths: list[Path], weights: Path) -> dict:
    import numpy as np
    import torch
    import torchvision

    from core.images import load_image
    from detection import Detector

    torch.manual_seed(0)
    detector = Detector.load(weights / "detector.pt")
    segmenter = torchvision.models.segmentation.fcn_resnet50(weights=None, weights_backbone=None, num_classes=2).eval()
    classifier = torchvision.models.resnet50(weights=None, num_classes=3).eval()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    stages = {"detect": 0.0, "segment": 0.0, "classify": 0.0}
    n_boxes = 0
    start = time.perf_counter()
    with torch.no_grad():
        for path in paths:
            rgb = load_image(path).rgb
            t = time.perf_counter()
            found = detector.predict([rgb])[0]
            stages["detect"] += time.perf_counter() - t
            t = time.perf_counter()
            for box in found.boxes.astype(int):
                x1, y1, x2, y2 = box
                crop = rgb[max(0, y1):max(y1 + 1, y2), max(0, x1):max(x1 + 1, x2)]
                tensor = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)[None].float() / 255
                tensor = torch.nn.functional.interpolate(tensor, size=(224, 224), mode="bilinear")
                segmenter((tensor - mean) / std)["out"].argmax(1)
                n_boxes += 1
            stages["segment"] += time.perf_counter() - t
            t = time.perf_counter()
            tensor = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
            tensor = torch.nn.functional.interpolate(tensor, size=(224, 224), mode="bilinear")
            classifier((tensor - mean) / std).softmax(1)
            stages["classify"] += time.perf_counter() - t
    seconds = time.perf_counter() - start
    return {"images_per_s": len(paths) / seconds, "seconds": seconds, "boxes_per_image": round(n_boxes / len(paths), 2),
            "ms_per_stage": {k: round(1000 * v / len(paths), 1) for k, v in stages.items()}}


def run_ours(paths: list[Path], weights: Path, backend: str) -> dict:
    from batch.runner import Item, run_batch
    from pipeline import Pipeline

    pipeline = Pipeline(weights, backend=backend, hair=False)
    assert pipeline.backend == backend, f"asked for {backend}, got {pipeline.backend}"
    items = [Item(p, p.name) for p in paths]
    with tempfile.TemporaryDirectory() as out:
        # warm-up on a few pictures (first calls allocate), then the timed run
        run_batch(pipeline, items[:4], Path(out) / "warm", progress=False, overlay=False)
        timings: dict[str, float] = {}

        class Timed:
            weights_mtime = pipeline.weights_mtime

            @staticmethod
            def analyze_batch(images, names):
                analyses = pipeline.analyze_batch(images, names)
                for stage, ms in analyses[0].timing_ms.items():
                    timings[stage] = timings.get(stage, 0.0) + ms * len(analyses)
                return analyses

        result = run_batch(Timed(), items, Path(out) / "run", progress=False, overlay=False)
    n = len(result.done)
    return {"images_per_s": result.images_per_s, "seconds": result.seconds, "done": n, "failed": len(result.failed),
            "ms_per_stage": {k: round(v / max(n, 1), 1) for k, v in timings.items()}}


def flops_per_image(weights: Path, paths: list[Path]) -> dict:
    """FLOPs of each network for one picture (torch FlopCounterMode), boxes averaged over ``paths``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from core.images import load_image
    from pipeline import Pipeline

    pipeline = Pipeline(weights, backend="torch", hair=False)
    stages = pipeline.stages

    def count(fn) -> float:
        mode = FlopCounterMode(display=False)
        with mode, torch.no_grad():
            fn()
        return float(mode.get_total_flops())

    size = int(stages.gate.config["input_size"])
    gate = count(lambda: stages.gate.extractor(torch.rand(1, 3, size, size) * 255))
    s = stages.grader.size
    classify = count(lambda: stages.grader.model(torch.randn(1, 3, s, s), torch.rand(1, stages.grader.n_mask_channels, s, s)))
    crop = stages.refiner.geometry.crop_size
    per_box = count(lambda: stages.refiner(torch.rand(1, 4, crop, crop)))
    det_model = stages.detector.model.model
    imgsz = stages.detector.imgsz
    detect = count(lambda: det_model(torch.rand(1, 3, imgsz, imgsz)))
    sample = [load_image(p).rgb for p in paths[:: max(1, len(paths) // 40)]]
    gates = stages.gate.predict(sample)
    closeups = [rgb for rgb, g in zip(sample, gates) if g.is_scalp and g.view == "closeup"]
    share = len(closeups) / max(len(sample), 1)
    boxes = sum(len(d) for d in stages.detector.predict(closeups)) / max(len(closeups), 1) if closeups else 0.0
    total = gate + classify * sum(g.is_scalp for g in gates) / max(len(sample), 1) + share * (detect + boxes * per_box)
    return {"gflops_per_image": total / 1e9, "gate": gate / 1e9, "detect": detect / 1e9, "segment_per_box": per_box / 1e9,
            "classify": classify / 1e9, "closeup_share": share, "boxes_per_closeup": boxes}


def child(args: argparse.Namespace) -> None:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
        os.environ["SCALPSCOPE_THREADS"] = str(args.threads)
    paths = sorted(Path(args.images).glob("*.jpg"))
    if args.child == "naive":
        result = run_naive(paths, args.weights)
    elif args.child == "flops":
        result = flops_per_image(args.weights, paths)
    else:
        result = run_ours(paths, args.weights, args.child)
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print("RESULT " + json.dumps(result))


# ----------------------------------------------------------------------------- parent
def spawn(variant: str, images: Path, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", variant, "--images", str(images), "--weights", str(args.weights),
           "--threads", str(args.threads)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"{variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="pictures (default %(default)s)")
    parser.add_argument("--weights", type=Path, default=REPO / "weights")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: every core)")
    parser.add_argument("--real-only", action="store_true", help="only the bundled real samples (no synthetic pictures)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--images", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    from core.onnx import matching_export, onnx_dir_for
    from pipeline import load_stages

    if matching_export(load_stages(args.weights, hair=False), onnx_dir_for(args.weights)) is None:
        print("no ONNX export of these weights yet: exporting (python pipeline.py export onnx)")
        subprocess.run([sys.executable, str(REPO / "pipeline.py"), "-q", "export", "onnx", "--weights", str(args.weights)],
                       check=True, cwd=REPO)
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_images(args.n, Path(tmp), args.real_only)
        images = paths[0].parent
        kinds = "the real samples" if args.real_only else "synthetic close-ups and real samples"
        print(f"{len(paths)} pictures 640x480 ({kinds}), {os.cpu_count()} cores")
        results = {}
        for variant in ("naive", "torch", "onnx", "flops"):
            results[variant] = spawn(variant, images, args)
            r = results[variant]
            if variant != "flops":
                extra = f"  {r['boxes_per_image']} boxes per picture" if "boxes_per_image" in r else ""
                print(f"  {variant:<6} {r['images_per_s']:7.2f} images/s  peak RSS {r['peak_rss_mb']:7.1f} MB  "
                      f"ms/stage {r['ms_per_stage']}{extra}")
    naive, torch_, onnx, flops = (results[k] for k in ("naive", "torch", "onnx", "flops"))
    print(f"torch/naive {torch_['images_per_s'] / naive['images_per_s']:.2f}x, onnx/naive {onnx['images_per_s'] / naive['images_per_s']:.2f}x")
    gflops = flops["gflops_per_image"]
    print(f"ONNX path: {gflops:.2f} GFLOP per picture ({flops['closeup_share']:.0%} close-ups, "
          f"{flops['boxes_per_closeup']:.1f} boxes each) -> {gflops * onnx['images_per_s']:.1f} GFLOP/s achieved")
    print(f"onnx_images_per_s={onnx['images_per_s']:.3f} torch_images_per_s={torch_['images_per_s']:.3f} "
          f"naive_images_per_s={naive['images_per_s']:.3f} ratio_vs_naive={onnx['images_per_s'] / naive['images_per_s']:.3f} "
          f"peak_rss_mb={onnx['peak_rss_mb']:.1f}")


if __name__ == "__main__":
    main()
