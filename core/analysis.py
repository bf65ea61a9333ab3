"""The ``Analysis``: the one result object of scalpscope.

``Pipeline.analyze()`` returns it; the batch runner, the report, the demo and the HTTP API
consume it and never re-derive results. It serializes itself (:meth:`Analysis.to_json`),
summarizes itself in one line (:meth:`Analysis.summary`) and draws its own overlay
(:meth:`Analysis.plot`).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from core.taxonomy import HAIR_LOSS_GRADES, INDICATOR_GRADE_NAMES, INDICATORS

DISCLAIMER = "Screening aid, not a diagnosis: see a dermatologist for medical advice."
SCHEMA_VERSION = 1

# Severity colours (RGB): good → severe, and low → high.
GRADE_COLORS = {0: (46, 160, 67), 1: (230, 190, 30), 2: (240, 120, 20), 3: (210, 30, 45)}
HAIR_LOSS_COLORS = {"low": GRADE_COLORS[1], "mid": GRADE_COLORS[2], "high": GRADE_COLORS[3]}
SHORT_NAMES = {
    "microkeratin": "microkeratin",
    "sebum": "sebum",
    "erythema_between_follicles": "erythema",
    "follicular_erythema_pustule": "pustules",
    "dandruff": "dandruff",
    "hair_loss": "hair loss",
}


# ----------------------------------------------------------------------------- mask RLE
def mask_to_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO-style uncompressed RLE: column-major run lengths, the first run background."""
    flat = np.asarray(mask, dtype=bool).flatten(order="F").astype(np.int8)
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        runs = [0, *runs]
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": " ".join(map(str, runs))}


def rle_to_mask(rle: dict[str, Any]) -> np.ndarray:
    height, width = rle["size"]
    counts = [int(c) for c in str(rle["counts"]).split()] if rle["counts"] else []
    flat = np.zeros(height * width, dtype=bool)
    position, value = 0, False
    for count in counts:
        if value:
            flat[position : position + count] = True
        position += count
        value = not value
    return flat.reshape((height, width), order="F")


# ----------------------------------------------------------------------------- records
@dataclass
class RegionResult:
    box: list[float]  # xyxy in original-image pixels
    kind: str
    grade: str | None
    confidence: float
    area_px: int = 0
    mask_rle: dict[str, Any] | None = None

    def mask(self) -> np.ndarray | None:
        return None if self.mask_rle is None else rle_to_mask(self.mask_rle)


@dataclass
class GradeResult:
    grade: Any  # int 0-3 for indicators, "low|mid|high" for hair loss
    probs: Any  # list for indicators, {grade: p} for hair loss

    @property
    def confidence(self) -> float:
        values = self.probs.values() if isinstance(self.probs, dict) else self.probs
        return float(max(values))


