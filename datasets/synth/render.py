"""Compose one synthetic trichoscope picture in memory, with its exact ground truth.

The order mirrors depth: skin, things in the skin (redness, follicle openings, pustules,
scaling, sebum film, flakes lying on skin), hair shadows, hairs, then what sits on hairs
(flakes stuck to shafts, oil glints) and finally the scope's optics.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from core.taxonomy import INDICATOR_GRADES, INDICATORS, check_indicator
from datasets.synth import grading
from datasets.synth.fields import Shape, ellipse_axes, soft_blob, tight_box
from datasets.synth.hair import (
    HAIR_COLOURS,
    MAX_WIDTH_PX,
    MIN_WIDTH_PX,
    UNIT_SIZE_P,
    UNIT_SIZES,
    HairLayer,
    HairStyle,
    ShaftShading,
    Strand,
    draw_hairs,
    grow_strand,
    place_follicles,
    visible_strands,
)
from datasets.synth.lesions import (
    Patch,
    clump_points,
    paint_erythema,
    paint_flakes,
    paint_follicular,
    paint_microkeratin,
    paint_sebum_film,
    paint_sebum_glints,
    plan_dandruff,
    plan_follicular,
    plan_patches,
)
from datasets.synth.skin import Optics, render_skin, sample_skin_tone

#: Magnification: pixels per cm of scalp in a 640 px wide frame (about 11 um per pixel, so a
#: 70 um shaft is 6-7 px and the 640 x 480 field covers about 0.38 cm2).
PX_PER_CM = 900.0
#: Follicular units per cm2 that separate the recorded density levels.
DENSITY_LEVELS: tuple[tuple[float, str], ...] = ((75.0, "low"), (100.0, "normal"), (float("inf"), "high"))
#: Follicles are also placed this far outside the frame so hairs enter from the edges.
MARGIN_PX = 120
#: Thinning patch size as a fraction of the frame; a hair from outside ends where the
#: patch strength reaches a depth drawn from THINNING_CORE (the outline is at 0.5).
THINNING_AREA = (0.18, 0.38)
THINNING_CORE = (0.6, 1.01)
#: Hair coverage above which a flake under it is hidden (not part of its region's mask).
HIDDEN_BY_HAIR = 0.3
#: Share of hairs lifted off the skin towards the lens, hence out of focus.
DEFOCUSED_FRACTION = 0.08
#: ``clear`` layout: thinning patch size (fraction of the frame), small enough for one quadrant.
CLEAR_THINNING_AREA = (0.08, 0.14)
#: ``clear`` layout: every drawn kind at this strength (the default ties strength to the grade).
CLEAR_STRENGTH = 0.99
#: ``clear`` layout: the target grade of each kind when drawn (small diffuse patches that fit
#: a quadrant; the hair-loss patch near-bald, so its class is always ``hair_loss/high``).
CLEAR_GRADES: dict[str, int] = {"microkeratin": 1, "sebum": 1, "erythema_between_follicles": 1,
                                "follicular_erythema_pustule": 2, "dandruff": 2, "hair_loss": 3}
#: ``clear`` layout: how many kinds one picture shows (drawn uniformly).
CLEAR_KINDS_PER_IMAGE = (2, 3)


@dataclass(frozen=True)
class Subject:
    """One synthetic person: skin tone and hair, shared by all of their pictures."""

    subject_id: str
    skin_tone: tuple[float, float, float]
    hair: HairStyle

    @classmethod
    def sample(cls, rng: np.random.Generator, subject_id: str = "synth_subject_00000") -> Subject:
        return cls(subject_id, sample_skin_tone(rng), HairStyle.sample(rng))


@dataclass
class SynthRegion:
    """A drawn lesion: its kind, exact mask and (for thinning patches) grade."""

    kind: str
    mask: np.ndarray  # H x W bool
    grade: str | None = None
    box: tuple[int, int, int, int] = field(init=False)  # tight xyxy, right and bottom exclusive

    def __post_init__(self) -> None:
        box = tight_box(self.mask)
        if box is None:
            raise ValueError(f"a {self.kind} region needs a non-empty mask; empty ones are dropped before this")
        self.box = box


@dataclass
class HairTruth:
    """Every visible hair strand: how many, how thick, where."""

    count: int
    thickness_px: list[float]  # per visible strand, in instance-id order: its exact drawn width
    ids: np.ndarray  # H x W int32: 1..count for the strand on top, 0 for no hair
    hairs_per_cm2: float  # strands rooted in the frame per cm2 of the field
    density_level: str  # low | normal | high, from the follicular-unit density drawn
    #: per visible strand, in instance-id order: its centre line (x, y), root first, in frame
    #: px (running on under the hairs that hide parts of it and out of the frame)
    polylines: list[np.ndarray] = field(default_factory=list, repr=False)

    @property
    def mask(self) -> np.ndarray:
        return self.ids > 0


@dataclass
class SynthScalp:
    """One synthetic close-up and everything true about it.

    >>> scalp = render_scalp(np.random.default_rng(0), (320, 240))
    >>> scalp.rgb.shape, sorted(scalp.indicators) == sorted(INDICATORS)
    ((240, 320, 3), True)
    """

    rgb: np.ndarray  # H x W x 3 uint8
    regions: list[SynthRegion]
    indicators: dict[str, int]
    hair: HairTruth
    subject: Subject
    # What each grade was measured from: area fraction per lesion kind, density reduction for
    # hair_loss (unrounded, so re-grading them gives the same grades).
    measures: dict[str, float] = field(default_factory=dict)

    @property
    def hair_loss(self) -> str:
        """Image-level Low/Mid/High hair-loss grade."""
        return grading.hair_loss_image_grade(self.indicators["hair_loss"])


def render_scalp(
    rng: np.random.Generator,
    size: tuple[int, int] = (640, 480),
    subject: Subject | None = None,
    grades: dict[str, int] | None = None,
    clear: bool = False,
) -> SynthScalp:
    """Draw one trichoscope close-up of ``size`` (width, height).

    ``grades`` fixes target grades for some indicators (the rest are drawn uniformly 0-3).
    The returned ``indicators`` are measured from the drawing (see ``grading``), so they are
    exact; they miss a target now and then, when the frame clips a lesion, hairs hide
    flakes or patches of one kind overlap.

    ``clear`` draws an easy picture for checking that a detector can learn at all: each kind
    present is one region (one patch, one flake cluster, or inflamed follicles in one spot) in
    a quadrant of its own, at full strength. Without ``grades`` it draws 2-3 kinds
    (:func:`clear_grades`); with them, give every indicator (0 for the kinds to leave out): at
    most four kinds fit, one per quadrant.

    >>> scalp = render_scalp(np.random.default_rng(1), grades={"dandruff": 3, "sebum": 0})
    >>> scalp.indicators["sebum"], any(r.kind == "dandruff" for r in scalp.regions)
    (0, True)
    """
    width, height = size
    shape: Shape = (height, width)
    scale = min(width / 640.0, height / 480.0)
    subject = subject or Subject.sample(rng)
    targets = {name: int(rng.integers(0, 4)) for name in INDICATORS}
    if clear and grades is None:
        grades = clear_grades(rng)
    for name, grade in (grades or {}).items():
        if check_indicator(name) and grade not in INDICATOR_GRADES:
            raise ValueError(f"target grade for {name} must be one of 0-3, got {grade!r}")
        targets[name] = int(grade)
    strength = {name: CLEAR_STRENGTH if clear else 0.45 + 0.18 * grade for name, grade in targets.items()}
    cells = _clear_cells(rng, shape, [name for name in INDICATORS if targets[name]]) if clear else {}
    optics = Optics.sample(rng)

    canvas = render_skin(rng, shape, subject.skin_tone, scale)
    thinning, reduction = _plan_thinning(rng, shape, scale, targets["hair_loss"], cells.get("hair_loss"))
    sebum = plan_patches(rng, shape, grading.target_area(rng, "sebum", targets["sebum"]), center=cells.get("sebum"))
    follicles, in_patch, reduction = _plan_follicles(rng, shape, scale, subject.hair, thinning, reduction)
    strands = _grow_hairs(rng, scale, subject.hair, follicles, in_patch, thinning, reduction, sebum)
    hair = draw_hairs(strands, shape, blur_sigma=float(rng.uniform(0.4, 0.8)) * max(scale, 0.5))
    # Flakes count as hidden where a hair covers them even partly (blurred shafts included).
    hair_cover = hair.alpha >= HIDDEN_BY_HAIR

    erythema = plan_patches(rng, shape, grading.target_area(rng, "erythema_between_follicles",
                                                             targets["erythema_between_follicles"]),
                            center=cells.get("erythema_between_follicles"))
    scaling = plan_patches(rng, shape, grading.target_area(rng, "microkeratin", targets["microkeratin"]), 4,
                           center=cells.get("microkeratin"))
    in_frame = follicles[(follicles[:, 0] >= 0) & (follicles[:, 0] < width)
                         & (follicles[:, 1] >= 0) & (follicles[:, 1] < height)]
    follicular = plan_follicular(rng, shape, in_frame, grading.target_area(
        rng, "follicular_erythema_pustule", targets["follicular_erythema_pustule"]), scale,
        window=_cell_window(cells, "follicular_erythema_pustule", shape))
    flakes = plan_dandruff(rng, shape, grading.target_area(rng, "dandruff", targets["dandruff"]), scale, hair_cover,
                           center=cells.get("dandruff"))

    paint_erythema(rng, canvas, erythema, strength["erythema_between_follicles"])
    _paint_follicle_openings(canvas, strands, shape)
    paint_follicular(canvas, follicular, strength["follicular_erythema_pustule"])
    paint_microkeratin(rng, canvas, scaling, strength["microkeratin"], scale)
    paint_sebum_film(canvas, sebum, strength["sebum"])
    _cast_hair_shadows(canvas, hair, scale)
    paint_flakes(canvas, flakes, over_hair=False)
    _lay_hairs(canvas, hair)
    paint_flakes(canvas, flakes, over_hair=True)
    paint_sebum_glints(rng, canvas, sebum, strength["sebum"], scale)
    rgb = optics.apply(rng, canvas)

    regions = [SynthRegion("microkeratin", p.mask) for p in scaling]
    regions += [SynthRegion("sebum", p.mask) for p in sebum]
    regions += [SynthRegion("erythema_between_follicles", p.mask) for p in erythema]
    regions += [SynthRegion("follicular_erythema_pustule", lesion.mask) for lesion in follicular]
    regions += [SynthRegion("dandruff", cluster.mask) for cluster in flakes]
    indicators, measures = _measure_grades(regions, shape)
    if thinning is not None:
        # The patch was planned on the margin-padded frame; its label is the part in view.
        margin = (thinning.mask.shape[0] - height) // 2
        in_view = thinning.mask[margin : margin + height, margin : margin + width]
        grade = grading.grade_from_reduction(reduction)
        indicators["hair_loss"], measures["hair_loss"] = grade, reduction
        regions.append(SynthRegion("hair_loss", in_view, grading.hair_loss_region_grade(grade)))
    return SynthScalp(rgb, regions, indicators, _hair_truth(hair, strands, subject.hair, shape, scale), subject,
                      measures)


def clear_grades(rng: np.random.Generator) -> dict[str, int]:
    """Target grades of one ``clear`` picture: 2-3 kinds at ``CLEAR_GRADES``, the rest 0."""
    count = int(rng.integers(CLEAR_KINDS_PER_IMAGE[0], CLEAR_KINDS_PER_IMAGE[1] + 1))
    shown = set(rng.choice(len(INDICATORS), size=count, replace=False).tolist())
    return {name: CLEAR_GRADES[name] if i in shown else 0 for i, name in enumerate(INDICATORS)}


def _clear_cells(rng: np.random.Generator, shape: Shape, kinds: list[str]) -> dict[str, tuple[float, float]]:
    """The ``clear`` layout: each kind drawn gets a quadrant; its centre (x, y), jittered a little."""
    if len(kinds) > 4:
        raise ValueError(f"the clear layout fits at most four kinds, one per quadrant; got {kinds}")
    height, width = shape
    quadrants = rng.permutation(4)[: len(kinds)]
    jitter = rng.uniform(-1, 1, (len(kinds), 2)) * (width / 16, height / 16)
    return {kind: (float((0.25 + 0.5 * (q % 2)) * width + dx), float((0.25 + 0.5 * (q // 2)) * height + dy))
            for kind, q, (dx, dy) in zip(kinds, quadrants.tolist(), jitter)}


def _cell_window(cells: dict[str, tuple[float, float]], kind: str, shape: Shape) -> tuple[float, float, float, float] | None:
    """A box around the kind's quadrant centre, half a quadrant across (None: whole frame)."""
    if kind not in cells:
        return None
    (x, y), (height, width) = cells[kind], shape
    return x - width / 8, y - height / 8, x + width / 8, y + height / 8


