"""``data import``: read a source, relabel it, and write a dataset folder.

>>> import_dataset(Path("../shared/data/scalp-data"), Path("runs/data/scalp-data"))  # doctest: +SKIP
"""
from __future__ import annotations

import json
import logging
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from core.io import atomic_write_json, atomic_write_text
from core.taxonomy import HAIR_LOSS_GRADES, INDICATORS
from datasets.folder import DatasetError, DatasetFolder
from datasets.readers import (
    RawSample,
    aihub,
    folders,
    image_size,
    roboflow_classification,
    roboflow_coco,
    roboflow_yolo,
)
from datasets.records import Region, Sample
from datasets.relabel import RelabelMap, auto_map

log = logging.getLogger(__name__)

READERS: dict[str, Callable[[Path], list[RawSample]]] = {
    "roboflow-yolo": roboflow_yolo.read,
    "roboflow-coco": roboflow_coco.read,
    "roboflow-classification": roboflow_classification.read,
    "aihub": aihub.read,
    "folders": folders.read,
}
FORMATS = tuple(READERS)
# Roboflow hair-loss sets name images "<subject>-<view>_jpg.rf.<hash>.jpg", numbering the people
# afresh in every class: "24-Back" under LEVEL_2 and "24-Back" under LEVEL_5 are two people.
_HEAD_SUBJECT = re.compile(r"^(\d+)-?(front|left|right|back|top-down|top)", re.IGNORECASE)  # a few lack the dash


def detect_format(src: Path) -> str:
    """Guess the export format from the files it contains."""
    if not src.is_dir():
        raise DatasetError(f"{src} is not a folder; point 'data import' at the unzipped export")
    if (src / "data.yaml").is_file():
        return "roboflow-yolo"
    if next(src.rglob(roboflow_coco.ANNOTATIONS_NAME), None):
        return "roboflow-coco"
    if next(src.rglob(roboflow_classification.CLASSES_NAME), None):
        return "roboflow-classification"
    for candidate in src.rglob("*.json"):
        try:
            if aihub.looks_like_label(json.loads(candidate.read_text(encoding="utf-8-sig"))):
                return "aihub"
        except (json.JSONDecodeError, UnicodeDecodeError, OSError):
            continue
        break
    if any(p.is_dir() for p in src.iterdir()):
        return "folders"
    raise DatasetError(
        f"cannot tell the format of {src}; pass --format one of {', '.join(FORMATS)}"
    )


def _class_names(fmt: str, src: Path, raw: list[RawSample]) -> list[str]:
    names = {a.class_name for s in raw for a in s.annotations} | {c for s in raw for c in s.image_classes}
    if fmt == "roboflow-yolo":
        names |= set(roboflow_yolo.read_names(src / "data.yaml"))
    return sorted(names)


def choose_map(fmt: str, src: Path, raw: list[RawSample], relabel: Path | None) -> RelabelMap:
    if relabel is not None:
        return RelabelMap.load(relabel)
    if fmt == "aihub":
        return RelabelMap.builtin("aihub-scalp")
    return auto_map(_class_names(fmt, src, raw), src)


def _worst(grades: list[str]) -> str | None:
    return max(grades, key=HAIR_LOSS_GRADES.index) if grades else None


