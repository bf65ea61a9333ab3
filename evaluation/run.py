"""``python pipeline.py evaluate DATASET --out DIR``: score every stage the data has labels for.

It runs the full pipeline on one split and writes ``metrics.json`` (the keys of DESIGN.md),
``report.md``, ``report.html`` and PNG plots. Every score sits beside a floor measured in the
same run (majority class; the classifier without lesion masks; box-only and threshold masks),
and the headline scores carry bootstrap 95% intervals over images.

Scores are end to end: a picture the scalp gate declines, or sees as the other view, gets no
grade and counts as an error in the graded scores (``n_missing`` says how many).
"""
from __future__ import annotations

import json
import logging
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from core.images import ImageError, load_image
from core.io import atomic_write_json
from core.taxonomy import HAIR_LOSS_GRADES, INDICATORS, canonical_split
from datasets.folder import DatasetFolder
from datasets.records import Sample
from evaluation.classification import UNKNOWN, bootstrap_ci, grade_scores, indicator_scores, macro_f1, overall_macro_f1

log = logging.getLogger(__name__)
MISSING = -2  # "no prediction" (declined or other view): never equal to a true grade


class EvaluationError(ValueError):
    """The dataset and the model cannot be compared; the message says why and what to do."""


@dataclass
class Collected:
    """Everything the pipeline said about the split, as arrays indexed by image."""

    samples: list[Sample]
    analyses: list[Any] = field(default_factory=list)
    image_only: list[dict] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)


# ----------------------------------------------------------------------------- preflight
def native_classes(grader_config: dict) -> list[str]:
    """The classes of the classifier's first native-scale head (the one ``native_stage`` reports)."""
    from fusion.heads import HeadSpec

    heads = [h for h in map(HeadSpec.from_dict, grader_config["heads"]) if h.kind == "native"]
    return list(heads[0].classes) if heads else []


def preflight(folder: DatasetFolder, samples: list[Sample], stages: Any) -> None:
    """Stop before any work when the data has labels the model does not know."""
    problems = []
    known = set(stages.detector.classes)
    labels = sorted({r.label for s in samples for r in s.regions})
    unknown = [label for label in labels if label not in known]
    if unknown:
        problems.append(f"region labels {unknown} are not classes of the detector ({sorted(known)})")
    native = native_classes(stages.grader.config)
    data_native = sorted({str(s.source.get("class")) for s in samples if s.hair_loss and isinstance(s.source.get("class"), str)})
    scale = json.loads((folder.root / "dataset.json").read_text()).get("native_scale") if (folder.root / "dataset.json").is_file() else None
    if scale and native and not set(data_native) <= set(native):
        problems.append(f"native stages {sorted(set(data_native) - set(native))} are not on the classifier's scale {native}")
    if problems:
        raise EvaluationError(
            f"{folder.root} has labels the model does not know: {'; '.join(problems)}. "
            "Import the data with the relabel map the weights were trained with, or pass --weights for a model trained on it"
        )
    graded = any(s.regions or s.hair_loss or any(v is not None for v in s.indicators.values()) for s in samples)
    if not graded and not scale:
        raise EvaluationError(f"{folder.root} split has no labels to score (no regions, grades or hair-loss labels)")


# ----------------------------------------------------------------------------- truths
def fit_derived_grades(folder: DatasetFolder, grader_config: dict) -> tuple[Any, dict | None]:
    """The derived 0-3 grades of ``folder`` (None when it has real grades) and their description.

    Fit once per evaluation: it measures every outlined area of the folder.
    """
    from fusion.data import DerivedGrades, needs_derived_grades

    if not needs_derived_grades(folder):
        return None, None
    stored = (grader_config.get("derived_grades") or {}).get(folder.name)
    cuts = {k: tuple(v) for k, v in stored["cuts"].items()} if stored else None
    derived = DerivedGrades.fit(folder, cuts=cuts)
    source = "cuts stored with the classifier" if stored else "cuts fit on this dataset's train split"
    return derived, {"kinds": list(derived.cuts), "cuts": {k: list(v) for k, v in derived.cuts.items()}, "source": source,
                     "note": "derived labels: image-level grades from the outlined affected-area fraction, not graded by people"}


