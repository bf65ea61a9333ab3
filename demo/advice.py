"""Care advice for an :class:`~core.analysis.Analysis`, from the curated ``knowledge.yaml``.

No generated text: every sentence comes from the knowledge file, chosen by the grades and
an optional profile (age band, sex, dye/perm frequency, hair-loss product use).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from core.analysis import Analysis
from core.taxonomy import INDICATOR_GRADE_NAMES, INDICATORS

KNOWLEDGE = Path(__file__).with_name("knowledge.yaml")
AGE_BANDS = ("under 20", "20-29", "30-39", "40-49", "50-59", "60+")
SEXES = ("female", "male", "prefer not to say")
FREQUENCIES = ("never", "every few months", "monthly or more")


@dataclass(frozen=True)
class Profile:
    """What a person may choose to tell the demo; nothing of it is stored."""

    age_band: str | None = None
    sex: str | None = None
    dye_perm: str | None = None
    hair_loss_products: bool = False


@dataclass
class AdviceItem:
    indicator: str
    title: str
    grade: int
    grade_name: str
    confidence: float
    description: str
    advice: str
    sources: list[str] = field(default_factory=list)


@dataclass
class Advice:
    items: list[AdviceItem]
    hair_loss: str | None
    profile_notes: list[str]
    closing: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": [vars(i) for i in self.items],
            "hair_loss": self.hair_loss,
            "profile_notes": self.profile_notes,
            "closing": self.closing,
        }

    def markdown(self) -> str:
        lines = []
        if self.hair_loss:
            lines.append(f"**Hair loss:** {self.hair_loss}")
        for item in self.items:
            lines.append(f"### {item.title}: grade {item.grade} ({item.grade_name}, confidence {item.confidence:.0%})")
            lines.append(item.description)
            lines.append(f"*What helps:* {item.advice}")
        for note in self.profile_notes:
            lines.append(f"- {note}")
        if not self.items and not self.hair_loss:
            lines.append("No scalp problem was graded above 0 in this picture.")
        lines.append(f"\n_{self.closing}_")
        return "\n\n".join(lines)


@lru_cache(maxsize=1)
def knowledge() -> dict[str, Any]:
    return yaml.safe_load(KNOWLEDGE.read_text(encoding="utf-8"))


def advise(analysis: Analysis, profile: Profile | None = None) -> Advice:
    """Advice for every indicator graded above 0, plus the hair-loss grade and profile notes."""
    kb = knowledge()
    profile = profile or Profile()
    items = []
    if analysis.is_scalp:
        for name in INDICATORS:
            result = analysis.indicators.get(name)
            if result is None or int(result.grade) == 0:
                continue
            entry = kb["indicators"][name]
            grade = int(result.grade)
            items.append(AdviceItem(
                indicator=name, title=entry["title"], grade=grade, grade_name=INDICATOR_GRADE_NAMES[grade],
                confidence=result.confidence, description=entry["description"], advice=entry["advice"][grade],
                sources=[kb["sources"][s] for s in entry["sources"]],
            ))
    hair_loss = None
    if analysis.is_scalp and analysis.hair_loss is not None:
        hair_loss = f"{str(analysis.hair_loss.grade).upper()} ({analysis.hair_loss.confidence:.0%}). {kb['hair_loss_grade'][analysis.hair_loss.grade]}"
    losing = analysis.is_scalp and (
        (analysis.hair_loss is not None and analysis.hair_loss.grade != "low")
        or int(getattr(analysis.indicators.get("hair_loss"), "grade", 0) or 0) > 0
    )
    notes = []
    tips = kb["profile"]
    if profile.dye_perm == "monthly or more":
        notes.append(tips["dye_or_perm_frequent"])
    if profile.hair_loss_products:
        notes.append(tips["using_hair_loss_products"])
    if losing and profile.age_band in ("under 20", "20-29"):
        notes.append(tips["age_under_30_hair_loss"])
    if profile.age_band == "60+":
        notes.append(tips["age_60_plus"])
    if losing and profile.sex == "female":
        notes.append(tips["sex_female_hair_loss"])
    if losing and profile.sex == "male":
        notes.append(tips["sex_male_hair_loss"])
    return Advice(items=items, hair_loss=hair_loss, profile_notes=notes, closing=kb["closing"])
