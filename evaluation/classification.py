"""Scores for graded predictions: the six 0-3 indicators, Low/Mid/High and native stage scales.

Defined as in the reference study DESIGN.md cites (AI-Hub six-indicator grading), so numbers
line up with it:

- **per-indicator macro-F1**: the unweighted mean of the per-grade F1 over the grades that occur
  in the truth or the prediction for that indicator (scikit-learn's ``average="macro"`` default);
  pass ``labels=(0, 1, 2, 3)`` to force all four, absent grades then count as F1 = 0.
- **overall macro-F1**: the mean of the per-indicator macro-F1 over the indicators that have labels.
- **Hamming accuracy**: the fraction of labelled (image, indicator) pairs graded exactly right.
- **quadratic-weighted kappa** (QWK), per indicator and for ordinal scales; accuracy and MAE
  (in grade steps) for ordinal scales.
- **expected calibration error** (ECE): top-label, equal-width confidence bins (15 by default),
  ``sum_b |acc_b - conf_b| * n_b / n``.
- **bootstrap 95% CI**: percentile interval of a score recomputed on images resampled with
  replacement (one row = one image, so all of an image's labels move together).

Unknown labels are written as ``-1`` (or None) and are left out of every score.

>>> macro_f1([0, 1, 2, 3], [0, 1, 2, 3])
1.0
>>> round(quadratic_weighted_kappa([0, 1, 2], [0, 2, 2]), 3)
0.8
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

UNKNOWN = -1


def _labels(values: Sequence[int | None] | np.ndarray) -> np.ndarray:
    """Integer array with None/NaN as ``UNKNOWN``."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        return values.astype(np.int64)
    out = np.array([UNKNOWN if v is None or (isinstance(v, float) and np.isnan(v)) else int(v) for v in np.ravel(values)])
    return out.reshape(np.shape(values)) if np.ndim(values) > 1 else out