def _plan_thinning(
    rng: np.random.Generator, shape: Shape, scale: float, grade: int, center: tuple[float, float] | None = None
) -> tuple[Patch | None, float]:
    """A thinning patch on the margin-padded frame, and the reduction it should show.

    With ``center`` (x, y in the frame) it is a smaller, round patch there (``clear`` layout).
    """
    if grade == 0:
        return None, 0.0
    height, width = shape
    margin = int(MARGIN_PX * scale)
    area = rng.uniform(*(CLEAR_THINNING_AREA if center else THINNING_AREA)) * height * width
    axes = ellipse_axes(area, float(rng.uniform(1.0, 1.3 if center else 1.8)))
    reach = min(axes[1], 0.45 * min(height, width))
    if center is None:
        center = (rng.uniform(reach, width - reach) + margin, rng.uniform(reach, height - reach) + margin)
    else:
        center = (center[0] + margin, center[1] + margin)
    alpha = soft_blob(rng, (height + 2 * margin, width + 2 * margin), center, axes, float(rng.uniform(0, np.pi)),
                      roughness=0.3, softness=0.3)
    return Patch(alpha, alpha >= 0.5), grading.target_reduction(rng, grade)


def _plan_follicles(
    rng: np.random.Generator, shape: Shape, scale: float, style: HairStyle, thinning: Patch | None, reduction: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """Follicles (x, y) on the margin-padded frame, which of them lie in the thinning patch,
    and the density reduction drawn there (the target rounded to whole follicles)."""
    height, width = shape
    margin = int(MARGIN_PX * scale)
    per_px = style.units_per_cm2 / (PX_PER_CM * scale) ** 2
    padded_area = (height + 2 * margin) * (width + 2 * margin)
    if thinning is None:
        follicles = place_follicles(rng, shape, margin, per_px, round(per_px * padded_area), None)
        return follicles, np.zeros(len(follicles), bool), 0.0
    patch_area = float(thinning.mask.sum())
    expected = per_px * patch_area
    keep = grading.follicles_to_keep(expected, reduction, grading.grade_from_reduction(reduction))
    outside = place_follicles(rng, shape, margin, per_px, round(per_px * (padded_area - patch_area)), ~thinning.mask)
    inside = place_follicles(rng, shape, margin, per_px, keep, thinning.mask)
    in_patch = np.r_[np.zeros(len(outside), bool), np.ones(len(inside), bool)]
    # Count what was placed, not what was asked for: the label must describe the drawing.
    return np.concatenate([outside, inside]), in_patch, 1.0 - len(inside) / expected


def _grow_hairs(
    rng: np.random.Generator,
    scale: float,
    style: HairStyle,
    follicles: np.ndarray,
    in_patch: np.ndarray,
    thinning: Patch | None,
    reduction: float,
    sebum: list[Patch],
) -> list[Strand]:
    """1-3 strands per follicle, in drawing order (shuffled, so hairs cross every which way)."""
    margin = int(MARGIN_PX * scale)
    # Miniaturised hairs in a thinning patch: single, thinner, shorter.
    units = np.where(in_patch, 1, rng.choice(UNIT_SIZES, size=len(follicles), p=UNIT_SIZE_P))
    unit_angles = rng.uniform(0, 2 * np.pi) + rng.normal(0.0, rng.uniform(0.1, 0.4), len(follicles))
    owner = np.repeat(np.arange(len(follicles)), units)  # follicle of each hair
    n = len(owner)
    shrink = np.where(in_patch[owner], 1.0 - 0.55 * reduction, 1.0)
    angles = unit_angles[owner] + rng.normal(0.0, 0.12, n)
    widths = np.clip(rng.normal(style.width_px, 0.2 * style.width_px, n) * shrink * scale,
                     max(1.0, MIN_WIDTH_PX * scale), MAX_WIDTH_PX)
    grey = rng.uniform(size=n) < style.grey_fraction
    shades = np.where(grey[:, None], HAIR_COLOURS["grey"], HAIR_COLOURS[style.colour]) * rng.uniform(0.85, 1.2, (n, 1))
    lengths = style.length_px * rng.uniform(0.5, 1.3, n) * shrink * scale
    curvatures = rng.normal(0.0, style.curl, n)
    depths = rng.uniform(*THINNING_CORE, n)
    defocused = rng.uniform(size=n) < DEFOCUSED_FRACTION
    clumps = [clump_points(rng, patch, int(rng.integers(2, 5))) for patch in sebum]
    greasy = np.array([_in_any(sebum, x, y) for x, y in follicles], bool).reshape(-1)
    strands: list[Strand] = []
    for i, f in enumerate(owner):
        x, y = follicles[f]
        attractor = _nearest_ahead(clumps, x, y, angles[i]) if greasy[f] else None
        points = grow_strand(rng, follicles[f], float(angles[i]), float(lengths[i]), float(curvatures[i]), scale,
                             attractor)
        if thinning is not None and not in_patch[f]:
            points = _stop_at_core(points, thinning, margin, float(depths[i]))
        rgb = tuple(float(v) for v in np.clip(shades[i], 0.0, 1.0))
        strands.append(Strand(points, float(widths[i]), rgb, bool(in_patch[f]), bool(greasy[f]),  # type: ignore[arg-type]
                              bool(defocused[i]), ShaftShading.sample(rng, bool(greasy[f]))))
    return [strands[i] for i in rng.permutation(n)]


def _stop_at_core(points: np.ndarray, thinning: Patch, margin: int, depth: float) -> np.ndarray:
    """Cut a neighbouring hair where the thinning patch's strength reaches ``depth``.

    Long hairs from around a bald patch would otherwise hide it; at the rim they still cross,
    and a random depth per hair keeps the cut ends from lining up.
    """
    cols = np.clip(points[:, 0].astype(int) + margin, 0, thinning.alpha.shape[1] - 1)
    rows = np.clip(points[:, 1].astype(int) + margin, 0, thinning.alpha.shape[0] - 1)
    deep = np.flatnonzero(thinning.alpha[rows, cols] >= depth)
    return points[: max(2, int(deep[0]))] if len(deep) else points


def _in_any(patches: list[Patch], x: float, y: float) -> bool:
    row, col = int(y), int(x)
    return any(0 <= row < p.mask.shape[0] and 0 <= col < p.mask.shape[1] and p.mask[row, col] for p in patches)


def _nearest_ahead(clumps: list[np.ndarray], x: float, y: float, angle: float) -> np.ndarray | None:
    """The nearest clump point roughly ahead of a hair (within 70 degrees), if any.

    Hairs only bend forwards into a clump; one behind its root would make it hook back."""
    if not clumps:
        return None
    points = np.concatenate(clumps)
    offsets = points - np.array([x, y], np.float32)
    distance = np.hypot(offsets[:, 0], offsets[:, 1])
    ahead = (offsets @ np.array([np.cos(angle), np.sin(angle)])) > np.cos(np.radians(70)) * distance
    ahead &= distance > 10
    if not ahead.any():
        return None
    return points[np.flatnonzero(ahead)[np.argmin(distance[ahead])]]


def _paint_follicle_openings(canvas: np.ndarray, strands: list[Strand], shape: Shape) -> None:
    """Darken each follicle opening: the pit a shaft leaves the skin from."""
    shade = np.zeros(shape, np.uint8)
    for strand in strands:
        x, y = strand.points[0]
        if 0 <= x < shape[1] and 0 <= y < shape[0]:
            cv2.circle(shade, (int(x), int(y)), max(2, int(0.8 * strand.width)), 255, -1, cv2.LINE_AA)
    weight = cv2.GaussianBlur(shade, (0, 0), 1.5)
    canvas *= (1.0 - np.float32(0.45 / 255) * weight)[:, :, None]


def _cast_hair_shadows(canvas: np.ndarray, hair: HairLayer, scale: float) -> None:
    """Soft shadows of the hairs on the skin, offset as from the scope's ring light."""
    dx, dy = max(1, round(3.0 * scale)), max(1, round(4.0 * scale))
    moved = np.zeros_like(hair.alpha)
    moved[dy:, dx:] = hair.alpha[:-dy, :-dx]
    shadow = cv2.GaussianBlur(moved, (0, 0), 2.5 * scale + 0.5)
    canvas *= (1.0 - np.float32(0.3) * shadow)[:, :, None]


def _lay_hairs(canvas: np.ndarray, hair: HairLayer) -> None:
    canvas *= (1.0 - hair.alpha)[:, :, None]
    canvas += hair.rgb


def _measure_grades(regions: list[SynthRegion], shape: Shape) -> tuple[dict[str, int], dict[str, float]]:
    """Grades of the five lesion indicators from the area their kept regions cover."""
    indicators = {name: 0 for name in INDICATORS}
    measures: dict[str, float] = {}
    for kind in grading.AREA_GRADE_CUTS:
        masks = [r.mask for r in regions if r.kind == kind]
        fraction = float(np.logical_or.reduce(masks).sum()) / (shape[0] * shape[1]) if masks else 0.0
        indicators[kind], measures[kind] = grading.grade_from_area(kind, fraction), fraction
    measures["hair_loss"] = 0.0
    return indicators, measures


def _hair_truth(hair: HairLayer, strands: list[Strand], style: HairStyle, shape: Shape, scale: float) -> HairTruth:
    """Visible strands renumbered 1..count, widths, and the density actually drawn."""
    visible = visible_strands(hair)
    renumber = np.zeros(len(strands) + 1, np.int32)
    renumber[visible + 1] = np.arange(1, len(visible) + 1)
    rooted = sum(0 <= s.points[0][0] < shape[1] and 0 <= s.points[0][1] < shape[0] for s in strands)
    field_cm2 = shape[0] * shape[1] / (PX_PER_CM * scale) ** 2
    level = next(name for limit, name in DENSITY_LEVELS if style.units_per_cm2 < limit)
    return HairTruth(
        count=len(visible),
        thickness_px=[round(float(strands[i].width), 3) for i in visible],
        ids=renumber[hair.ids],
        hairs_per_cm2=round(rooted / field_cm2, 1),
        density_level=level,
        polylines=[strands[i].points for i in visible],
    )
