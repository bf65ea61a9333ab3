"""Detection: a thin, typed wrapper over ultralytics YOLO (train, validate, predict).

``Detector`` predicts boxes with their label (kind, and grade where graded) and confidence;
``detection.train.train_detector`` exports a dataset folder to the YOLO layout and trains.
Imports are lazy so the command line starts fast.
"""
from __future__ import annotations

from typing import Any

__all__ = ["Detections", "Detector"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from detection import model

        return getattr(model, name)
    raise AttributeError(f"module 'detection' has no attribute {name!r}")
