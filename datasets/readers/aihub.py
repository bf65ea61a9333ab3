"""AI-Hub scalp label JSON ("유형별 두피 이미지"): one JSON per image, six 0-3 grades.

Documented fields: ``image_file_name`` and ``value_1``..``value_6`` = microkeratin, sebum,
erythema between follicles, follicular erythema/pustule, dandruff, hair loss, each 0-3 and
sometimes written as strings ("2"). Images and labels sit in parallel folder trees
(``[원천]...`` sources, ``[라벨]...`` labels) whose names carry the symptom and grade; the
split comes from a path part such as ``Training``/``Validation`` (or 학습/검증).

Accepted variants: the file name under ``image_file_name``, ``image_name``, ``file_name``,
``filename``, ``img_name`` or ``imageFileName``; grades as ``value_N``, ``valueN`` or
``value N``, as int, float-valued or string numbers, at the top level or one level down
(``{"label": {...}}``). Anything else is rejected with the file and the field.
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from core.taxonomy import INDICATORS
from datasets.folder import DatasetError
from datasets.readers import RawSample, is_image

log = logging.getLogger(__name__)

IMAGE_KEYS = ("image_file_name", "image_name", "file_name", "filename", "img_name", "imageFileName")
_VALUE_KEY = re.compile(r"^value[ _]?([1-6])$", re.IGNORECASE)
# Korean indicator names as the data set's folders and some label files write them.
KOREAN_NAMES = {
    "미세각질": "microkeratin",
    "피지과다": "sebum",
    "모낭사이홍반": "erythema_between_follicles",
    "모낭홍반농포": "follicular_erythema_pustule",
    "비듬": "dandruff",
    "탈모": "hair_loss",
}
_SPLIT_WORDS = {
    "training": "train", "train": "train", "학습": "train", "1.training": "train",
    "validation": "val", "valid": "val", "val": "val", "검증": "val", "2.validation": "val",
    "test": "test", "testing": "test", "시험": "test",
}
_SUBJECT = re.compile(r"^(\d{3,5}_[A-Za-z0-9]+)_")


def looks_like_label(data: Any) -> bool:
    return isinstance(data, dict) and any(_VALUE_KEY.match(str(k)) for k in _flatten(data))


def _flatten(data: dict[str, Any]) -> dict[str, Any]:
    """Top-level fields plus the fields of nested objects one level down."""
    flat = {k: v for k, v in data.items() if not isinstance(v, dict)}
    for value in data.values():
        if isinstance(value, dict):
            for key, inner in value.items():
                flat.setdefault(key, inner)
    return flat


def _grade(value: Any, file: Path, field: str) -> int:
    try:
        number = float(str(value).strip())
    except ValueError as err:
        raise DatasetError(f"{file}: field {field} must be a grade 0-3, got {value!r}") from err
    if number != int(number) or not 0 <= number <= 3:
        raise DatasetError(f"{file}: field {field} must be a grade 0-3, got {value!r}")
    return int(number)


def parse_label(data: Any, file: Path) -> tuple[str, dict[str, int], dict[str, Any]]:
    """(image file name, six grades, metadata) from one label JSON object."""
    if not isinstance(data, dict):
        raise DatasetError(f"{file}: expected a JSON object with image_file_name and value_1..value_6")
    flat = _flatten(data)
    name = next((str(flat[k]) for k in IMAGE_KEYS if flat.get(k)), None)
    if name is None:
        raise DatasetError(f"{file}: no image file name field (expected one of {', '.join(IMAGE_KEYS)})")
    grades: dict[str, int] = {}
    meta: dict[str, Any] = {}
    for key, value in flat.items():
        match = _VALUE_KEY.match(str(key))
        if match:
            grades[INDICATORS[int(match.group(1)) - 1]] = _grade(value, file, key)
        elif key in KOREAN_NAMES:
            grades[KOREAN_NAMES[key]] = _grade(value, file, key)
        elif key not in IMAGE_KEYS and isinstance(value, (str, int, float, bool)):
            meta[str(key)] = value
    missing = [f"value_{i + 1}" for i, n in enumerate(INDICATORS) if n not in grades]
    if len(missing) == len(INDICATORS):
        raise DatasetError(f"{file}: no grade fields (expected value_1..value_6)")
    if missing:
        log.warning("%s: missing %s; those indicators stay unlabelled", file, ", ".join(missing))
    return name, grades, meta


def split_from_path(path: Path) -> str | None:
    for part in path.parts:
        word = re.sub(r"^\[.*?\]", "", part).strip().lower()
        if word in _SPLIT_WORDS:
            return _SPLIT_WORDS[word]
    return None


def read(root: Path) -> list[RawSample]:
    labels = sorted(p for p in root.rglob("*.json") if p.name != "dataset.json")
    if not labels:
        raise DatasetError(f"{root} has no label JSON files: not an AI-Hub scalp download")
    images: dict[str, Path] = {}
    for path in root.rglob("*"):
        if is_image(path):
            images.setdefault(path.name.lower(), path)
    samples: list[RawSample] = []
    missing: list[str] = []
    for file in labels:
        try:
            data = json.loads(file.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as err:
            raise DatasetError(f"{file}: invalid JSON ({err.msg} at line {err.lineno})") from err
        name, grades, meta = parse_label(data, file)
        image = images.get(Path(name).name.lower())
        if image is None:
            missing.append(f"{file} -> {name}")
            continue
        subject = _SUBJECT.match(image.stem)
        if subject:
            meta["subject"] = subject.group(1)
        samples.append(
            RawSample(path=image, label_file=file, split=split_from_path(file.relative_to(root)), indicators=grades, meta=meta)
        )
    if missing:
        log.warning(
            "%d label files name an image that is not in %s (first: %s); they were skipped",
            len(missing), root, missing[0],
        )
    if not samples:
        raise DatasetError(f"{root}: label JSON found but none of the images they name ({missing[:1]})")
    return samples