@dataclass
class Analysis:
    """Everything scalpscope says about one image."""

    image: str
    size: tuple[int, int]  # (width, height) of the original image
    is_scalp: bool
    scalp_score: float
    view: str | None = None  # "closeup" | "head"
    view_confidence: float | None = None
    hair_loss: GradeResult | None = None
    indicators: dict[str, GradeResult] = field(default_factory=dict)
    regions: list[RegionResult] = field(default_factory=list)
    hair: dict[str, Any] | None = None
    native_stage: GradeResult | None = None
    models: dict[str, str] = field(default_factory=dict)
    timing_ms: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    # --------------------------------------------------------------------- serialization
    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["size"] = list(self.size)
        out["schema_version"] = SCHEMA_VERSION
        out["disclaimer"] = DISCLAIMER
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Analysis:
        def grade(value: Any) -> GradeResult | None:
            return None if value is None else GradeResult(**value)

        return cls(
            image=data["image"],
            size=tuple(data["size"]),
            is_scalp=bool(data["is_scalp"]),
            scalp_score=float(data["scalp_score"]),
            view=data.get("view"),
            view_confidence=data.get("view_confidence"),
            hair_loss=grade(data.get("hair_loss")),
            indicators={k: GradeResult(**v) for k, v in (data.get("indicators") or {}).items()},
            regions=[RegionResult(**r) for r in data.get("regions") or []],
            hair=data.get("hair"),
            native_stage=grade(data.get("native_stage")),
            models=dict(data.get("models") or {}),
            timing_ms=dict(data.get("timing_ms") or {}),
            notes=list(data.get("notes") or []),
        )

    @classmethod
    def from_json(cls, text: str) -> Analysis:
        return cls.from_dict(json.loads(text))

    # --------------------------------------------------------------------- derived facts
    @property
    def affected_fraction(self) -> float:
        """Share of the image covered by the union of region masks (boxes where no mask)."""
        width, height = self.size
        if not self.regions or width * height == 0:
            return 0.0
        union = np.zeros((height, width), dtype=bool)
        for region in self.regions:
            mask = region.mask()
            if mask is not None and mask.shape == union.shape:
                union |= mask
            else:
                x1, y1, x2, y2 = (round(v) for v in region.box)
                union[max(y1, 0) : y2, max(x1, 0) : x2] = True
        return float(union.mean())

    def summary(self) -> str:
        """One line for people: what it is, the hair-loss grade and the indicators above 0."""
        name = self.image.rsplit("/", 1)[-1]
        if not self.is_scalp:
            return f"{name}: not a scalp photo (scalp score {self.scalp_score:.2f}); not graded"
        parts = [f"{name}: {self.view or 'unknown view'} ({(self.view_confidence or 0):.2f})"]
        if self.hair_loss:
            parts.append(f"hair loss {self.hair_loss.grade.upper()} ({self.hair_loss.confidence:.2f})")
        raised = [
            f"{SHORT_NAMES[n]} {g.grade} {INDICATOR_GRADE_NAMES[g.grade]} ({g.confidence:.2f})"
            for n, g in self.indicators.items()
            if g.grade
        ]
        if self.indicators:
            parts.append(", ".join(raised) if raised else "all indicators good")
        parts.append(f"{len(self.regions)} regions")
        if self.hair and self.hair.get("count") is not None:
            parts.append(hair_label(self.hair))
        return " | ".join(parts)

    # --------------------------------------------------------------------- overlay
    def plot(self, rgb: np.ndarray, legend: bool = True) -> np.ndarray:
        """The overlay: masks tinted by grade, boxes with grade and confidence, a grade legend."""
        from core.overlay import draw_analysis

        return draw_analysis(self, rgb, legend=legend)


def hair_label(record: dict[str, Any]) -> str:
    """One line for people from an ``Analysis.hair`` record: ``41 hairs, median 71 um, thin 7%, 108/cm2``.

    Only ``count`` is required: records stored by other versions (a tracking database keeps
    them for years) may lack the thickness fields, and then the line just leaves them out.
    """
    parts = [f"{record['count']} hair{'' if record['count'] == 1 else 's'}"]
    thickness, units = hair_thickness(record)
    if thickness.get("median") is not None:
        parts.append(f"median {thickness['median']:.0f} {units}")  # ASCII: the built-in font has no µ
    if record.get("thin_ratio") is not None:
        parts.append(f"thin {100 * record['thin_ratio']:.0f}%")
    if record.get("density_per_cm2") is not None:
        parts.append(f"{record['density_per_cm2']:.0f}/cm2")
    return ", ".join(parts)


def hair_thickness(record: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The thickness summary (``{median, p10, p90}``) of an ``Analysis.hair`` record and its
    units (``"um"`` or ``"px"``); ``({}, None)`` for records without one (other versions)."""
    units = record.get("units")
    thickness = record.get(f"thickness_{units}") if units else None
    return (thickness, units) if isinstance(thickness, dict) else ({}, None)


def grade_color(region: RegionResult, analysis: Analysis) -> tuple[int, int, int]:
    if region.grade in HAIR_LOSS_COLORS:
        return HAIR_LOSS_COLORS[region.grade]
    indicator = analysis.indicators.get(region.kind)
    if indicator is not None:
        return GRADE_COLORS[max(1, int(indicator.grade))]
    return GRADE_COLORS[2]


__all__ = [
    "DISCLAIMER",
    "HAIR_LOSS_GRADES",
    "INDICATORS",
    "Analysis",
    "GradeResult",
    "RegionResult",
    "grade_color",
    "hair_label",
    "hair_thickness",
    "mask_to_rle",
    "rle_to_mask",
]
