"""Honest change detection between two visits of one person.

A grade that differs between two visits is reported as a change only when both hold:

1. **The captures are comparable**: same view (close-up vs close-up, head vs head), both graded
   as scalp photos, and a capture consistency score (:func:`tracking.capture.consistency`) of at
   least :data:`~tracking.capture.MIN_CONSISTENCY`. Otherwise every grade reads "not comparable",
   with the reason.
2. **The change exceeds the model's own uncertainty**: treating the two visits' calibrated
   grade probabilities as independent, ``P(worse) = P(later grade > earlier grade)`` (or
   ``P(better)``, the reverse) reaches :data:`CHANGE_PROBABILITY`. Otherwise it reads
   "no reliable change", even when the top grades differ.

Why 0.8: two identical predictions can never pass it (for four grades P(worse) is at most
0.375 when ``p == q``; for three, 1/3), while a one-grade move where each visit puts about
0.8 on its grade does (P ~ 0.83). Softer predictions need a bigger move to count.

>>> comparison = compare(first_visit, last_visit)                      # doctest: +SKIP
>>> comparison.indicators["dandruff"].status, round(comparison.indicators["dandruff"].p_worse, 2)
('worse', 0.97)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from core.analysis import SHORT_NAMES, GradeResult
from core.taxonomy import HAIR_LOSS_GRADES, INDICATORS
from tracking.capture import MIN_CONSISTENCY, Consistency, consistency
from tracking.visit import Visit

BETTER = "better"
WORSE = "worse"
NO_RELIABLE_CHANGE = "no reliable change"
NOT_COMPARABLE = "not comparable"
STATUSES = (WORSE, BETTER, NO_RELIABLE_CHANGE, NOT_COMPARABLE)

#: A change is reported when P(worse) or P(better) reaches this (see the module docstring).
CHANGE_PROBABILITY = 0.8

#: Key of the Low/Mid/High hair-loss grade (the 0-3 ``hair_loss`` indicator keeps its own name).
HAIR_LOSS_GRADE = "hair_loss_grade"
LABELS = {
    HAIR_LOSS_GRADE: "hair-loss grade (low/mid/high)",
    **{name: f"{SHORT_NAMES[name]} (0-3)" for name in INDICATORS},
}
VIEW_NAMES = {"closeup": "close-up", "head": "head photo"}


@dataclass(frozen=True)
class Change:
    """One grade between two visits: what happened, how sure, and why."""

    name: str  # HAIR_LOSS_GRADE or an indicator name
    status: str  # worse | better | no reliable change | not comparable
    earlier_grade: Any
    later_grade: Any
    p_worse: float | None  # P(later grade > earlier grade); None when not comparable
    p_better: float | None
    reason: str

    @property
    def label(self) -> str:
        return LABELS.get(self.name, self.name)

    @property
    def probability(self) -> float | None:
        """The probability behind the status: P(worse) or P(better), the larger when neither counts."""
        if self.p_worse is None or self.p_better is None:
            return None
        if self.status == BETTER:
            return self.p_better
        if self.status == WORSE:
            return self.p_worse
        return max(self.p_worse, self.p_better)


@dataclass(frozen=True)
class Comparison:
    """Every grade of a later visit against an earlier one."""

    earlier_id: int
    later_id: int
    earlier_date: datetime
    later_date: datetime
    comparable: bool
    reason: str | None  # why the captures are not comparable; None when they are
    consistency: Consistency | None  # None where a capture profile is missing
    hair_loss: Change
    indicators: dict[str, Change]
    threshold: float = CHANGE_PROBABILITY
    notes: list[str] = field(default_factory=list)  # caveats that do not block the comparison

    def changes(self) -> list[Change]:
        """The hair-loss grade first, then the six indicators in taxonomy order."""
        return [self.hair_loss, *self.indicators.values()]

    def counts(self) -> dict[str, int]:
        tally = Counter(change.status for change in self.changes())
        return {status: tally.get(status, 0) for status in STATUSES}

    def summary(self) -> str:
        """One line, e.g. ``2024-01-10 -> 2024-06-02 (consistency 0.93): worse: dandruff (0-3) P=0.97; ...``."""
        head = f"{self.earlier_date:%Y-%m-%d} -> {self.later_date:%Y-%m-%d}"
        if self.consistency is not None:
            head += f" (consistency {self.consistency.score:.2f})"
        if not self.comparable:
            return f"{head}: not comparable: {self.reason}"
        parts = []
        for status in (WORSE, BETTER):
            moved = [c for c in self.changes() if c.status == status]
            if moved:
                parts.append(f"{status}: " + ", ".join(f"{c.label} P={c.probability:.2f}" for c in moved))
        counts = self.counts()
        for status in (NO_RELIABLE_CHANGE, NOT_COMPARABLE):
            if counts[status]:
                parts.append(f"{counts[status]} {status}")
        return f"{head}: " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["earlier_date"] = self.earlier_date.isoformat()
        out["later_date"] = self.later_date.isoformat()
        return out


# ----------------------------------------------------------------------------- probabilities
def ordinal_change_probabilities(earlier: Sequence[float], later: Sequence[float]) -> tuple[float, float]:
    """``(P(later > earlier), P(later < earlier))`` for two independent grade distributions.

    Both are probability vectors over the same ordered grades (good -> severe).

    >>> [round(p, 3) for p in ordinal_change_probabilities([0.9, 0.1, 0, 0], [0, 0.1, 0.8, 0.1])]
    [0.99, 0.0]
    """
    if len(earlier) != len(later):
        raise ValueError(f"grade probabilities of different lengths ({len(earlier)} and {len(later)})")
    worse = sum(earlier[i] * later[j] for i in range(len(earlier)) for j in range(i + 1, len(later)))
    better = sum(earlier[i] * later[j] for i in range(len(earlier)) for j in range(i))
    return float(worse), float(better)


def _probabilities(result: GradeResult | None, grades: Sequence[Any]) -> list[float] | None:
    """The grade distribution as a vector in ``grades`` order, normalized; None when unusable."""
    if result is None or result.probs is None:
        return None
    try:
        if isinstance(result.probs, dict):
            values = [float(result.probs[grade]) for grade in grades]
        else:
            values = [float(p) for p in result.probs]
    except (KeyError, TypeError, ValueError):
        return None
    total = sum(values)
    if len(values) != len(grades) or not all(math.isfinite(v) and v >= 0 for v in values) or total <= 0:
        return None
    return [v / total for v in values]


# ----------------------------------------------------------------------------- comparing
def _capture_gate(earlier: Visit, later: Visit, min_consistency: float) -> tuple[str | None, Consistency | None]:
    """Why the two captures cannot be compared (None when they can), and their consistency."""
    score = consistency(earlier.capture, later.capture) if earlier.capture and later.capture else None
    for visit in (earlier, later):
        if not visit.analysis.is_scalp:
            return f"the {visit.label} picture is not a scalp photo, so nothing was graded", score
    if earlier.view is None or later.view is None:
        unknown = earlier if earlier.view is None else later
        return f"the view of the {unknown.label} picture is unknown", score
    if earlier.view != later.view:
        return (
            f"different views: {VIEW_NAMES.get(earlier.view, earlier.view)} on {earlier.label} vs "
            f"{VIEW_NAMES.get(later.view, later.view)} on {later.label}"
        ), score
    for visit in (earlier, later):
        if visit.capture is None:
            return (
                f"no capture profile for the {visit.label} visit (recorded before profiles existed; "
                "run history with the picture at its recorded path to measure it)"
            ), score
    if score.score < min_consistency:
        return f"captures taken too differently: consistency {score.explain()} is under {min_consistency:.2f}", score
    return None, score


def _grade_change(
    name: str,
    earlier: GradeResult | None,
    later: GradeResult | None,
    grades: Sequence[Any],
    labels: tuple[str, str],
    threshold: float,
) -> Change:
    earlier_grade = None if earlier is None else earlier.grade
    later_grade = None if later is None else later.grade
    for result, label in ((earlier, labels[0]), (later, labels[1])):
        if result is None:
            return Change(name, NOT_COMPARABLE, earlier_grade, later_grade, None, None, f"not graded on {label}")
    p, q = _probabilities(earlier, grades), _probabilities(later, grades)
    for probs, label in ((p, labels[0]), (q, labels[1])):
        if probs is None:
            return Change(
                name,
                NOT_COMPARABLE,
                earlier_grade,
                later_grade,
                None,
                None,
                f"no usable grade probabilities on {label}",
            )
    p_worse, p_better = ordinal_change_probabilities(p, q)
    move = f"{earlier_grade} -> {later_grade}"
    if p_worse >= threshold:
        status, reason = WORSE, f"P(worse) = {p_worse:.2f} reaches {threshold:.2f} ({move})"
    elif p_better >= threshold:
        status, reason = BETTER, f"P(better) = {p_better:.2f} reaches {threshold:.2f} ({move})"
    else:
        status = NO_RELIABLE_CHANGE
        odds = f"P(worse) = {p_worse:.2f}, P(better) = {p_better:.2f}, both under {threshold:.2f}"
        reason = (
            f"{move}, but {odds}: within the model's uncertainty"
            if earlier_grade != later_grade
            else f"{earlier_grade} at both visits; {odds}"
        )
    return Change(name, status, earlier_grade, later_grade, round(p_worse, 4), round(p_better, 4), reason)


def _notes(earlier: Visit, later: Visit, score: Consistency | None) -> list[str]:
    notes = []
    if later.visit_date < earlier.visit_date:
        notes.append(f"the later visit ({later.label}) is dated before the earlier one ({earlier.label})")
    for stage in sorted(set(earlier.models) | set(later.models)):
        before, after = earlier.models.get(stage), later.models.get(stage)
        if before != after:
            notes.append(
                f"graded by different {stage} weights ({(before or 'none')[:19]} vs {(after or 'none')[:19]}): "
                "part of any change may be the model's, not the scalp's"
            )
    for visit in (earlier, later):
        if visit.date_source == "mtime":
            notes.append(
                f"the {visit.label} date is the file's time (no EXIF date): a copied photo carries its copy date"
            )
    if score is not None:
        notes.extend(f"{factor} not checked: {why}" for factor, why in score.skipped.items())
    return notes


def compare(
    earlier: Visit,
    later: Visit,
    threshold: float = CHANGE_PROBABILITY,
    min_consistency: float = MIN_CONSISTENCY,
) -> Comparison:
    """Compare every grade of ``later`` with ``earlier``: better / worse / no reliable change /
    not comparable, each with its probability and reason (see the module docstring)."""
    if not 0.5 < threshold <= 1.0:
        raise ValueError(
            f"change threshold {threshold} must be above 0.5 and at most 1: P(worse) and P(better) "
            "could otherwise both pass"
        )
    blocked, score = _capture_gate(earlier, later, min_consistency)
    labels = (f"the {earlier.label} visit", f"the {later.label} visit")
    a, b = earlier.analysis, later.analysis

    def change(name: str, before: GradeResult | None, after: GradeResult | None, grades: Sequence[Any]) -> Change:
        if blocked:
            grades_seen = (None if before is None else before.grade, None if after is None else after.grade)
            return Change(name, NOT_COMPARABLE, *grades_seen, None, None, blocked)
        return _grade_change(name, before, after, grades, labels, threshold)

    return Comparison(
        earlier_id=earlier.id,
        later_id=later.id,
        earlier_date=earlier.visit_date,
        later_date=later.visit_date,
        comparable=blocked is None,
        reason=blocked,
        consistency=score,
        hair_loss=change(HAIR_LOSS_GRADE, a.hair_loss, b.hair_loss, HAIR_LOSS_GRADES),
        indicators={
            name: change(name, a.indicators.get(name), b.indicators.get(name), range(4)) for name in INDICATORS
        },
        threshold=threshold,
        notes=_notes(earlier, later, score),
    )
