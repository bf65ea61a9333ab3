"""The canonical records every reader produces and every stage consumes.

A :class:`Sample` is one picture with everything known about it; a :class:`Region` is one
marked area in it. Both round-trip through JSON (``to_dict`` / ``from_dict``), which is how
``dataset.jsonl`` stores them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.taxonomy import (
    HAIR_LOSS_GRADES,
    INDICATORS,
    VIEWS,
    canonical_split,
    check_hair_loss_grade,
    check_indicator,
)

Box = tuple[float, float, float, float]


@dataclass
class Region:
    """One marked area of a picture, in pixel coordinates of the image file.

    ``kind`` is one of the six indicator names; ``grade`` is ``low|mid|high`` where the source
    grades the region, else None. ``polygon`` is the outline when the source drew one, and
    ``mask`` a PNG path (relative to the dataset folder) when an exact bitmap exists.
    """

    box: Box
    kind: str
    grade: str | None = None
    polygon: list[tuple[float, float]] | None = None
    mask: str | None = None
    source_class: str | None = None

    def __post_init__(self) -> None:
        check_indicator(self.kind)
        check_hair_loss_grade(self.grade)
        self.box = tuple(float(v) for v in self.box)  # type: ignore[assignment]
        if len(self.box) != 4:
            raise ValueError(f"a box has 4 numbers (x1, y1, x2, y2), got {len(self.box)}")
        if self.polygon is not None:
            self.polygon = [(float(x), float(y)) for x, y in self.polygon]

    @property
    def label(self) -> str:
        """The detector class this region trains: its kind, plus its grade where graded."""
        return f"{self.kind}/{self.grade}" if self.grade else self.kind

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.box
        return max(0.0, x2 - x1) * max(0.0, y2 - y1)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"box": [round(v, 2) for v in self.box], "kind": self.kind, "grade": self.grade}
        if self.polygon is not None:
            out["polygon"] = [[round(x, 2), round(y, 2)] for x, y in self.polygon]
        if self.mask is not None:
            out["mask"] = self.mask
        if self.source_class is not None:
            out["source_class"] = self.source_class
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Region:
        return cls(
            box=tuple(data["box"]),  # type: ignore[arg-type]
            kind=data["kind"],
            grade=data.get("grade"),
            polygon=[tuple(p) for p in data["polygon"]] if data.get("polygon") is not None else None,
            mask=data.get("mask"),
            source_class=data.get("source_class"),
        )


def empty_indicators() -> dict[str, int | None]:
    return {name: None for name in INDICATORS}


@dataclass
class Sample:
    """One picture and its labels.

    ``image`` is relative to the dataset folder. ``indicators`` always holds the six names,
    each 0-3 or None (unlabelled). ``hair_loss`` is ``low|mid|high`` or None. ``meta`` holds
    ``view`` (``closeup|head``), ``subject`` where known, and source metadata (age, sex...).
    ``source`` names the dataset, the original file and its native class(es).
    """

    image: str
    width: int | None = None
    height: int | None = None
    regions: list[Region] = field(default_factory=list)
    indicators: dict[str, int | None] = field(default_factory=empty_indicators)
    hair_loss: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    split: str | None = None

    def __post_init__(self) -> None:
        full = empty_indicators()
        for name, grade in self.indicators.items():
            check_indicator(name)
            if grade is not None:
                grade = int(grade)
                if grade not in (0, 1, 2, 3):
                    raise ValueError(f"indicator {name} grade must be 0-3, got {grade}")
            full[name] = grade
        self.indicators = full
        check_hair_loss_grade(self.hair_loss)
        self.split = canonical_split(self.split)
        view = self.meta.get("view")
        if view is not None and view not in VIEWS:
            raise ValueError(f"unknown view {view!r}: expected one of {', '.join(VIEWS)}")

    @property
    def view(self) -> str | None:
        return self.meta.get("view")

    @property
    def group(self) -> str:
        """What must stay in one split: the subject when known, else the source photo."""
        return str(self.meta.get("subject") or self.source.get("group") or self.image)

    def label_keys(self) -> list[str]:
        """Discrete labels used to stratify splits and count classes."""
        keys = sorted({f"kind:{r.kind}" + (f"/{r.grade}" if r.grade else "") for r in self.regions})
        keys += [f"{name}:{grade}" for name, grade in self.indicators.items() if grade is not None]
        if self.hair_loss is not None:
            keys.append(f"hair_loss_grade:{self.hair_loss}")
        if not self.regions and not keys:
            keys.append("negative")
        return keys

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "width": self.width,
            "height": self.height,
            "split": self.split,
            "regions": [r.to_dict() for r in self.regions],
            "indicators": dict(self.indicators),
            "hair_loss": self.hair_loss,
            "meta": self.meta,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sample:
        return cls(
            image=data["image"],
            width=data.get("width"),
            height=data.get("height"),
            regions=[Region.from_dict(r) for r in data.get("regions", [])],
            indicators=data.get("indicators") or empty_indicators(),
            hair_loss=data.get("hair_loss"),
            meta=dict(data.get("meta") or {}),
            source=dict(data.get("source") or {}),
            split=data.get("split"),
        )


__all__ = ["HAIR_LOSS_GRADES", "INDICATORS", "Box", "Region", "Sample", "empty_indicators"]
