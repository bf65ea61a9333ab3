"""Write each stage's training layout from a dataset folder.

- :func:`export_yolo`: the YOLO detection layout ultralytics reads (``data.yaml``,
  ``images/<split>``, ``labels/<split>``), classes = region labels (``dandruff``,
  ``hair_loss/low``...), ordered by indicator then grade so the order never depends on files.
- :func:`export_masks`: one PNG mask per region plus ``regions.csv`` (segmentation pairs).
- :func:`export_labels_table`: one CSV row per image with its grades (fusion).
"""
from __future__ import annotations

import csv
import io
import logging
import os
import shutil
from pathlib import Path

import yaml

from core.io import atomic_write_text
from core.taxonomy import HAIR_LOSS_GRADES, INDICATORS, SPLITS
from datasets.folder import DatasetError, DatasetFolder
from datasets.records import Sample

log = logging.getLogger(__name__)


def label_order(label: str) -> tuple[int, int]:
    kind, _, grade = label.partition("/")
    return INDICATORS.index(kind), (HAIR_LOSS_GRADES.index(grade) + 1) if grade else 0


def region_labels(samples: list[Sample]) -> list[str]:
    """The detector's classes for these samples, in a stable order."""
    return sorted({r.label for s in samples for r in s.regions}, key=label_order)


def flat_stem(sample: Sample) -> str:
    """A file stem unique within the dataset: the image path without ``images/``, slashes as ``__``."""
    path = Path(sample.image).with_suffix("")
    if path.parts and path.parts[0] == "images":
        path = Path(*path.parts[1:])
    return path.as_posix().replace("/", "__")


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    try:
        os.link(src, dst)  # cheap and survives the source folder moving
    except OSError:
        shutil.copyfile(src, dst)


def export_yolo(folder: DatasetFolder, out: Path, classes: list[str] | None = None, only: str | None = None) -> Path:
    """Write a YOLO detection dataset for ``folder``'s splits; returns ``out/data.yaml``.

    For training, every split is written and train and val must exist. ``only="test"`` writes
    just that split for validation (its data.yaml names it for train and val too, because
    ultralytics requires both keys even to validate one split).
    """
    out = Path(out)
    classes = classes or region_labels(folder.samples)
    if not classes:
        raise DatasetError(f"{folder.root} has no regions (boxes or polygons): nothing to train a detector on")
    index = {name: i for i, name in enumerate(classes)}
    present = {}
    for split in (only,) if only else SPLITS:
        samples = folder.split(split)
        if not samples:
            continue
        present[split] = f"images/{split}"
        for sample in samples:
            if not sample.width or not sample.height:
                log.warning("%s: size unknown (unreadable image?); left out of the YOLO export", sample.image)
                continue
            stem = flat_stem(sample)
            image_src = folder.image_path(sample)
            _link(image_src, out / "images" / split / f"{stem}{image_src.suffix.lower()}")
            rows = []
            for region in sample.regions:
                if region.label not in index:
                    raise DatasetError(f"{sample.image}: region label {region.label!r} is not a detector class {classes}")
                x1, y1, x2, y2 = region.box
                w, h = sample.width, sample.height
                cx, cy, bw, bh = (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h
                if bw > 0 and bh > 0:
                    rows.append(f"{index[region.label]} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}")
            label_file = out / "labels" / split / f"{stem}.txt"
            label_file.parent.mkdir(parents=True, exist_ok=True)
            label_file.write_text("\n".join(rows) + ("\n" if rows else ""))
    if only:
        if only not in present:
            raise DatasetError(f"{folder.root} has no {only!r} split to export")
        present = {"train": present[only], "val": present[only], only: present[only]}
    elif "train" not in present or "val" not in present:
        raise DatasetError(
            f"{folder.root} needs a train and a val split for detection (has {sorted(present) or 'none'}); "
            f"run 'python pipeline.py data split {folder.root}'"
        )
    data = {"path": str(out.resolve()), **present, "names": dict(enumerate(classes))}
    atomic_write_text(out / "data.yaml", yaml.safe_dump(data, sort_keys=False))
    return out / "data.yaml"


def export_masks(folder: DatasetFolder, out: Path) -> Path:
    """One PNG per region (full image size, 255 inside) and ``regions.csv`` listing them."""
    import cv2
    import numpy as np

    out = Path(out)
    rows = []
    for sample in folder.samples:
        if not sample.width or not sample.height:
            continue
        stem = flat_stem(sample)
        for i, region in enumerate(sample.regions):
            mask = folder.region_mask(sample, region).astype(np.uint8) * 255
            path = out / "masks" / f"{stem}_{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), mask)
            rows.append([sample.image, sample.split or "", i, region.kind, region.grade or "", *region.box, path.relative_to(out).as_posix()])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["image", "split", "region", "kind", "grade", "x1", "y1", "x2", "y2", "mask"])
    writer.writerows(rows)
    atomic_write_text(out / "regions.csv", buffer.getvalue())
    return out / "regions.csv"


def export_labels_table(folder: DatasetFolder, out_csv: Path) -> Path:
    """One row per image: split, view, the six grades, the hair-loss grade and the native class."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["image", "split", "view", *INDICATORS, "hair_loss_grade", "native_class", "n_regions"])
    for s in folder.samples:
        native = s.source.get("class")
        writer.writerow([
            s.image, s.split or "", s.view or "",
            *["" if s.indicators[n] is None else s.indicators[n] for n in INDICATORS],
            s.hair_loss or "", native if isinstance(native, str) else "|".join(native or []), len(s.regions),
        ])
    atomic_write_text(Path(out_csv), buffer.getvalue())
    return Path(out_csv)
