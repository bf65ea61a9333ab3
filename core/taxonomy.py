"""The vocabulary of scalpscope: indicator names, grade scales and picture views.

One place defines them so records, models, metrics and reports agree.
"""
from __future__ import annotations

#: The six scalp indicators, in the order of the AI-Hub ``value_1``..``value_6`` fields.
INDICATORS: tuple[str, ...] = (
    "microkeratin",
    "sebum",
    "erythema_between_follicles",
    "follicular_erythema_pustule",
    "dandruff",
    "hair_loss",
)

#: Indicator grades: 0 good, 1 mild, 2 moderate, 3 severe.
INDICATOR_GRADES: tuple[int, ...] = (0, 1, 2, 3)
INDICATOR_GRADE_NAMES: tuple[str, ...] = ("good", "mild", "moderate", "severe")

#: Overall hair-loss grade and region grades.
HAIR_LOSS_GRADES: tuple[str, ...] = ("low", "mid", "high")

#: Kinds of picture: trichoscope close-up or a photo of the head.
VIEWS: tuple[str, ...] = ("closeup", "head")

#: Canonical split names stored in ``dataset.jsonl``; "valid" (Roboflow's name) is an alias of "val".
SPLITS: tuple[str, ...] = ("train", "val", "test")

_SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})


def canonical_split(name: str | None) -> str | None:
    """Map a split name as people write it ("valid", "Val") to the stored one ("val")."""
    if name is None:
        return None
    key = name.strip().lower()
    if key not in _SPLIT_ALIASES:
        raise ValueError(f"unknown split {name!r}: use one of train, val (or valid), test")
    return _SPLIT_ALIASES[key]


def check_indicator(name: str) -> str:
    if name not in INDICATORS:
        raise ValueError(f"unknown indicator {name!r}: expected one of {', '.join(INDICATORS)}")
    return name


def check_hair_loss_grade(grade: str | None) -> str | None:
    if grade is not None and grade not in HAIR_LOSS_GRADES:
        raise ValueError(f"unknown hair-loss grade {grade!r}: expected one of {', '.join(HAIR_LOSS_GRADES)}")
    return grade
