"""Readers turn a source on disk into :class:`RawSample` records, before relabeling.

A reader knows a file format and nothing of our labels: it reports the source's own class
names, boxes and polygons (pixels), image-level classes and grades; ``datasets.importer``
then applies a relabel map. Each reader is a function ``read(root) -> list[RawSample]``.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.taxonomy import IMAGE_EXTENSIONS, canonical_split
from datasets.folder import DatasetError

log = logging.getLogger(__name__)


@dataclass
class RawAnnotation:
    """One region as the source drew it: its class name and geometry in pixels."""

    class_name: str
    box: tuple[float, float, float, float]
    polygon: list[tuple[float, float]] | None = None


@dataclass
class RawSample:
    """One image as a source describes it, in the source's vocabulary."""

    path: Path  # the image file
    label_file: Path | None  # where its labels came from, for error messages
    split: str | None = None
    width: int | None = None
    height: int | None = None
    annotations: list[RawAnnotation] = field(default_factory=list)
    image_classes: list[str] = field(default_factory=list)
    indicators: dict[str, int] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    group: str | None = None  # the source photo augmented copies share


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the header only, EXIF rotation applied; None when unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            width, height = img.size
            orientation = img.getexif().get(0x0112, 1)
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def roboflow_group(stem: str) -> str:
    """Roboflow names augmented copies ``<orig>_jpg.rf.<hash>``: all copies share ``<orig>``."""
    if ".rf." in stem:
        stem = stem.split(".rf.")[0]
        for ext in IMAGE_EXTENSIONS:
            suffix = "_" + ext.lstrip(".")
            if stem.lower().endswith(suffix):
                return stem[: -len(suffix)]
    return stem


def split_of(name: str) -> str | None:
    """The split a folder name stands for (``valid`` -> ``val``), or None for any other name."""
    try:
        return canonical_split(name)
    except ValueError:
        return None


def read_export(
    root: Path, name: str, kind: str, read_file: Callable[[Path, str | None], list[RawSample]]
) -> list[RawSample]:
    """Every ``name`` file of a Roboflow export under root, read with the split its folder names."""
    files = sorted(root.rglob(name))
    if not files:
        raise DatasetError(f"{root} has no {name}: not a Roboflow {kind} export")
    samples: list[RawSample] = []
    for file in files:
        samples.extend(read_file(file, split_of(file.parent.name) if file.parent != root else None))
    return samples