def relabel_sample(raw: RawSample, relabel: RelabelMap, image: str, dataset_name: str, src: Path) -> Sample:
    """Turn a source record into a :class:`Sample` through ``relabel``."""
    where = raw.label_file or raw.path
    regions: list[Region] = []
    view = relabel.view
    for ann in raw.annotations:
        rule = relabel.rule(ann.class_name, where)
        view = rule.view or view
        for kind in rule.kinds:
            regions.append(Region(box=ann.box, kind=kind, grade=rule.grade, polygon=ann.polygon, source_class=ann.class_name))
    indicators: dict[str, int | None] = {name: None for name in INDICATORS}
    indicators.update(raw.indicators)
    hair_loss_grades: list[str] = []
    for class_name in raw.image_classes:
        rule = relabel.rule(class_name, where)
        view = rule.view or view
        if rule.hair_loss:
            hair_loss_grades.append(rule.hair_loss)
        for name, grade in rule.indicators.items():
            indicators[name] = max(grade, indicators[name] or 0)
    hair_loss_grades += [r.grade for r in regions if r.kind == "hair_loss" and r.grade]
    hair_loss = _worst(hair_loss_grades)
    if hair_loss is None and raw.indicators.get("hair_loss") is not None:
        hair_loss = relabel.hair_loss_from_indicator(raw.indicators["hair_loss"])
    meta = dict(raw.meta)
    if view:
        meta["view"] = view
    head = _HEAD_SUBJECT.match(raw.path.stem)
    if head and "subject" not in meta:
        within = f"{raw.image_classes[0]}:" if len(raw.image_classes) == 1 else ""
        meta["subject"] = f"{dataset_name}:{within}{head.group(1)}"
        meta["head_view"] = head.group(2).lower()
    native = sorted({a.class_name for a in raw.annotations} | set(raw.image_classes))
    source = {
        "dataset": dataset_name,
        "file": str(raw.path.relative_to(src)) if raw.path.is_relative_to(src) else str(raw.path),
        "class": native[0] if len(native) == 1 else native,
        "group": raw.group or raw.path.stem,
    }
    return Sample(
        image=image,
        width=raw.width,
        height=raw.height,
        regions=regions,
        indicators=indicators,
        hair_loss=hair_loss,
        meta=meta,
        source=source,
        split=raw.split,
    )


def import_dataset(
    src: Path,
    out: Path,
    fmt: str = "auto",
    relabel: Path | None = None,
    name: str | None = None,
    force: bool = False,
    symlink: bool = False,
) -> DatasetFolder:
    """Import ``src`` into the dataset folder ``out`` (built aside, then renamed into place)."""
    src, out = Path(src), Path(out)
    if fmt == "auto":
        fmt = detect_format(src)
    if fmt not in READERS:
        raise DatasetError(f"unknown format {fmt!r}; use one of auto, {', '.join(FORMATS)}")
    if out.exists() and any(out.iterdir()) and not force:
        raise DatasetError(f"{out} already exists and is not empty; choose another --out or pass --force")
    raw = READERS[fmt](src)
    relabel_map = choose_map(fmt, src, raw, relabel)
    dataset_name = name or src.resolve().name
    log.info("importing %d images from %s as %s with relabel map %s", len(raw), src, fmt, relabel_map.path.name)

    partial = out.with_name(f".{out.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "images").mkdir(parents=True)
    samples: list[Sample] = []
    for record in tqdm(raw, desc=f"import {dataset_name}", unit="img", leave=False):
        if not record.path.is_file():
            log.warning("%s: listed in %s but the image file is missing; skipped", record.path, record.label_file)
            continue
        if record.width is None or record.height is None:
            size = image_size(record.path)
            if size:
                record.width, record.height = size
        rel = record.path.relative_to(src) if record.path.is_relative_to(src) else Path(record.path.name)
        target = partial / "images" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if symlink:
            target.symlink_to(record.path.resolve())
        else:
            shutil.copyfile(record.path, target)
        samples.append(relabel_sample(record, relabel_map, f"images/{rel.as_posix()}", dataset_name, src))
    folder = DatasetFolder(root=partial, samples=samples, name=dataset_name)
    folder.save()
    atomic_write_text(partial / "relabel.yaml", relabel_map.to_yaml())
    atomic_write_json(
        partial / "dataset.json",
        {
            "name": dataset_name,
            "source": str(src.resolve()),
            "format": fmt,
            "relabel": relabel_map.name,
            "native_scale": list(relabel_map.native_scale),
            "imported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "n_images": len(samples),
        },
    )
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    return DatasetFolder.load(out)
