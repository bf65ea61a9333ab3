"""Roboflow YOLO export: ``data.yaml`` + ``train|valid|test/images|labels``.

Label rows are ``cls cx cy w h`` (boxes) or ``cls x1 y1 x2 y2 ...`` (polygons), normalized
to 0-1. An empty label file marks a negative image; a missing one too, with a warning.
"""
from __future__ import annotations

import logging
from pathlib import Path

import yaml

from core.taxonomy import canonical_split
from datasets.folder import DatasetError
from datasets.readers import RawAnnotation, RawSample, image_size, is_image, roboflow_group

log = logging.getLogger(__name__)

# data.yaml keys, the split name we store, and the folder names Roboflow uses on disk.
_SPLIT_DIRS = {"train": ("train",), "val": ("valid", "val"), "test": ("test",)}


def read_names(data_yaml: Path) -> list[str]:
    try:
        data = yaml.safe_load(data_yaml.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise DatasetError(f"{data_yaml} is not valid YAML ({err})") from err
    names = data.get("names")
    if isinstance(names, dict):  # ultralytics style {0: a, 1: b}
        names = [names[k] for k in sorted(names)]
    if not isinstance(names, list) or not names:
        raise DatasetError(f"{data_yaml} has no 'names:' list of classes")
    return [str(n) for n in names]


def _split_dir(root: Path, data: dict, split: str) -> Path | None:
    for folder in _SPLIT_DIRS[split]:
        candidate = root / folder / "images"
        if candidate.is_dir():
            return candidate
    # data.yaml paths are often relative to a different folder ("../train/images"): try both.
    key = "val" if split == "val" else split
    declared = data.get(key)
    if isinstance(declared, str):
        for base in (root, root / "x"):
            candidate = (base / declared).resolve()
            if candidate.is_dir():
                return candidate
    return None


def parse_label_line(line: str, names: list[str], width: int, height: int, where: str) -> RawAnnotation:
    """One label row in pixels; raises DatasetError naming ``where`` (file:line)."""
    parts = line.split()
    try:
        cls = int(float(parts[0]))
        values = [float(v) for v in parts[1:]]
    except ValueError as err:
        raise DatasetError(f"{where}: not a YOLO label row ({line.strip()[:60]!r})") from err
    if not 0 <= cls < len(names):
        raise DatasetError(f"{where}: class id {cls} outside data.yaml names (0-{len(names) - 1})")
    if len(values) == 4:
        cx, cy, w, h = values
        box = ((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height)
        return RawAnnotation(names[cls], _clip(box, width, height))
    if len(values) >= 6 and len(values) % 2 == 0:
        points = [(x * width, y * height) for x, y in zip(values[0::2], values[1::2])]
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        box = _clip((min(xs), min(ys), max(xs), max(ys)), width, height)
        return RawAnnotation(names[cls], box, polygon=points)
    raise DatasetError(
        f"{where}: expected 4 box numbers or an even number (>= 6) of polygon coordinates after the class, got {len(values)}"
    )


def _clip(box: tuple[float, float, float, float], width: int, height: int) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = box
    return (min(max(x1, 0.0), width), min(max(y1, 0.0), height), min(max(x2, 0.0), width), min(max(y2, 0.0), height))


def read(root: Path) -> list[RawSample]:
    data_yaml = root / "data.yaml"
    if not data_yaml.is_file():
        raise DatasetError(f"{root} has no data.yaml: not a Roboflow YOLO export")
    names = read_names(data_yaml)
    data = yaml.safe_load(data_yaml.read_text(encoding="utf-8")) or {}
    samples: list[RawSample] = []
    for split in ("train", "val", "test"):
        images_dir = _split_dir(root, data, split)
        if images_dir is None:
            if data.get(split) or (split == "val" and data.get("valid")):
                log.warning("%s names a %s split but no folder for it exists; skipping it", data_yaml, split)
            continue
        labels_dir = images_dir.parent / "labels"
        for image in sorted(p for p in images_dir.iterdir() if is_image(p)):
            samples.append(_read_one(image, labels_dir / f"{image.stem}.txt", names, split))
    if not samples:
        raise DatasetError(f"{root}: data.yaml found but no images under train/valid/test/images")
    return samples


def _read_one(image: Path, label_file: Path, names: list[str], split: str) -> RawSample:
    size = image_size(image)
    sample = RawSample(path=image, label_file=label_file, split=canonical_split(split), group=roboflow_group(image.stem))
    if size is None:
        # Unreadable images are kept so `data check` reports them; they carry no labels.
        log.warning("%s: cannot read image header; imported without labels", image)
        return sample
    sample.width, sample.height = size
    if not label_file.is_file():
        log.warning("%s: no label file; treated as a negative (no regions)", image)
        return sample
    for number, line in enumerate(label_file.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if line.strip():
            sample.annotations.append(parse_label_line(line, names, *size, where=f"{label_file}:{number}"))
    if not sample.annotations:
        sample.meta["negative"] = True  # an empty label file: the annotator saw nothing here
    return sample
