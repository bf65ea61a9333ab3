"""Detection scores per image, so mAP can be bootstrapped over images.

The matching (ultralytics' ``BaseValidator.match_predictions``) and the AP computation
(``ultralytics.utils.metrics.ap_per_class``) are ultralytics' own; this module only keeps the
per-image true-positive tables so a resample of images can be re-scored.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import torch

IOU_THRESHOLDS = torch.linspace(0.5, 0.95, 10)


@dataclass
class ImageMatches:
    tp: np.ndarray  # D x 10 bool: prediction correct at each IoU threshold
    conf: np.ndarray  # D
    pred_cls: np.ndarray  # D
    target_cls: np.ndarray  # M


def match_image(pred_boxes: np.ndarray, pred_scores: np.ndarray, pred_cls: np.ndarray,
                true_boxes: np.ndarray, true_cls: np.ndarray) -> ImageMatches:
    """True-positive table of one image's predictions against its ground truth (pixels, xyxy)."""
    from ultralytics.engine.validator import BaseValidator
    from ultralytics.utils.metrics import box_iou

    order = np.argsort(-pred_scores, kind="stable")
    pred_boxes, pred_scores, pred_cls = pred_boxes[order], pred_scores[order], pred_cls[order]
    if len(pred_boxes) == 0 or len(true_boxes) == 0:
        tp = np.zeros((len(pred_boxes), len(IOU_THRESHOLDS)), dtype=bool)
    else:
        iou = box_iou(torch.as_tensor(true_boxes, dtype=torch.float32), torch.as_tensor(pred_boxes, dtype=torch.float32))
        matcher = SimpleNamespace(iouv=IOU_THRESHOLDS)
        tp = BaseValidator.match_predictions(matcher, torch.as_tensor(pred_cls), torch.as_tensor(true_cls), iou)
    return ImageMatches(np.asarray(tp, dtype=bool), pred_scores.astype(np.float64), pred_cls.astype(np.int64),
                        np.asarray(true_cls, dtype=np.int64))


def map_scores(matches: list[ImageMatches]) -> tuple[float, float]:
    """(mAP50, mAP50-95) of a set of images, by ultralytics' ``ap_per_class``."""
    from ultralytics.utils.metrics import ap_per_class

    target = np.concatenate([m.target_cls for m in matches]) if matches else np.zeros(0)
    if target.size == 0:
        return float("nan"), float("nan")
    tp = np.concatenate([m.tp for m in matches])
    conf = np.concatenate([m.conf for m in matches])
    pred = np.concatenate([m.pred_cls for m in matches])
    if tp.shape[0] == 0:
        return 0.0, 0.0
    ap = ap_per_class(tp, conf, pred, target)[5]  # per-class AP at the 10 IoU thresholds
    return float(ap[:, 0].mean()), float(ap.mean())


def bootstrap_map(matches: list[ImageMatches], n_resamples: int = 1000, seed: int = 0) -> dict[str, list[float]]:
    """95% percentile intervals of mAP50 and mAP50-95 over images resampled with replacement."""
    rng = np.random.default_rng(seed)
    values50, values = [], []
    for _ in range(n_resamples):
        pick = [matches[i] for i in rng.integers(0, len(matches), len(matches))]
        m50, m = map_scores(pick)
        if not np.isnan(m50):
            values50.append(m50)
            values.append(m)
    if not values50:
        return {"map50": [float("nan")] * 2, "map50_95": [float("nan")] * 2}
    return {"map50": [float(v) for v in np.percentile(values50, [2.5, 97.5])],
            "map50_95": [float(v) for v in np.percentile(values, [2.5, 97.5])]}
