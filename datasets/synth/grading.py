"""How a synthetic picture's labels follow from what was drawn.

The generator picks a target grade per indicator only to decide how much to draw; the label
it writes is always re-measured from the finished drawing with the thresholds below, so it
is exact by construction:

- five lesion indicators: grade from the *affected area fraction*, the union of that kind's
  region masks over the frame. No region of the kind means grade 0 (and nothing of it is drawn).
- ``hair_loss``: grade from the *density reduction* inside the thinning patch,
  ``1 - follicles_in_patch / follicles_expected_at_the_image's_density``.

>>> grade_from_area("dandruff", 0.02)
2
>>> grade_from_reduction(0.9), hair_loss_region_grade(2), hair_loss_image_grade(1)
(3, 'mid', 'mid')
"""
from __future__ import annotations

import numpy as np

#: Affected-area fraction at which grade 2 and grade 3 begin (any kept region is grade 1).
#: Diffuse patches spread wide; flakes and follicle rings are small, hence smaller cuts.
AREA_GRADE_CUTS: dict[str, tuple[float, float]] = {
    "microkeratin": (0.06, 0.15),
    "sebum": (0.08, 0.20),
    "erythema_between_follicles": (0.06, 0.15),
    "follicular_erythema_pustule": (0.006, 0.015),
    "dandruff": (0.012, 0.03),
}
#: Fraction of follicles removed in the thinning patch at which hair_loss grade 1, 2, 3 begin.
REDUCTION_GRADE_CUTS: tuple[float, float, float] = (0.30, 0.55, 0.80)
#: Target reductions drawn for hair_loss grades 1-3: inside each band, clear of its cuts.
REDUCTION_TARGETS: dict[int, tuple[float, float]] = {1: (0.36, 0.48), 2: (0.62, 0.74), 3: (0.86, 0.97)}
#: Target area as multiples of the grade's lower / upper cut, so measured areas land inside the band.
_AREA_TARGET_SPAN: dict[int, tuple[float, float]] = {1: (0.35, 0.75), 2: (1.2, 0.85), 3: (1.25, 1.9)}

#: Image-level Low/Mid/High from the 0-3 hair_loss grade; mirrors the AI-Hub relabel map's default.
HAIR_LOSS_IMAGE_GRADES: dict[int, str] = {0: "low", 1: "mid", 2: "high", 3: "high"}
#: A thinning patch's own grade: how thin it is (grade 1 patch = low thinning ... 3 = high).
HAIR_LOSS_REGION_GRADES: dict[int, str] = {1: "low", 2: "mid", 3: "high"}


def grade_from_area(kind: str, fraction: float) -> int:
    """0-3 grade of a lesion indicator whose kept regions cover ``fraction`` of the frame."""
    if fraction <= 0:
        return 0
    mid, severe = AREA_GRADE_CUTS[kind]
    return 1 + int(fraction >= mid) + int(fraction >= severe)


def grade_from_reduction(reduction: float) -> int:
    """0-3 hair_loss grade from the fraction of follicles removed in the thinning patch."""
    return sum(int(reduction >= cut) for cut in REDUCTION_GRADE_CUTS)


def target_area(rng: np.random.Generator, kind: str, grade: int) -> float:
    """An area fraction to aim for when drawing ``kind`` at ``grade`` (0 for grade 0)."""
    if grade == 0:
        return 0.0
    mid, severe = AREA_GRADE_CUTS[kind]
    low_cut, high_cut = {1: (mid, mid), 2: (mid, severe), 3: (severe, severe)}[grade]
    lo, hi = _AREA_TARGET_SPAN[grade]
    return float(rng.uniform(lo * low_cut, hi * high_cut))


def target_reduction(rng: np.random.Generator, grade: int) -> float:
    """A follicle-density reduction to aim for in the thinning patch (0 for grade 0)."""
    if grade == 0:
        return 0.0
    return float(rng.uniform(*REDUCTION_TARGETS[grade]))


def hair_loss_image_grade(grade: int) -> str:
    return HAIR_LOSS_IMAGE_GRADES[grade]


def hair_loss_region_grade(grade: int) -> str:
    return HAIR_LOSS_REGION_GRADES[grade]


def follicles_to_keep(expected: float, reduction: float, grade: int) -> int:
    """How many follicles to place in a thinning patch that should hold ``expected`` ones.

    Rounding a small expected count can push the reduction into a neighbouring grade, so pick
    the count nearest ``(1 - reduction) * expected`` whose measured grade is ``grade``;
    any thinning grade (1-3) beats none, and zero follicles is always grade 3.
    """
    wanted = (1.0 - reduction) * expected
    counts = range(int(np.floor(expected)) + 1)
    graded = [n for n in counts if grade_from_reduction(1.0 - n / expected) == grade] if expected > 0 else []
    pool = graded or [n for n in counts if grade_from_reduction(1.0 - n / expected) >= 1] or [0]
    return min(pool, key=lambda n: abs(n - wanted))
