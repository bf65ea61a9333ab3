"""Do the models still work on photos that are not square?

The training pictures of both Roboflow exports are square; phone photos are 4:3. This crops
every valid picture to 4:3 (the middle three quarters of its height, no distortion) and
counts how many the scalp check declines when it sees them letterboxed (black bars, how it
first worked) and as their central square (how it works now); where the pictures carry a
Low/Mid/High grade, it also scores the whole pipeline's grade on the whole picture, on the
crop, and on the whole picture squeezed to 4:3 (all of the head kept, only the shape changed),
which tells lost content from the new shape.

    python -m evaluation.crops runs/data/scalp-data runs/data/hair-loss-levels
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import fusion.gate as gate_module
from core.images import letterbox, load_image
from datasets.folder import DatasetFolder


def four_by_three(rgb: np.ndarray) -> np.ndarray:
    trim = rgb.shape[0] // 8
    return rgb[trim : rgb.shape[0] - trim]


def squeezed(rgb: np.ndarray) -> np.ndarray:
    """The whole picture at 4:3: what the photo may have looked like before the export squared it."""
    import cv2

    height, width = rgb.shape[:2]
    return cv2.resize(rgb, (width, round(height * 3 / 4)), interpolation=cv2.INTER_AREA)


def declined_share(gate: gate_module.ScalpGate, rgbs: list[np.ndarray]) -> float:
    return float(np.mean([not r.is_scalp for r in gate.predict(rgbs)]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("datasets", nargs="+", type=Path)
    parser.add_argument("--weights", type=Path, default=Path("weights"), help="weights folder (default %(default)s)")
    parser.add_argument("--split", default="val")
    args = parser.parse_args(argv)
    from pipeline import Pipeline

    pipeline = Pipeline(args.weights, hair=False)
    gate = pipeline.stages.gate
    print("| data (pictures) | declined, whole picture | 4:3 crop, letterboxed | 4:3 crop, central square "
          "| Low/Mid/High accuracy, whole picture | same, 4:3 crop | same, squeezed to 4:3 |")
    print("|---|---|---|---|---|---|---|")
    for path in args.datasets:
        folder = DatasetFolder.load(path)
        samples = folder.split(args.split)
        rgbs = [load_image(folder.image_path(s)).rgb for s in samples]
        crops = [four_by_three(rgb) for rgb in rgbs]
        whole = declined_share(gate, rgbs)
        # a picture already letterboxed to the gate's size is square, so the gate takes it as it is
        boxed = declined_share(gate, [letterbox(crop, gate_module.GATE_INPUT)[0] for crop in crops])
        square = declined_share(gate, crops)
        graded = [i for i, s in enumerate(samples) if s.hair_loss]
        accuracy = [grade_accuracy(pipeline, [pictures[i] for i in graded], [samples[i].hair_loss for i in graded])
                    if graded else "-" for pictures in (rgbs, crops, [squeezed(rgb) for rgb in rgbs])]
        print(f"| {folder.name} `{args.split}` ({len(rgbs)}) | {whole:.3f} | {boxed:.3f} | {square:.3f} "
              f"| {accuracy[0]} | {accuracy[1]} | {accuracy[2]} |")
    return 0


def grade_accuracy(pipeline, rgbs: list[np.ndarray], truth: list[str], batch: int = 16) -> str:
    """End-to-end Low/Mid/High accuracy; a declined picture counts as an error."""
    from core.images import LoadedImage

    right = 0
    for start in range(0, len(rgbs), batch):
        chunk = rgbs[start : start + batch]
        analyses = pipeline.analyze_batch([LoadedImage(r, (r.shape[1], r.shape[0])) for r in chunk], ["crop"] * len(chunk))
        right += sum(a.hair_loss is not None and a.hair_loss.grade == t for a, t in zip(analyses, truth[start : start + batch]))
    return f"{right / len(rgbs):.3f}"


if __name__ == "__main__":
    raise SystemExit(main())
