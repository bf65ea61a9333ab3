"""Class-per-folder trees: ``ROOT/<class>/*.jpg`` or ``ROOT/<split>/<class>/*.jpg``.

The folder name is the image-level class, mapped through the relabel map.
"""
from __future__ import annotations

from pathlib import Path

from datasets.folder import DatasetError
from datasets.readers import RawSample, is_image, split_of


def read(root: Path) -> list[RawSample]:
    samples: list[RawSample] = []
    for top in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        split = split_of(top.name)
        class_dirs = sorted(p for p in top.iterdir() if p.is_dir()) if split else [top]
        for class_dir in class_dirs:
            for image in sorted(p for p in class_dir.rglob("*") if is_image(p)):
                samples.append(RawSample(path=image, label_file=class_dir, split=split, image_classes=[class_dir.name]))
    if not samples:
        raise DatasetError(f"{root}: no class folders with images (expected ROOT/<class>/*.jpg)")
    return samples
