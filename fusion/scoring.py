"""Score the classifier's heads on a labelled split, in the shape of ``metrics.json``.

``hair_loss`` (Low/Mid/High head), ``stage`` (the first native-scale head), ``indicators``
(six-indicator block: overall macro-F1, Hamming accuracy, per indicator macro-F1 and QWK) and
``heads`` (everything per head: accuracy, macro-F1, per-grade precision/recall, confusion
matrix, QWK/MAE, ECE). Only heads with labels in the split appear.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from core.taxonomy import INDICATORS
from evaluation.classification import UNKNOWN, grade_scores, indicator_scores, plot_confusion_matrix
from fusion.calibration import probabilities
from fusion.heads import HeadSpec


def score_heads(
    heads: list[HeadSpec],
    logits: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
    temperatures: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Scores of every head with labels; probabilities use ``temperatures`` (1.0 when absent)."""
    temperatures = temperatures or {}
    out: dict[str, Any] = {"heads": {}}
    predictions: dict[str, np.ndarray] = {}
    for head in heads:
        truth = labels[head.name]
        if not (truth != UNKNOWN).any():
            continue
        probs = probabilities(head, logits[head.name], temperatures.get(head.name, 1.0))
        predictions[head.name] = probs.argmax(1)
        out["heads"][head.name] = grade_scores(truth, predictions[head.name], head.classes, probs)
    indicator_names = [h.name for h in heads if h.kind == "indicator" and h.name in predictions]
    if indicator_names:
        n = len(next(iter(labels.values())))
        truth = np.full((n, len(INDICATORS)), UNKNOWN)
        pred = np.zeros((n, len(INDICATORS)), dtype=np.int64)
        for j, name in enumerate(INDICATORS):
            if name in predictions:
                truth[:, j], pred[:, j] = labels[name], predictions[name]
        out["indicators"] = indicator_scores(truth, pred, INDICATORS)
    for head in heads:
        if head.name not in out["heads"]:
            continue
        scores = out["heads"][head.name]
        if head.kind == "hair_loss":
            out["hair_loss"] = {k: scores[k] for k in ("accuracy", "macro_f1", "ece", "qwk", "mae", "n")}
        elif head.kind == "native" and "stage" not in out:
            out["stage"] = {"scale": head.source, **{k: scores[k] for k in ("accuracy", "mae", "qwk", "macro_f1", "ece", "n")}}
    labelled = [s["macro_f1"] for s in out["heads"].values()]
    out["selection_score"] = float(np.mean(labelled)) if labelled else float("nan")
    return out


def majority_baseline(heads: list[HeadSpec], train_distribution: dict[str, dict[str, int]],
                      labels: dict[str, np.ndarray]) -> dict[str, Any]:
    """Scores of always predicting each head's most frequent training class."""
    logits = {}
    for head in heads:
        counts = np.array([train_distribution[head.name][c] for c in head.classes], dtype=np.float64)
        one_hot = np.full(len(head.classes), -20.0)
        one_hot[int(counts.argmax())] = 20.0
        # CORN logits: "grade > k" is sure for k below the majority class, impossible above.
        if head.loss == "corn":
            one_hot = np.where(np.arange(len(head.classes) - 1) < counts.argmax(), 20.0, -20.0)
        logits[head.name] = np.tile(one_hot, (len(labels[head.name]), 1))
    return score_heads(heads, logits, labels)


def save_confusion_matrices(heads: list[HeadSpec], scores: dict[str, Any], folder: Path, prefix: str = "confusion") -> list[Path]:
    """One PNG per scored head: ``<folder>/<prefix>_<head>.png``."""
    paths = []
    for head in heads:
        if head.name in scores["heads"]:
            matrix = np.array(scores["heads"][head.name]["confusion_matrix"])
            s = scores["heads"][head.name]
            title = f"{head.name}: acc {s['accuracy']:.2f}, macro-F1 {s['macro_f1']:.2f} (n={s['n']})"
            paths.append(plot_confusion_matrix(matrix, list(head.classes), title, folder / f"{prefix}_{head.name}.png"))
    return paths
