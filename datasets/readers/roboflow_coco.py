"""Roboflow COCO export: ``<split>/_annotations.coco.json`` beside the split's images.

``bbox`` is ``[x, y, w, h]`` in pixels; ``segmentation`` a list of polygons (flat
``[x1, y1, x2, y2, ...]``). Roboflow adds a parent category named after the project that no
annotation uses; only categories that annotations use are read as classes.
"""
from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path

from datasets.folder import DatasetError
from datasets.readers import RawAnnotation, RawSample, read_export, roboflow_group

log = logging.getLogger(__name__)
ANNOTATIONS_NAME = "_annotations.coco.json"


def read(root: Path) -> list[RawSample]:
    return read_export(root, ANNOTATIONS_NAME, "COCO", _read_file)


def _read_file(ann_file: Path, split: str | None) -> list[RawSample]:
    try:
        coco = json.loads(ann_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DatasetError(f"{ann_file}: invalid JSON ({err.msg} at line {err.lineno})") from err
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            raise DatasetError(f"{ann_file}: missing the COCO '{key}' list")
    categories = {c["id"]: str(c["name"]) for c in coco["categories"]}
    by_image: dict[int, list[dict]] = defaultdict(list)
    for ann in coco["annotations"]:
        by_image[ann.get("image_id")].append(ann)
    samples = []
    for info in coco["images"]:
        image = ann_file.parent / info["file_name"]
        sample = RawSample(
            path=image,
            label_file=ann_file,
            split=split,
            width=info.get("width"),
            height=info.get("height"),
            group=roboflow_group(Path(info["file_name"]).stem),
        )
        for ann in by_image.get(info["id"], []):
            sample.annotations.append(_annotation(ann, categories, ann_file))
        samples.append(sample)
    return samples


def _annotation(ann: dict, categories: dict[int, str], ann_file: Path) -> RawAnnotation:
    where = f"{ann_file} (annotation id {ann.get('id')})"
    if ann.get("category_id") not in categories:
        raise DatasetError(f"{where}: category_id {ann.get('category_id')} is not in 'categories'")
    try:
        x, y, w, h = (float(v) for v in ann["bbox"])
    except (KeyError, TypeError, ValueError) as err:
        raise DatasetError(f"{where}: 'bbox' must be [x, y, width, height]") from err
    polygon = None
    segmentation = ann.get("segmentation")
    if isinstance(segmentation, list) and segmentation and isinstance(segmentation[0], list):
        # Several parts: keep the largest outline; the box still covers them all.
        largest = max(segmentation, key=len)
        if len(largest) >= 6:
            polygon = [(float(px), float(py)) for px, py in zip(largest[0::2], largest[1::2])]
    elif isinstance(segmentation, dict):
        log.warning("%s: RLE segmentation is not read; the region keeps its box only", where)
    return RawAnnotation(categories[ann["category_id"]], (x, y, x + w, y + h), polygon)