def known_pairs(y_true: Sequence, y_pred: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Truth and prediction where the truth is known (neither ``-1`` nor None)."""
    true, pred = _labels(y_true), _labels(y_pred)
    if true.shape != pred.shape:
        raise ValueError(f"truth and prediction differ in shape: {true.shape} vs {pred.shape}")
    keep = true != UNKNOWN
    return true[keep], pred[keep]


# ----------------------------------------------------------------------------- per-class scores
def confusion_matrix(y_true: Sequence, y_pred: Sequence, n_classes: int) -> np.ndarray:
    """``n_classes`` x ``n_classes`` counts, rows = truth, columns = prediction."""
    true, pred = known_pairs(y_true, y_pred)
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (true, pred), 1)
    return matrix


def precision_recall_f1(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class precision, recall, F1 and support from a confusion matrix (0 where undefined)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(matrix)
    predicted, actual = matrix.sum(0), matrix.sum(1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": actual.astype(np.int64)}


def macro_f1(y_true: Sequence, y_pred: Sequence, labels: Sequence[int] | None = None) -> float:
    """Mean per-class F1 over ``labels`` (default: the classes present in truth or prediction).

    NaN when no label is known.
    """
    true, pred = known_pairs(y_true, y_pred)
    if true.size == 0:
        return float("nan")
    classes = np.array(sorted(set(true.tolist()) | set(pred.tolist()))) if labels is None else np.asarray(labels)
    n = int(max(classes.max(), true.max(), pred.max())) + 1
    scores = precision_recall_f1(confusion_matrix(true, pred, n))["f1"]
    return float(scores[classes].mean())


def accuracy(y_true: Sequence, y_pred: Sequence) -> float:
    true, pred = known_pairs(y_true, y_pred)
    return float("nan") if true.size == 0 else float((true == pred).mean())


def mean_absolute_error(y_true: Sequence, y_pred: Sequence) -> float:
    """Mean |truth - prediction| in grade steps (for ordered scales)."""
    true, pred = known_pairs(y_true, y_pred)
    return float("nan") if true.size == 0 else float(np.abs(true - pred).mean())


def quadratic_weighted_kappa(y_true: Sequence, y_pred: Sequence, n_classes: int | None = None) -> float:
    """Cohen's kappa with quadratic weights (1 = perfect agreement, 0 = chance, < 0 worse).

    Equals ``sklearn.metrics.cohen_kappa_score(..., weights="quadratic")``; 1.0 when truth and
    prediction are the same single class, NaN when no label is known.
    """
    true, pred = known_pairs(y_true, y_pred)
    if true.size == 0:
        return float("nan")
    n = n_classes or int(max(true.max(), pred.max())) + 1
    observed = confusion_matrix(true, pred, n).astype(np.float64)
    grades = np.arange(n)
    weights = (grades[:, None] - grades[None, :]) ** 2
    expected = np.outer(observed.sum(1), observed.sum(0)) / observed.sum()
    denominator = (weights * expected).sum()
    if denominator == 0:
        return 1.0 if (weights * observed).sum() == 0 else 0.0
    return float(1.0 - (weights * observed).sum() / denominator)


# ----------------------------------------------------------------------------- many indicators
def hamming_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of labelled (image, indicator) cells graded exactly right; arrays N x indicators."""
    true, pred = _labels(y_true), _labels(y_pred)
    keep = true != UNKNOWN
    return float("nan") if not keep.any() else float((true[keep] == pred[keep]).mean())


def overall_macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean per-indicator macro-F1 over the indicator columns that have labels."""
    true, pred = _labels(y_true), _labels(y_pred)
    scores = [macro_f1(true[:, j], pred[:, j]) for j in range(true.shape[1]) if (true[:, j] != UNKNOWN).any()]
    return float(np.mean(scores)) if scores else float("nan")


# ----------------------------------------------------------------------------- calibration
def expected_calibration_error(probs: np.ndarray, y_true: Sequence, n_bins: int = 15) -> float:
    """Top-label ECE with ``n_bins`` equal-width confidence bins; rows with unknown truth are skipped."""
    probs = np.asarray(probs, dtype=np.float64)
    true = _labels(y_true)
    keep = true != UNKNOWN
    probs, true = probs[keep], true[keep]
    if true.size == 0:
        return float("nan")
    confidence = probs.max(1)
    correct = (probs.argmax(1) == true).astype(np.float64)
    # Bin b holds confidences in (b/n, (b+1)/n]; a confidence of exactly 0 joins the first bin.
    bins = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        inside = bins == b
        if inside.any():
            ece += abs(correct[inside].mean() - confidence[inside].mean()) * inside.mean()
    return float(ece)


# ----------------------------------------------------------------------------- uncertainty
def bootstrap_ci(
    score: Callable[..., float],
    *arrays: np.ndarray,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of ``score(*arrays)`` over images resampled with replacement.

    Every array is indexed by image along its first axis, and one resample draws the same
    images from all of them. Resamples where the score is undefined (NaN) are dropped.

    >>> bootstrap_ci(accuracy, np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]), n_resamples=200)  # doctest: +SKIP
    (0.5, 1.0)
    """
    arrays = tuple(np.asarray(a) for a in arrays)
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError("bootstrap_ci: every array needs one row per image (lengths differ)")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        index = rng.integers(0, n, n)
        value = score(*(a[index] for a in arrays))
        if not np.isnan(value):
            values.append(value)
    if not values:
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


# ----------------------------------------------------------------------------- reports
def grade_scores(
    y_true: Sequence,
    y_pred: Sequence,
    class_names: Sequence[str],
    probs: np.ndarray | None = None,
    ordinal: bool = True,
) -> dict[str, Any]:
    """Every score of one graded head: macro-F1, accuracy, per-grade precision/recall, and for
    ordered scales QWK and MAE; ECE when ``probs`` are given. Keys as in ``metrics.json``."""
    true, pred = known_pairs(y_true, y_pred)
    n = len(class_names)
    matrix = confusion_matrix(true, pred, n)
    per_class = precision_recall_f1(matrix)
    out: dict[str, Any] = {
        "n": int(true.size),
        "accuracy": accuracy(true, pred),
        "macro_f1": macro_f1(true, pred),
        "per_grade": {
            name: {"precision": float(per_class["precision"][i]), "recall": float(per_class["recall"][i]),
                   "support": int(per_class["support"][i])}
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": matrix.tolist(),
    }
    if ordinal:
        out["qwk"] = quadratic_weighted_kappa(true, pred, n)
        out["mae"] = mean_absolute_error(true, pred)
    if probs is not None:
        out["ece"] = expected_calibration_error(probs, y_true)
    return out


def indicator_scores(y_true: np.ndarray, y_pred: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """The ``indicators`` block of ``metrics.json``: overall macro-F1, Hamming accuracy and, per
    indicator with labels, macro-F1 and QWK. Arrays are N x len(names), ``-1`` = unknown."""
    true, pred = _labels(y_true), _labels(y_pred)
    out: dict[str, Any] = {"overall_macro_f1": overall_macro_f1(true, pred), "hamming": hamming_accuracy(true, pred)}
    for j, name in enumerate(names):
        if (true[:, j] != UNKNOWN).any():
            out[name] = {"macro_f1": macro_f1(true[:, j], pred[:, j]),
                         "qwk": quadratic_weighted_kappa(true[:, j], pred[:, j], 4),
                         "n": int((true[:, j] != UNKNOWN).sum())}
    return out


def plot_confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], title: str, path: Path) -> Path:
    """Save a confusion matrix (rows truth, columns prediction; counts and row share) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix)
    rows = matrix.sum(1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=float), where=rows > 0)
    size = 1.2 + 0.55 * len(class_names)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45 if max(map(len, class_names)) > 3 else 0, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color="white" if share[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of true grade")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def ci_block(scores: Mapping[str, tuple[Callable[..., float], tuple[np.ndarray, ...]]], n_resamples: int = 1000,
             seed: int = 0) -> dict[str, list[float]]:
    """``{"name": [low, high]}`` bootstrap 95% intervals for several scores (the ``ci95`` block)."""
    return {name: list(bootstrap_ci(fn, *arrays, n_resamples=n_resamples, seed=seed)) for name, (fn, arrays) in scores.items()}
