"""Do test-time variants help the bundled models? Measured on a valid split, not adopted by guess.

Classifier (on a split with Low/Mid/High and native-stage labels, e.g. hair-loss-levels; the
classifier alone, no lesion masks, as the ``image_only`` baseline of ``evaluate``):

- ``plain``: what ``analyze`` does;
- ``flip``: logits averaged with the mirrored picture's (``SeverityGrader.logits(flip_tta=True)``;
  the temperatures were fitted without it);
- ``joint``: the stage chosen by the stage head's probability times the Low/Mid/High head's
  probability of the grade that stage falls in (the two heads read the same picture).

Detector (on a split with boxes, e.g. scalp-data): ultralytics' validator at the trained size,
at larger inference sizes, and with its test-time augmentation (``augment=True``: flips and
three scales).

    python -m evaluation.test_time --classifier-data runs/data/hair-loss-levels --detector-data runs/data/scalp-data

Writes nothing unless ``--out`` is given (JSON); prints a table per model.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from core.images import load_image
from core.taxonomy import HAIR_LOSS_GRADES, canonical_split
from datasets.folder import DatasetFolder
from evaluation.classification import grade_scores
from fusion.heads import HAIR_LOSS_HEAD

#: Variants of the detector's validation: (label, inference size as a multiple of the trained one, augment).
DETECTOR_VARIANTS = (("plain", 1.0, False), ("1.15x size", 1.15, False), ("1.3x size", 1.3, False),
                     ("augment", 1.0, True), ("augment, 1.2x size", 1.2, True))


def classifier_variants(weights: Path, folder: DatasetFolder, split: str, batch: int = 8) -> dict[str, Any]:
    from fusion.predict import SeverityGrader

    grader = SeverityGrader.load(weights / "classifier.safetensors")
    native = [h for h in grader.heads if h.kind == "native"]
    if not native:
        raise SystemExit("this classifier has no native-stage head to score")
    stage_head, stages = native[0].name, list(native[0].classes)  # the head ``native_stage`` reports
    samples = [s for s in folder.split(split) if s.hair_loss is not None and s.source.get("class") in stages]
    if not samples:
        raise SystemExit(f"{folder.root}: no {split} pictures with a Low/Mid/High grade and a stage of {stages}")
    grade_of = {s.source["class"]: s.hair_loss for s in samples}
    if len(grade_of) < len(stages):
        raise SystemExit(f"{folder.root}: stages {sorted(set(stages) - set(grade_of))} have no {split} picture")
    rgbs = [load_image(folder.image_path(s)).rgb for s in samples]
    truth_grade = np.array([HAIR_LOSS_GRADES.index(s.hair_loss) for s in samples])
    truth_stage = np.array([stages.index(s.source["class"]) for s in samples])
    group = np.array([HAIR_LOSS_GRADES.index(grade_of[s]) for s in stages])  # each stage's Low/Mid/High grade
    rows: dict[str, Any] = {}
    for name, flip in (("plain", False), ("flip", True)):
        probs = grader.probabilities(rgbs, None, batch, flip_tta=flip)
        grade_p, stage_p = probs[HAIR_LOSS_HEAD], probs[stage_head]
        rows[name] = _scores(truth_grade, grade_p, truth_stage, stage_p.argmax(1), stages)
        if name == "plain":
            rows["joint"] = _scores(truth_grade, grade_p, truth_stage, (stage_p * grade_p[:, group]).argmax(1), stages)
    return {"split": split, "n": len(samples), "stage_head": stage_head, "variants": rows}


def _scores(truth_grade: np.ndarray, grade_p: np.ndarray, truth_stage: np.ndarray, stage_pred: np.ndarray,
            stages: list[str]) -> dict[str, float]:
    grade = grade_scores(truth_grade, grade_p.argmax(1), list(HAIR_LOSS_GRADES), grade_p)
    stage = grade_scores(truth_stage, stage_pred, stages)
    return {"grade_accuracy": grade["accuracy"], "grade_macro_f1": grade["macro_f1"], "grade_ece": grade["ece"],
            "stage_accuracy": stage["accuracy"], "stage_qwk": stage["qwk"], "stage_mae": stage["mae"]}


def detector_variants(weights: Path, folder: DatasetFolder, split: str, work: Path) -> dict[str, Any]:
    from datasets.exporters import export_yolo
    from detection.model import Detector

    detector = Detector.load(weights / "detector.pt")
    data_yaml = export_yolo(folder, work / "yolo-data", classes=list(detector.classes), only=split)
    rows = {}
    for name, scale, augment in DETECTOR_VARIANTS:
        size = int(round(detector.imgsz * scale / 32) * 32)
        summary = detector.validate(data_yaml, split="val", out=work / "val", plots=False, imgsz=size, augment=augment)
        rows[name] = {"imgsz": size, "augment": augment, "map50": summary["map50"], "map50_95": summary["map50_95"],
                      "ap50": {k: v["ap50"] for k, v in summary["per_class"].items()}}
    return {"split": split, "variants": rows}


def main(argv: list[str] | None = None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classifier-data", type=Path, help="dataset folder with Low/Mid/High and stage labels")
    parser.add_argument("--detector-data", type=Path, help="dataset folder with boxes")
    parser.add_argument("--weights", type=Path, default=Path("weights"), help="weights folder (default %(default)s)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--out", type=Path, help="write the scores here as JSON")
    args = parser.parse_args(argv)
    if not (args.classifier_data or args.detector_data):
        parser.error("give --classifier-data, --detector-data or both")
    result: dict[str, Any] = {"weights": str(args.weights)}
    split = canonical_split(args.split)
    if args.classifier_data:
        block = classifier_variants(args.weights, DatasetFolder.load(args.classifier_data), split)
        result["classifier"] = block
        print(f"\nclassifier alone, {block['n']} {split} pictures")
        print("| variant | Low/Mid/High accuracy | macro-F1 | ECE | stage accuracy | QWK | MAE |")
        print("|---|---|---|---|---|---|---|")
        for name, r in block["variants"].items():
            print(f"| {name} | {r['grade_accuracy']:.3f} | {r['grade_macro_f1']:.3f} | {r['grade_ece']:.3f} "
                  f"| {r['stage_accuracy']:.3f} | {r['stage_qwk']:.3f} | {r['stage_mae']:.3f} |")
    if args.detector_data:
        with tempfile.TemporaryDirectory(prefix="scalpscope-tta-") as work:
            block = detector_variants(args.weights, DatasetFolder.load(args.detector_data), split, Path(work))
        result["detector"] = block
        kinds = list(next(iter(block["variants"].values()))["ap50"])
        print(f"\ndetector, {split} split")
        print("| variant | imgsz | mAP50 | mAP50-95 | " + " | ".join(f"AP50 {k}" for k in kinds) + " |")
        print("|---" * (4 + len(kinds)) + "|")
        for name, r in block["variants"].items():
            print(f"| {name} | {r['imgsz']} | {r['map50']:.3f} | {r['map50_95']:.3f} | "
                  + " | ".join(f"{r['ap50'][k]:.3f}" for k in kinds) + " |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
