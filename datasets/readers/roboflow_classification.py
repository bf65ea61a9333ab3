"""Roboflow classification export: ``<split>/_classes.csv`` with one-hot class columns.

The header is ``filename, CLASS_A, CLASS_B, ...`` (Roboflow pads names with a space); each row
marks the image's classes with 1. Rows with no class are kept unlabelled.
"""
from __future__ import annotations

import csv
import logging
from pathlib import Path

from datasets.folder import DatasetError
from datasets.readers import RawSample, read_export, roboflow_group

log = logging.getLogger(__name__)
CLASSES_NAME = "_classes.csv"


def read(root: Path) -> list[RawSample]:
    return read_export(root, CLASSES_NAME, "classification", _read_file)


def _read_file(csv_file: Path, split: str | None) -> list[RawSample]:
    with open(csv_file, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise DatasetError(f"{csv_file}: empty file, expected a header 'filename, CLASS, ...'")
    header = [h.strip() for h in rows[0]]
    if len(header) < 2 or header[0].lower() not in ("filename", "file", "image"):
        raise DatasetError(f"{csv_file}: first column must be 'filename', got {header[:3]}")
    classes = header[1:]
    samples = []
    for number, row in enumerate(rows[1:], 2):
        if not row or not row[0].strip():
            continue
        if len(row) != len(header):
            raise DatasetError(f"{csv_file}:{number}: {len(row)} columns, header has {len(header)}")
        try:
            flags = [int(float(v)) for v in row[1:]]
        except ValueError as err:
            raise DatasetError(f"{csv_file}:{number}: class columns must be 0 or 1 ({err})") from err
        name = row[0].strip()
        chosen = [c for c, flag in zip(classes, flags) if flag]
        if not chosen:
            log.warning("%s:%d: %s has no class marked; imported unlabelled", csv_file, number, name)
        samples.append(
            RawSample(
                path=csv_file.parent / name,
                label_file=csv_file,
                split=split,
                image_classes=chosen,
                group=roboflow_group(Path(name).stem),
            )
        )
    return samples