def indicator_truth(samples: list[Sample], derived: Any) -> np.ndarray:
    """N x 6 indicator grades: the data's own, overwritten by derived grades where there are some."""
    truth = np.array([[UNKNOWN if s.indicators[n] is None else s.indicators[n] for n in INDICATORS] for s in samples])
    if derived is not None:
        for i, sample in enumerate(samples):
            for kind, grade in derived.grades.get(sample.image, {}).items():
                truth[i, INDICATORS.index(kind)] = grade
    return truth


def majority(values: np.ndarray) -> int | None:
    known = values[values >= 0]
    return int(np.bincount(known).argmax()) if known.size else None


# ----------------------------------------------------------------------------- the run
def collect(pipeline: Any, folder: DatasetFolder, samples: list[Sample], batch_size: int) -> Collected:
    out = Collected(samples=[])
    for start in tqdm(range(0, len(samples), batch_size), desc="evaluate", unit="batch"):
        batch, loaded = [], []
        for sample in samples[start : start + batch_size]:
            try:
                loaded.append(load_image(folder.image_path(sample)))
                batch.append(sample)
            except ImageError as err:
                out.unreadable.append((sample.image, str(err)))
        if not batch:
            continue
        out.samples += batch
        out.analyses += pipeline.analyze_batch(loaded, [s.image for s in batch])
        # The image-only floor: the same classifier with no lesion mask.
        out.image_only += pipeline.stages.grader.predict([image.rgb for image in loaded], None)
    return out


def _index(values: list[Any], classes: list[Any]) -> np.ndarray:
    return np.array([classes.index(v) if v in classes else UNKNOWN for v in values], dtype=np.int64)


def score_grades(collected: Collected, folder: DatasetFolder, grader_config: dict, train_samples: list[Sample],
                 n_boot: int, seed: int, plots: Path) -> dict[str, Any]:
    from evaluation.classification import plot_confusion_matrix

    samples, analyses = collected.samples, collected.analyses
    metrics: dict[str, Any] = {}
    ci: dict[str, list[float]] = {}
    baselines: dict[str, Any] = {}

    # Low/Mid/High hair loss.
    truth = _index([s.hair_loss for s in samples], list(HAIR_LOSS_GRADES))
    if (truth >= 0).any():
        pred = np.array([HAIR_LOSS_GRADES.index(a.hair_loss.grade) if a.hair_loss else MISSING for a in analyses])
        probs = np.array([[a.hair_loss.probs[g] for g in HAIR_LOSS_GRADES] if a.hair_loss else [1 / 3] * 3 for a in analyses])
        scores = grade_scores(truth, np.where(pred == MISSING, (truth + 1) % 3, pred), list(HAIR_LOSS_GRADES), probs)
        metrics["hair_loss"] = {k: scores[k] for k in ("accuracy", "macro_f1", "ece", "qwk", "mae", "n", "per_grade")}
        metrics["hair_loss"]["n_missing"] = int(((pred == MISSING) & (truth >= 0)).sum())
        plot_confusion_matrix(np.array(scores["confusion_matrix"]), [g.upper() for g in HAIR_LOSS_GRADES], "hair loss (Low/Mid/High)",
                              plots / "confusion_hair_loss.png")
        ci["hair_loss.macro_f1"] = list(bootstrap_ci(macro_f1, truth[truth >= 0], pred[truth >= 0], n_resamples=n_boot, seed=seed))
        train_truth = _index([s.hair_loss for s in train_samples], list(HAIR_LOSS_GRADES))
        top = majority(train_truth if (train_truth >= 0).any() else truth)
        only = np.array([HAIR_LOSS_GRADES.index(r["hair_loss"]["grade"]) for r in collected.image_only])
        baselines["hair_loss"] = {
            "majority": {"class": HAIR_LOSS_GRADES[top], **_acc_f1(truth, np.full_like(truth, top))},
            "image_only": _acc_f1(truth, only),
        }

    # The source's native ordinal scale (e.g. LEVEL_2..LEVEL_7).
    native = native_classes(grader_config)
    if native:
        truth = _index([s.source.get("class") for s in samples], native)
        if (truth >= 0).any():
            pred = np.array([native.index(a.native_stage.grade) if a.native_stage else MISSING for a in analyses])
            filled = np.where(pred == MISSING, (truth + 1) % len(native), pred)
            scores = grade_scores(truth, filled, native)
            metrics["stage"] = {"scale": native, **{k: scores[k] for k in ("accuracy", "mae", "qwk", "macro_f1", "n")}}
            plot_confusion_matrix(np.array(scores["confusion_matrix"]), native, "native stage", plots / "confusion_stage.png")

    # The six 0-3 indicators.
    derived_grades, derived = fit_derived_grades(folder, grader_config)
    truth = indicator_truth(samples, derived_grades)
    if (truth >= 0).any():
        pred = np.array([[int(a.indicators[n].grade) if n in a.indicators else MISSING for n in INDICATORS] for a in analyses])
        filled = np.where(pred == MISSING, (np.maximum(truth, 0) + 1) % 4, pred)
        block = indicator_scores(truth, filled, INDICATORS)
        block["n_missing"] = int(((pred == MISSING) & (truth >= 0)).sum())
        block["labels"] = "derived" if derived else "graded"
        if derived:
            block["derived"] = derived
        metrics["indicators"] = block
        for j, name in enumerate(INDICATORS):
            if (truth[:, j] >= 0).any():
                known = truth[:, j] >= 0
                scores = grade_scores(truth[known, j], filled[known, j], ["0", "1", "2", "3"])
                plot_confusion_matrix(np.array(scores["confusion_matrix"]), ["0", "1", "2", "3"], f"{name} (0-3)",
                                      plots / f"confusion_{name}.png")
        ci["indicators.overall_macro_f1"] = list(bootstrap_ci(overall_macro_f1, truth, filled, n_resamples=n_boot, seed=seed))
        train_truth = indicator_truth(train_samples, derived_grades) if train_samples else truth
        tops = [majority(train_truth[:, j]) if (train_truth[:, j] >= 0).any() else majority(truth[:, j]) for j in range(len(INDICATORS))]
        maj = np.array([[t if t is not None else 0 for t in tops]] * len(truth))
        only = np.array([[r["indicators"].get(n, {"grade": 0})["grade"] for n in INDICATORS] for r in collected.image_only])
        baselines["indicators"] = {
            "majority": indicator_scores(truth, maj, INDICATORS),
            "image_only": indicator_scores(truth, only, INDICATORS),
        }
    metrics["baselines"] = baselines
    metrics["ci95"] = ci
    return metrics


