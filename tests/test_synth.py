"""Tests of ``datasets/synth``: the procedural scalp generator and the truth it writes."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.taxonomy import INDICATORS
from datasets.folder import DatasetError, DatasetFolder
from datasets.synth import AREA_GRADE_CUTS, GENERATOR_VERSION, generate, render_scalp
from datasets.synth.grading import grade_from_area, grade_from_reduction, hair_loss_image_grade
from datasets.synth.hair import MAX_WIDTH_PX, MIN_WIDTH_PX
from datasets.synth.lesions import MIN_REGION_PX
from datasets.synth.preview import contact_sheet

N_IMAGES = 24
ALL_ZERO = {name: 0 for name in INDICATORS}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> DatasetFolder:
    return generate(N_IMAGES, tmp_path_factory.mktemp("synth") / "ds", seed=7, progress=False)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _only(kind: str, grade: int) -> dict[str, int]:
    return {**ALL_ZERO, kind: grade}


def test_same_seed_gives_byte_identical_dataset(tmp_path: Path) -> None:
    first = generate(4, tmp_path / "a", seed=3, size=(320, 240), progress=False)
    second = generate(4, tmp_path / "b", seed=3, size=(320, 240), progress=False)
    other = generate(4, tmp_path / "c", seed=4, size=(320, 240), progress=False)
    assert _files(first.root) == _files(second.root)
    assert (first.root / "images/synth_00000.jpg").read_bytes() != (other.root / "images/synth_00000.jpg").read_bytes()


def test_a_smaller_rerun_leaves_no_stale_files(tmp_path: Path) -> None:
    generate(3, tmp_path, seed=1, size=(160, 120), progress=False)
    again = generate(1, tmp_path, seed=1, size=(160, 120), progress=False)
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["synth_00000.jpg"]
    written = {r.mask for s in again for r in s.regions} | {s.meta["hair"]["mask"] for s in again}
    assert {f"masks/{p.name}" for p in (tmp_path / "masks").iterdir()} == written


def test_render_is_a_pure_function_of_the_generator() -> None:
    one = render_scalp(np.random.default_rng(11), (320, 240))
    two = render_scalp(np.random.default_rng(11), (320, 240))
    assert np.array_equal(one.rgb, two.rgb)
    assert one.indicators == two.indicators
    assert [r.box for r in one.regions] == [r.box for r in two.regions]


def test_records_are_valid_and_round_trip(dataset: DatasetFolder) -> None:
    root = dataset.root
    info = json.loads((root / "dataset.json").read_text())
    assert {k: info[k] for k in ("name", "seed", "generator_version", "n", "size")} == {
        "name": "synthetic", "seed": 7, "generator_version": GENERATOR_VERSION, "n": N_IMAGES, "size": [640, 480]}
    assert info["grading"]["area_grade_cuts"]["dandruff"] == list(AREA_GRADE_CUTS["dandruff"])
    loaded = DatasetFolder.load(root)
    assert loaded.name == "synthetic"
    assert [s.to_dict() for s in loaded] == [s.to_dict() for s in dataset]
    assert [s.image for s in loaded] == [f"images/synth_{i:05d}.jpg" for i in range(N_IMAGES)]
    subjects = set()
    for sample in loaded:
        image = cv2.imread(str(root / sample.image))
        assert image is not None and image.shape == (480, 640, 3)
        assert (sample.width, sample.height) == (640, 480)
        assert sample.split is None and sample.view == "closeup"
        assert sample.meta["synthetic"] is True
        assert sample.source["dataset"] == "synthetic"
        assert set(sample.indicators) == set(INDICATORS)
        assert all(grade in (0, 1, 2, 3) for grade in sample.indicators.values())
        assert sample.hair_loss == hair_loss_image_grade(sample.indicators["hair_loss"])
        hair = sample.meta["hair"]
        assert hair["count"] == len(hair["thickness_px"]) > 0
        assert (root / hair["mask"]).is_file()
        subjects.add(sample.meta["subject"])
    # A few pictures per subject, so the split can group them.
    assert 1 < len(subjects) < N_IMAGES


def test_region_boxes_are_tight_around_non_empty_masks(dataset: DatasetFolder) -> None:
    regions = 0
    for sample in dataset:
        for region in sample.regions:
            mask = dataset.region_mask(sample, region)
            assert mask.shape == (480, 640)
            assert mask.sum() >= MIN_REGION_PX, f"{region.mask} is (nearly) empty"
            rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
            assert region.box == (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1), region.mask
            regions += 1
    assert regions > N_IMAGES  # several regions per picture on average


def test_grades_are_measured_from_the_drawing(dataset: DatasetFolder) -> None:
    for sample in dataset:
        for kind in AREA_GRADE_CUTS:
            masks = [dataset.region_mask(sample, r) for r in sample.regions if r.kind == kind]
            fraction = np.logical_or.reduce(masks).mean() if masks else 0.0
            assert sample.indicators[kind] == grade_from_area(kind, fraction), (sample.image, kind)
        thinning = [r for r in sample.regions if r.kind == "hair_loss"]
        assert len(thinning) == int(sample.indicators["hair_loss"] > 0)
        if thinning:
            reduction = sample.meta["grading_measures"]["hair_loss"]
            assert sample.indicators["hair_loss"] == grade_from_reduction(reduction)
            assert thinning[0].grade == {1: "low", 2: "mid", 3: "high"}[sample.indicators["hair_loss"]]


def test_every_grade_of_every_indicator_occurs(dataset: DatasetFolder) -> None:
    for name in INDICATORS:
        seen = {sample.indicators[name] for sample in dataset}
        assert seen == {0, 1, 2, 3}, (name, seen)


def test_target_grades_are_drawn_as_asked() -> None:
    hits = total = 0
    for seed in range(6):
        for grade in (1, 2, 3):
            scalp = render_scalp(np.random.default_rng(seed), (320, 240), grades={name: grade for name in INDICATORS})
            hits += sum(scalp.indicators[name] == grade for name in INDICATORS)
            total += len(INDICATORS)
    assert hits / total > 0.85


def test_grade_zero_draws_nothing() -> None:
    scalp = render_scalp(np.random.default_rng(5), grades=ALL_ZERO)
    assert scalp.regions == []
    assert scalp.indicators == ALL_ZERO and scalp.hair_loss == "low"


def test_higher_grades_cover_more_area(dataset: DatasetFolder) -> None:
    for kind in AREA_GRADE_CUTS:
        by_grade: dict[int, list[float]] = {0: [], 1: [], 2: [], 3: []}
        for sample in dataset:
            by_grade[sample.indicators[kind]].append(sample.meta["grading_measures"][kind])
        present = [by_grade[g] for g in range(4) if by_grade[g]]
        for lower, higher in itertools.pairwise(present):
            assert max(lower) < min(higher), kind


def test_thinning_patch_has_lower_hair_density() -> None:
    ratios = []
    for seed in range(4):
        for grade in (1, 3):
            scalp = render_scalp(np.random.default_rng(seed), grades=_only("hair_loss", grade))
            (patch,) = [r for r in scalp.regions if r.kind == "hair_loss"]
            hair = scalp.hair.mask
            ratios.append((grade, hair[patch.mask].mean() / hair[~patch.mask].mean()))
    assert all(ratio < 0.7 for _, ratio in ratios), ratios
    # Stronger thinning, fewer hairs.
    assert np.mean([r for g, r in ratios if g == 3]) < np.mean([r for g, r in ratios if g == 1])


def _surroundings(mask: np.ndarray, hair: np.ndarray, lesions: np.ndarray, reach: int = 20) -> np.ndarray:
    """Pixels within ``reach`` of a region, outside every lesion and off hairs."""
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)) > 0
    return grown & ~lesions & ~hair


def test_dandruff_is_brighter_than_the_skin_around_it() -> None:
    checked = 0
    for seed in range(4):
        scalp = render_scalp(np.random.default_rng(seed), grades=_only("dandruff", 2))
        gray = cv2.cvtColor(scalp.rgb, cv2.COLOR_RGB2GRAY).astype(float)
        flakes = np.logical_or.reduce([r.mask for r in scalp.regions])
        for region in scalp.regions:
            assert region.kind == "dandruff"
            around = _surroundings(region.mask, scalp.hair.mask, flakes)
            assert gray[region.mask].mean() > gray[around].mean() + 8
            checked += 1
    assert checked >= 4


def test_erythema_is_redder_than_the_skin_around_it() -> None:
    for seed in range(4):
        scalp = render_scalp(np.random.default_rng(seed), grades=_only("erythema_between_follicles", 2))
        rgb = scalp.rgb.astype(float)
        redness = rgb[:, :, 0] - rgb[:, :, 1]
        patches = np.logical_or.reduce([r.mask for r in scalp.regions])
        for region in scalp.regions:
            skin = region.mask & ~scalp.hair.mask
            around = _surroundings(region.mask, scalp.hair.mask, patches, reach=40)
            assert redness[skin].mean() > redness[around].mean() + 5


def test_hair_count_is_the_number_of_strands_drawn() -> None:
    for seed in range(3):
        scalp = render_scalp(np.random.default_rng(seed))
        hair = scalp.hair
        assert hair.count == len(hair.thickness_px) == len(np.unique(hair.ids)) - 1 > 0
        assert set(np.unique(hair.ids)) == set(range(hair.count + 1))
        # Widths are real-valued, within the generator's range, and not rounded to whole pixels.
        assert all(MIN_WIDTH_PX <= w <= MAX_WIDTH_PX for w in hair.thickness_px)
        assert any(w != round(w) for w in hair.thickness_px)
        assert len(hair.polylines) == hair.count
        assert hair.density_level in ("low", "normal", "high") and hair.hairs_per_cm2 > 0


def test_hair_mask_on_disk_matches_strands(dataset: DatasetFolder) -> None:
    sample = dataset.samples[0]
    mask = cv2.imread(str(dataset.root / sample.meta["hair"]["mask"]), cv2.IMREAD_GRAYSCALE)
    assert mask.shape == (480, 640) and set(np.unique(mask)) <= {0, 255}
    # Each strand is at least a 2 px wide polyline; the mask covers a sizeable share of the frame.
    assert (mask > 0).mean() > 0.02


def test_other_sizes_and_contact_sheet() -> None:
    scalp = render_scalp(np.random.default_rng(2), (256, 256))
    assert scalp.rgb.shape == (256, 256, 3) and scalp.rgb.dtype == np.uint8
    assert contact_sheet(seed=1, rows=1, columns=2, size=(160, 120)).shape == (120, 320, 3)


def test_refuses_to_overwrite_another_dataset(tmp_path: Path) -> None:
    (tmp_path / "dataset.jsonl").write_text("\n")
    (tmp_path / "dataset.json").write_text('{"name": "scalp-data"}')
    with pytest.raises(DatasetError, match="already holds a dataset"):
        generate(1, tmp_path, progress=False)
    with pytest.raises(ValueError, match="unknown indicator"):
        render_scalp(np.random.default_rng(0), grades={"dandruf": 1})


def test_recorded_hair_width_is_the_drawn_width():
    """Each strand is exactly the pixels within half its recorded width of its recorded centre
    line: all of them are hair (its own, or a hair on top), and none of its own lie outside.
    A recorded width too large would take in skin, one too small would leave the strand's own
    pixels outside."""
    rng = np.random.default_rng(11)
    scalp = render_scalp(rng, (320, 240), grades={n: 0 for n in INDICATORS})
    hair = scalp.hair
    rows, cols = np.mgrid[0:240, 0:320].astype(np.float64)
    checked = 0
    for hair_id, (recorded, line) in enumerate(zip(hair.thickness_px, hair.polylines), 1):
        distance = np.full(rows.shape, np.inf)
        for (x0, y0), (x1, y1) in zip(line[:-1].astype(np.float64), line[1:].astype(np.float64)):
            dx, dy = x1 - x0, y1 - y0
            t = np.clip(((cols - x0) * dx + (rows - y0) * dy) / max(dx * dx + dy * dy, 1e-9), 0.0, 1.0)
            distance = np.minimum(distance, np.hypot(cols - (x0 + t * dx), rows - (y0 + t * dy)))
        band = distance <= recorded / 2.0
        own = hair.ids == hair_id
        assert not (own & ~band).any(), f"strand {hair_id} has pixels beyond half its width"
        assert hair.mask[band].all(), f"strand {hair_id}'s band has pixels without hair"
        checked += own.any()
    assert checked >= 10


def test_clear_layout_draws_each_kind_once_in_a_quadrant_of_its_own(tmp_path: Path) -> None:
    """``data synth --clear``, the detector's sanity set: 2-3 kinds per picture, one region
    each (inflamed follicles: separate rings in one spot), kinds apart from one another."""
    clear = generate(16, tmp_path / "clear", seed=5, progress=False, clear=True)
    assert json.loads((clear.root / "dataset.json").read_text())["layout"] == "clear"
    kinds_seen = set()
    for sample in clear:
        by_kind: dict[str, list] = {}
        for region in sample.regions:
            by_kind.setdefault(region.kind, []).append(region.box)
        kinds_seen |= set(by_kind)
        assert 2 <= len(by_kind) <= 3, sample.image
        assert {k for k, g in sample.indicators.items() if g} == set(by_kind), sample.image
        for kind, boxes in by_kind.items():
            assert len(boxes) == 1 or kind == "follicular_erythema_pustule", (sample.image, kind)
            rings = [box for box in boxes if kind == "follicular_erythema_pustule"]
            assert not any(_overlap(a, b) for a, b in itertools.combinations(rings, 2)), sample.image
        # Each kind's regions sit around one quadrant centre: their boxes' centre lies in it.
        quadrants = {kind: {(int((b[0] + b[2]) / 2 >= 320), int((b[1] + b[3]) / 2 >= 240)) for b in boxes}
                     for kind, boxes in by_kind.items()}
        assert all(len(q) == 1 for q in quadrants.values()), (sample.image, quadrants)
        assert len({next(iter(q)) for q in quadrants.values()}) == len(by_kind), sample.image
    assert kinds_seen == set(INDICATORS)
    hair_loss = [r for s in clear for r in s.regions if r.kind == "hair_loss"]
    assert hair_loss and {r.grade for r in hair_loss} == {"high"}
    alone = render_scalp(np.random.default_rng(0), (320, 240), clear=True)  # kinds drawn for it
    assert 2 <= len({r.kind for r in alone.regions}) <= 3
    with pytest.raises(ValueError, match="at most four kinds"):
        render_scalp(np.random.default_rng(0), (320, 240), grades=dict.fromkeys(INDICATORS, 1), clear=True)
    # The default layout is not touched by the option: same seed, same pictures as ever.
    default = generate(2, tmp_path / "default", seed=5, progress=False)
    assert any(len({r.kind for r in s.regions}) > 3 for s in default) or any(
        len([r for r in s.regions if r.kind == "sebum"]) > 1 for s in default)


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
