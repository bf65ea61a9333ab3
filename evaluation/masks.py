"""Overlap scores for masks: Dice and IoU, per region and averaged.

Every stage that outlines something (the segmenter, the end-to-end evaluation) scores it here,
so one number means one thing across reports. Masks are boolean arrays of one shape; a
probability map is thresholded by the caller first.

Convention for empty masks: when prediction and target are both empty the two agree
perfectly, so Dice = IoU = 1 (the choice most segmentation benchmarks make); one empty and the
other not scores 0.

>>> import numpy as np
>>> a = np.zeros((4, 4), bool); a[:2] = True      # 8 pixels
>>> b = np.zeros((4, 4), bool); b[1:3] = True     # 8 pixels, 4 shared
>>> dice_score(a, b), iou_score(a, b)
(0.5, 0.3333333333333333)
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


def _overlap(pred: np.ndarray, target: np.ndarray) -> tuple[int, int, int]:
    pred = np.asarray(pred, dtype=bool)
    target = np.asarray(target, dtype=bool)
    if pred.shape != target.shape:
        raise ValueError(f"mask shapes differ: prediction {pred.shape}, target {target.shape}")
    intersection = int(np.count_nonzero(pred & target))
    return intersection, int(np.count_nonzero(pred)), int(np.count_nonzero(target))


def dice_score(pred: np.ndarray, target: np.ndarray) -> float:
    """2|P∩T| / (|P| + |T|); 1.0 when both masks are empty."""
    intersection, n_pred, n_target = _overlap(pred, target)
    total = n_pred + n_target
    return 1.0 if total == 0 else 2.0 * intersection / total


def iou_score(pred: np.ndarray, target: np.ndarray) -> float:
    """|P∩T| / |P∪T| (Jaccard); 1.0 when both masks are empty."""
    intersection, n_pred, n_target = _overlap(pred, target)
    union = n_pred + n_target - intersection
    return 1.0 if union == 0 else intersection / union


def dice_iou(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Both scores from one pass over the pixels."""
    intersection, n_pred, n_target = _overlap(pred, target)
    total = n_pred + n_target
    union = total - intersection
    if total == 0:
        return 1.0, 1.0
    return 2.0 * intersection / total, intersection / union


@dataclass(frozen=True)
class RegionScore:
    """The scores of one predicted mask against its target, with the group it is averaged in."""

    group: str  # e.g. the region's kind
    dice: float
    iou: float


def summarize(scores: Iterable[RegionScore]) -> dict:
    """Mean Dice and IoU over all regions and per group (macro over regions, not pixels).

    Returns ``{"dice", "iou", "n", "per_group": {group: {"dice", "iou", "n"}}}``; the means are
    None when there are no regions.
    """
    groups: dict[str, list[RegionScore]] = defaultdict(list)
    everything: list[RegionScore] = []
    for score in scores:
        groups[score.group].append(score)
        everything.append(score)

    def mean_of(items: list[RegionScore]) -> dict:
        if not items:
            return {"dice": None, "iou": None, "n": 0}
        return {
            "dice": float(np.mean([s.dice for s in items])),
            "iou": float(np.mean([s.iou for s in items])),
            "n": len(items),
        }

    return {**mean_of(everything), "per_group": {name: mean_of(items) for name, items in sorted(groups.items())}}


__all__ = ["RegionScore", "dice_iou", "dice_score", "iou_score", "summarize"]