def _acc_f1(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    known = truth >= 0
    return {"accuracy": float((truth[known] == pred[known]).mean()), "macro_f1": macro_f1(truth[known], pred[known])}


def score_gate(collected: Collected) -> dict[str, Any]:
    """Every picture of a dataset split is a scalp photo: how many did the gate decline?"""
    analyses, samples = collected.analyses, collected.samples
    declined = [a.is_scalp is False for a in analyses]
    views = [(s.view, a.view) for s, a in zip(samples, analyses) if s.view and a.is_scalp]
    return {
        "scalp_check": {"false_reject": float(np.mean(declined)) if declined else float("nan"), "n": len(declined)},
        "view": {"accuracy": float(np.mean([t == p for t, p in views])) if views else float("nan"), "n": len(views)},
    }


def score_detection(pipeline: Any, folder: DatasetFolder, samples: list[Sample], split: str, out: Path, n_boot: int,
                    seed: int) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """ultralytics' validator for the headline numbers and plots; per-image matches for the CI."""
    from datasets.exporters import export_yolo
    from evaluation.detection import bootstrap_map, map_scores, match_image

    detector = pipeline.stages.detector
    data_yaml = export_yolo(folder, out / "yolo-data", classes=list(detector.classes), only=canonical_split(split))
    summary = detector.validate(data_yaml, split="val", out=out / "detection")
    matches = []
    index = {name: i for i, name in enumerate(detector.classes)}
    for start in tqdm(range(0, len(samples), 8), desc="detections", unit="batch"):
        chunk = samples[start : start + 8]
        rgbs = [load_image(folder.image_path(s)).rgb for s in chunk]
        for sample, found in zip(chunk, detector.predict(rgbs, conf=0.001)):
            true_boxes = np.array([r.box for r in sample.regions], dtype=np.float32).reshape(-1, 4)
            true_cls = np.array([index[r.label] for r in sample.regions], dtype=np.int64)
            pred_cls = np.array([index[label] for label in found.labels], dtype=np.int64)
            matches.append(match_image(found.boxes, found.scores, pred_cls, true_boxes, true_cls))
    recomputed50, recomputed = map_scores(matches)
    summary["map50_per_image_recomputed"] = recomputed50
    summary["map50_95_per_image_recomputed"] = recomputed
    ci = bootstrap_map(matches, n_resamples=n_boot, seed=seed)
    return summary, {"detection.map50": ci["map50"], "detection.map50_95": ci["map50_95"]}


def score_segmentation(pipeline: Any, folder: DatasetFolder, split: str) -> dict[str, Any] | None:
    from segmentation.data import has_outline
    from segmentation.evaluate import evaluate_end_to_end, evaluate_segmenter

    samples = folder.split(split)
    if not any(has_outline(r) for s in samples for r in s.regions):
        return None
    refiner, detector = pipeline.stages.refiner, pipeline.stages.detector
    given_boxes = evaluate_segmenter(refiner, folder, split)
    end_to_end = evaluate_end_to_end(refiner, folder, lambda rgb: detector.predict([rgb])[0].boxes, split)
    methods = given_boxes["methods"]
    return {
        "dice": methods["unet"]["dice"], "iou": methods["unet"]["iou"],
        "dice_box_baseline": methods["box"]["dice"], "iou_box_baseline": methods["box"]["iou"],
        "dice_threshold_baseline": methods["threshold"]["dice"], "iou_threshold_baseline": methods["threshold"]["iou"],
        "n_regions": given_boxes["n_regions"], "prompts": "ground-truth boxes",
        "end_to_end": {"dice": end_to_end["methods"]["unet"]["dice"], "iou": end_to_end["methods"]["unet"]["iou"],
                       "dice_box_baseline": end_to_end["methods"]["box"]["dice"], "n_images": end_to_end["n_images"],
                       "prompts": "detector boxes"},
        "per_kind": methods["unet"].get("per_kind"),
    }


def evaluate(dataset: Path, out: Path, split: str = "val", weights: Path | None = None, device: str = "cpu", seed: int = 0,
             n_bootstrap: int = 1000, batch_size: int = 8, pipeline: Any = None, backend: str = "auto") -> dict[str, Any]:
    """Score ``dataset``'s ``split`` with the weights in ``weights`` (default: bundled)."""
    from evaluation.report import write_reports

    started = time.time()
    folder = DatasetFolder.load(dataset)
    samples = folder.split(split)
    if not samples:
        available = sorted({s.split for s in folder.samples if s.split})
        raise EvaluationError(f"{dataset} has no '{split}' split (it has: {', '.join(available) or 'none'}); "
                              f"pass --split or run 'python pipeline.py data split {dataset}'")
    if pipeline is None:
        from pipeline import Pipeline

        pipeline = Pipeline(weights, device, backend=backend, hair=False)
    preflight(folder, samples, pipeline.stages)
    out = Path(out)
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    collected = collect(pipeline, folder, samples, batch_size)
    train_samples = folder.split("train")
    metrics: dict[str, Any] = {
        "dataset": folder.name, "dataset_path": str(folder.root.resolve()), "split": split,
        "n_images": len(collected.samples), "n_unreadable": len(collected.unreadable),
        "weights": pipeline.stages.hashes(), "seed": seed,
    }
    if canonical_split(split) == "train":
        log.warning("scoring the TRAIN split: these numbers say how well the model fits its own training data, "
                    "not how it does on new pictures")
        metrics["warning"] = "scored on the training split; not an estimate of accuracy on new pictures"
    metrics.update(score_gate(collected))
    graded = score_grades(collected, folder, pipeline.stages.grader.config, train_samples, n_bootstrap, seed, plots)
    ci = graded.pop("ci95")
    metrics.update(graded)
    if any(s.regions for s in collected.samples):
        metrics["detection"], det_ci = score_detection(pipeline, folder, collected.samples, split, out, n_bootstrap, seed)
        ci.update(det_ci)
        segmentation = score_segmentation(pipeline, folder, split)
        if segmentation:
            metrics["segmentation"] = segmentation
    metrics["ci95"] = ci
    metrics["versions"] = _versions()
    metrics["time"] = {"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": round(time.time() - started, 1)}
    atomic_write_json(out / "metrics.json", metrics)
    write_reports(metrics, out)
    return metrics


def _versions() -> dict[str, str]:
    import torch
    import ultralytics

    from pipeline import __version__

    return {"scalpscope": __version__, "torch": torch.__version__, "ultralytics": ultralytics.__version__,
            "python": platform.python_version()}
