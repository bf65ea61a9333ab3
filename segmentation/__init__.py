"""Segmentation stage: box-prompted mask refinement (each detector box becomes a lesion mask).

>>> from segmentation import MaskRefiner                       # doctest: +SKIP
>>> masks = MaskRefiner.load("weights").refine(rgb, boxes)      # doctest: +SKIP

Modules: ``model`` (the U-Net), ``crops`` (box -> crop -> picture geometry), ``weak`` (masks
from boxes alone), ``data``, ``losses``, ``options`` (defaults), ``train``, ``evaluate``,
``figures`` and ``cli`` (``train segmenter``).
Names are imported lazily so ``pipeline.py --help`` does not pay for torch.
"""
from __future__ import annotations

from core.lazy import lazy_exports

_EXPORTS = {
    "MaskRefiner": "segmentation.model",
    "CropGeometry": "segmentation.crops",
    "threshold_mask": "segmentation.weak",
    "weak_mask": "segmentation.weak",
    "train_segmenter": "segmentation.train",
    "TrainOptions": "segmentation.options",
    "evaluate_segmenter": "segmentation.evaluate",
    "evaluate_end_to_end": "segmentation.evaluate",
}


__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
