"""``Detector``: a typed wrapper over an ultralytics YOLO checkpoint and its JSON config.

Classes are region labels (``dandruff``, ``hair_loss/low``...): the kind, and the grade where
the data grades regions. They travel in the config, so code never hard-codes them.

>>> detector = Detector.load("weights/detector.pt")              # doctest: +SKIP
>>> found = detector.predict([rgb])[0]                           # doctest: +SKIP
>>> found.boxes.shape, found.labels[:1], found.scores[:1]        # doctest: +SKIP
((12, 4), ['dandruff'], array([0.81], dtype=float32))
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import detection.offline  # noqa: F401  (before ultralytics is imported)
from core.weights import WeightsError, read_config

DEFAULT_CONF = 0.25


@dataclass
class Detections:
    """The boxes found in one picture, in that picture's pixel coordinates."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))  # N x 4, xyxy
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    labels: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def kinds(self) -> list[str]:
        return [label.partition("/")[0] for label in self.labels]

    @property
    def grades(self) -> list[str | None]:
        return [label.partition("/")[2] or None for label in self.labels]


class Detector:
    def __init__(self, model: Any, config: dict[str, Any], device: str = "cpu", conf: float = DEFAULT_CONF) -> None:
        self.model = model
        self.config = config
        self.device = device
        self.conf = conf
        self.classes: list[str] = list(config["classes"])
        self.imgsz = int(config.get("imgsz", 320))

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu", conf: float = DEFAULT_CONF, verify: bool = True) -> Detector:
        """A trained detector (``detector.pt`` + ``detector.json``); the sha256 must match."""
        from ultralytics import YOLO

        path = Path(path)
        if path.is_dir():
            path = path / "detector.pt"
        config = read_config(path, verify=verify)
        if config.get("stage") != "detector":
            raise WeightsError(f"{path}: config says stage {config.get('stage')!r}, not 'detector'")
        model = YOLO(str(path), task="detect")
        names = [model.names[i] for i in sorted(model.names)]
        if names != list(config["classes"]):
            raise WeightsError(f"{path}: checkpoint classes {names} differ from its config's {config['classes']}")
        return cls(model, config, device=device, conf=conf)

    @property
    def sha256(self) -> str:
        return f"sha256:{self.config.get('sha256', '')}"

    def predict(self, images: list[np.ndarray], conf: float | None = None, batch_size: int = 8) -> list[Detections]:
        """Boxes for each RGB picture; letterboxing and scaling back are ultralytics' job."""
        out: list[Detections] = []
        for start in range(0, len(images), batch_size):
            chunk = [np.ascontiguousarray(rgb[..., ::-1]) for rgb in images[start : start + batch_size]]  # YOLO wants BGR
            results = self.model.predict(chunk, imgsz=self.imgsz, conf=self.conf if conf is None else conf,
                                         device=self.device, verbose=False, batch=len(chunk))
            for result in results:
                boxes = result.boxes
                classes = boxes.cls.cpu().numpy().astype(int)
                out.append(Detections(
                    boxes=boxes.xyxy.cpu().numpy().astype(np.float32),
                    scores=boxes.conf.cpu().numpy().astype(np.float32),
                    labels=[self.classes[c] for c in classes],
                ))
        return out

    def validate(self, data_yaml: Path, split: str = "val", out: Path | None = None, plots: bool = True,
                 batch: int = 16, imgsz: int | None = None, augment: bool = False) -> dict[str, Any]:
        """mAP50, mAP50-95, precision and recall overall and per class on a YOLO-layout split.

        With ``plots`` ultralytics writes the PR curve and confusion matrix PNGs into ``out``.
        ``imgsz`` (default: the trained size) and ``augment`` (ultralytics' test-time flips and
        scales) are for studies of inference variants (``evaluation.test_time``).
        """
        kwargs: dict[str, Any] = {"data": str(data_yaml), "split": split, "imgsz": imgsz or self.imgsz, "batch": batch,
                                  "device": self.device, "plots": plots, "verbose": False, "conf": 0.001,
                                  "augment": augment}
        if out is not None:
            kwargs.update(project=str(Path(out).resolve().parent), name=Path(out).name, exist_ok=True)
        metrics = self.model.val(**kwargs)
        summary = validation_summary(metrics, self.classes)
        summary["n_images"] = count_split_images(Path(data_yaml), split)
        return summary


def validation_summary(metrics: Any, classes: list[str]) -> dict[str, Any]:
    """The numbers of an ultralytics ``DetMetrics`` as plain JSON-ready values."""
    box = metrics.box
    per_class = {}
    for i, index in enumerate(metrics.ap_class_index):
        p, r, ap50, ap = box.class_result(i)
        per_class[classes[int(index)]] = {"precision": float(p), "recall": float(r), "ap50": float(ap50), "ap50_95": float(ap)}
    return {
        "map50": float(box.map50),
        "map50_95": float(box.map),
        "precision": float(box.mp),
        "recall": float(box.mr),
        "per_class": per_class,
    }


def count_split_images(data_yaml: Path, split: str) -> int:
    """How many images a YOLO ``data.yaml`` lists for ``split`` (a folder of images)."""
    import yaml

    data = yaml.safe_load(data_yaml.read_text())
    root = Path(data.get("path") or data_yaml.parent)
    entry = data.get(split)
    if not isinstance(entry, str):
        return 0
    folder = entry if Path(entry).is_absolute() else root / entry
    return sum(1 for p in Path(folder).glob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".bmp", ".webp"})


def table(summary: dict[str, Any]) -> str:
    """A short text table of a validation summary."""
    lines = [f"{'class':<32}{'P':>7}{'R':>7}{'AP50':>8}{'AP50-95':>9}", "-" * 63]
    for name, row in summary["per_class"].items():
        lines.append(f"{name:<32}{row['precision']:>7.3f}{row['recall']:>7.3f}{row['ap50']:>8.3f}{row['ap50_95']:>9.3f}")
    lines.append("-" * 63)
    lines.append(f"{'all':<32}{summary['precision']:>7.3f}{summary['recall']:>7.3f}{summary['map50']:>8.3f}{summary['map50_95']:>9.3f}")
    return "\n".join(lines)
