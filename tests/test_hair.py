"""Tests of ``hair/``: shaft counting, thickness, units, the record, drawing, the network's weights."""
from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core.weights import WeightsError
from hair.draw import HAIR_COLOR, THIN_COLOR, draw_hairs, hair_label
from hair.measure import measure_hairs, shaft_widths
from hair.meter import HairMeter, to_frame
from hair.model import HairNet
from hair.shafts import trace_shafts
from hair.synthetic import drawn_width, render_hair_scene
from hair.units import MAGNIFICATION_UM_PER_PX, ScaleError, um_per_px_for

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MARKS = FIXTURES / "hair-marks"
REPO = Path(__file__).resolve().parents[1]


def _weights() -> Path | None:
    """The trained hair weights: $SCALPSCOPE_HAIR_WEIGHTS, weights/, or the scratch build."""
    for candidate in (os.environ.get("SCALPSCOPE_HAIR_WEIGHTS"), REPO / "weights" / "hair.safetensors",
                      Path("/work/scratch/hair/final/hair.safetensors")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def band(shape: tuple[int, int], start: tuple[float, float], end: tuple[float, float], width: float) -> np.ndarray:
    """Exact mask of a straight shaft: pixels whose centre lies within width/2 of the segment."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    (x0, y0), (x1, y1) = start, end
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((cols - x0) * dx + (rows - y0) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    distance = np.hypot(cols - (x0 + t * dx), rows - (y0 + t * dy))
    return distance <= width / 2.0


def arc(shape: tuple[int, int], centre: tuple[float, float], radius: float, degrees: tuple[float, float],
        width: float) -> np.ndarray:
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    angle = np.degrees(np.arctan2(rows - centre[1], cols - centre[0])) % 360
    ring = np.abs(np.hypot(cols - centre[0], rows - centre[1]) - radius) <= width / 2.0
    return ring & (angle >= degrees[0]) & (angle <= degrees[1])


# ----------------------------------------------------------------------------- counting
def test_an_empty_mask_has_no_hairs() -> None:
    assert trace_shafts(np.zeros((120, 160), bool)) == []
    measurement = measure_hairs(np.zeros((120, 160), bool), um_per_px=10.0)
    assert measurement.count == 0
    assert measurement.to_dict()["thickness_um"] == {"median": None, "p10": None, "p90": None}
    assert measurement.thin_ratio is None and measurement.density_per_cm2 == 0.0


@pytest.mark.parametrize("angle", [90, 60, 35, 20])
def test_two_crossing_hairs_count_two(angle: float) -> None:
    shape = (240, 240)
    half = np.radians(angle / 2)
    reach = 110
    first = band(shape, (120 - reach * np.cos(half), 120 - reach * np.sin(half)),
                 (120 + reach * np.cos(half), 120 + reach * np.sin(half)), 7)
    second = band(shape, (120 - reach * np.cos(half), 120 + reach * np.sin(half)),
                  (120 + reach * np.cos(half), 120 - reach * np.sin(half)), 7)
    assert len(trace_shafts(first | second)) == 2


def test_three_hairs_through_one_point_count_three() -> None:
    shape = (240, 240)
    mask = np.zeros(shape, bool)
    for degrees in (0, 60, 120):
        a = np.radians(degrees)
        mask |= band(shape, (120 - 100 * np.cos(a), 120 - 100 * np.sin(a)), (120 + 100 * np.cos(a), 120 + 100 * np.sin(a)), 6)
    assert len(trace_shafts(mask)) == 3


def test_one_curved_hair_counts_one() -> None:
    mask = arc((240, 320), (160, 260), 180, (200, 340), 7)
    assert mask.sum() > 1000
    assert len(trace_shafts(mask)) == 1


def test_parallel_touching_hairs_count_two() -> None:
    # Two shafts that run side by side, touching over 120 px, and part gently (12 degrees) at
    # both ends, as neighbouring hairs do; the middle stretch is one 16 px wide band.
    shape = (200, 300)
    upper = band(shape, (10, 79), (90, 96), 8) | band(shape, (90, 96), (210, 96), 8) | band(shape, (210, 96), (290, 79), 8)
    lower = band(shape, (10, 121), (90, 104), 8) | band(shape, (90, 104), (210, 104), 8) | band(shape, (210, 104), (290, 121), 8)
    mask = upper | lower
    assert mask[92:108, 150].all() and not mask[86, 150] and not mask[114, 150]
    assert len(trace_shafts(mask)) == 2
    # Fully overlapping is one shaft as far as any mask can tell.
    assert len(trace_shafts(upper)) == 1


def test_hairs_from_one_follicle_count_separately() -> None:
    shape = (240, 240)
    root = (120, 230)
    mask = band(shape, root, (60, 10), 6) | band(shape, root, (180, 10), 6)
    assert len(trace_shafts(mask)) == 2


def test_a_hair_crossing_the_border_counts_once() -> None:
    shape = (160, 200)
    # Enters at the left edge, leaves at the top: both ends on the border.
    mask = band(shape, (-20, 150), (150, -20), 7)
    assert mask[:, 0].any() and mask[0].any()
    assert len(trace_shafts(mask)) == 1
    # A second hair that only peeks in from the right edge is still a hair.
    mask |= band(shape, (170, 120), (230, 60), 7)
    assert len(trace_shafts(mask)) == 2


def test_a_broken_shaft_is_rejoined_but_separate_hairs_are_not() -> None:
    shape = (120, 300)
    broken = band(shape, (10, 60), (140, 60), 6) | band(shape, (150, 60), (290, 60), 6)
    assert len(trace_shafts(broken)) == 1
    apart = band(shape, (10, 30), (140, 30), 6) | band(shape, (150, 90), (290, 90), 6)
    assert len(trace_shafts(apart)) == 2


def test_centre_lines_broken_inside_an_unbroken_hair_are_one_hair() -> None:
    # The network's centre line breaks along a shaft (near a flake, where hairs overlap) while
    # its hair mask stays whole: the mask bridges the gap, so the pieces are one hair.
    shape = (120, 300)
    hair = band(shape, (10, 60), (290, 60), 8)
    lines = band(shape, (12, 60), (130, 60), 3) | band(shape, (170, 61), (288, 61), 3)  # 40 px gap, 1 px off
    assert len(trace_shafts(lines)) == 2  # the centre lines alone: too far apart to join
    assert measure_hairs(hair, centerline=lines).count == 1
    # Skin between the pieces: two hairs, one ending where the other begins.
    gapped = hair & ~band(shape, (135, 60), (165, 60), 12)
    assert measure_hairs(gapped, centerline=lines).count == 2
    # Pieces side by side, not end to end: two hairs even inside one mask.
    beside = band(shape, (10, 60), (290, 60), 16)
    lines = band(shape, (12, 55), (130, 55), 3) | band(shape, (170, 66), (288, 66), 3)
    assert measure_hairs(beside, centerline=lines).count == 2


def test_a_broken_centre_line_a_little_off_its_line_is_rejoined() -> None:
    shape = (120, 300)
    lines = band(shape, (12, 60), (140, 60), 3) | band(shape, (147, 64), (288, 64), 3)  # 4 px off across 7 px
    hair = band(shape, (10, 60), (142, 60), 8) | band(shape, (145, 64), (290, 64), 8)
    assert measure_hairs(hair, centerline=lines).count == 1


def test_short_pieces_beside_a_hair_are_not_counted_but_a_short_hair_alone_is() -> None:
    shape = (160, 300)
    long_hair = band(shape, (20, 60), (280, 60), 8)
    alone = band(shape, (100, 130), (124, 130), 8)  # about 3 widths long, far from any other hair
    beside = band(shape, (120, 73), (144, 73), 8)  # as long, 13 px from the long hair's centre line
    assert measure_hairs(long_hair | alone).count == 2
    assert measure_hairs(beside).count == 1  # on its own, a short hair counts
    assert measure_hairs(long_hair | alone | beside).count == 2  # next to a longer hair, it is a piece of it
    stub = band(shape, (100, 130), (108, 130), 8)  # about one width long: a blob, never a hair
    assert measure_hairs(long_hair | stub).count == 1


# ----------------------------------------------------------------------------- thickness
@pytest.mark.parametrize("width", [3, 4, 6, 9, 14, 25])
@pytest.mark.parametrize("degrees", [0, 27, 45, 80])
def test_thickness_of_a_drawn_line_is_within_one_pixel(width: float, degrees: float) -> None:
    shape = (260, 260)
    a = np.radians(degrees)
    mask = band(shape, (130 - 110 * np.cos(a), 130 - 110 * np.sin(a)), (130 + 110 * np.cos(a), 130 + 110 * np.sin(a)), width)
    shafts = trace_shafts(mask)
    assert len(shafts) == 1
    assert abs(shaft_widths(shafts, mask)[0] - width) <= 1.0


def test_thickness_is_read_away_from_crossings() -> None:
    shape = (240, 240)
    mask = band(shape, (10, 120), (230, 120), 5) | band(shape, (120, 10), (120, 230), 11)
    widths = sorted(shaft_widths(trace_shafts(mask), mask))
    assert abs(widths[0] - 5) <= 1 and abs(widths[1] - 11) <= 1


def test_opencv_draws_thick_lines_wider_than_asked() -> None:
    # The generator's thickness_px is OpenCV's thickness; what is on screen is wider.
    assert [drawn_width(w) for w in (2, 3, 6, 7, 12)] == [3, 5, 7, 9, 13]


# ----------------------------------------------------------------------------- units and record
def test_micrometres_density_and_thin_ratio() -> None:
    shape = (300, 400)
    thick = band(shape, (10, 50), (390, 50), 9)
    thin = band(shape, (10, 200), (390, 200), 3)
    measurement = measure_hairs(thick | thin, um_per_px=8.0, thin_um=30.0)
    record = measurement.to_dict()
    assert set(record) == {"count", "density_per_cm2", "thickness_um", "thin_ratio", "units", "um_per_px", "shafts"}
    assert record["count"] == 2 and record["units"] == "um" and record["um_per_px"] == 8.0
    assert sorted(np.round(measurement.widths / 8.0)) == [3, 9]  # widths scale with um_per_px
    assert record["thin_ratio"] == 0.5  # 3 px x 8 um = 24 um < 30 um; 72 um is not thin
    area_cm2 = 300 * 400 * (8.0e-4) ** 2
    assert record["density_per_cm2"] == pytest.approx(2 / area_cm2, abs=0.05)  # rounded to 0.1
    assert record["thickness_um"]["p10"] <= record["thickness_um"]["median"] <= record["thickness_um"]["p90"]
    json.dumps(record)  # plain JSON types only


def test_without_a_scale_only_pixels_are_reported() -> None:
    mask = band((100, 200), (10, 50), (190, 50), 7)
    measurement = measure_hairs(mask)
    record = measurement.to_dict()
    assert set(record) == {"count", "density_per_cm2", "thickness_px", "thin_ratio", "units", "um_per_px", "shafts"}
    assert record["units"] == "px" and record["um_per_px"] is None
    assert record["density_per_cm2"] is None and record["thin_ratio"] is None
    assert abs(record["thickness_px"]["median"] - 7) <= 1
    assert any("pixels" in note for note in measurement.notes)


def test_magnification_presets_and_their_errors() -> None:
    assert um_per_px_for(magnification=50, image_width=640) == MAGNIFICATION_UM_PER_PX[50]
    assert um_per_px_for(magnification=50, image_width=1280) == pytest.approx(MAGNIFICATION_UM_PER_PX[50] / 2)
    # Higher magnification, fewer micrometres per pixel.
    assert MAGNIFICATION_UM_PER_PX[200] < MAGNIFICATION_UM_PER_PX[50] < MAGNIFICATION_UM_PER_PX[20]
    assert um_per_px_for(um_per_px=3.5, magnification=50) == 3.5  # a calibration wins
    assert um_per_px_for() is None
    with pytest.raises(ScaleError):
        um_per_px_for(um_per_px=-1.0)
    with pytest.raises(ScaleError):
        um_per_px_for(magnification=0)


def test_stretched_frames_are_unstretched() -> None:
    rgb = np.zeros((640, 640, 3), np.uint8)
    frame = to_frame(rgb, native_aspect=4 / 3)
    assert frame.rgb.shape == (480, 640, 3) and frame.scale_y == 0.75 and frame.scale_x == 1.0
    assert to_frame(np.zeros((480, 640, 3), np.uint8)).rgb.shape == (480, 640, 3)


def test_draw_hairs_traces_shafts_and_highlights_thin_ones() -> None:
    shape = (200, 300)
    mask = band(shape, (10, 50), (290, 50), 9) | band(shape, (10, 150), (290, 150), 3)
    measurement = measure_hairs(mask, um_per_px=8.0)
    rgb = np.full(shape + (3,), 128, np.uint8)
    drawn = draw_hairs(rgb, measurement, label=False)
    assert drawn.shape == rgb.shape and (rgb == 128).all()  # the input is not changed
    assert (drawn[50, 100:200] == HAIR_COLOR).all(axis=1).any()
    assert (drawn[150, 100:200] == THIN_COLOR).all(axis=1).any()
    assert hair_label(measurement.to_dict()).startswith("2 hairs, median ") and "thin 50%" in hair_label(measurement.to_dict())
    # Drawn on a picture twice the size, the lines follow.
    big = draw_hairs(np.full((400, 600, 3), 128, np.uint8), measurement, label=False)
    assert (big[100, 200:400] == HAIR_COLOR).all(axis=1).any()


# ----------------------------------------------------------------------------- synthetic truth
def test_synthetic_scene_truth_matches_the_generator() -> None:
    scene = render_hair_scene(np.random.default_rng(4), (640, 480))
    assert scene.count == scene.scalp.hair.count == len(scene.polylines)
    assert scene.centerline.sum() < scene.mask.sum()
    assert (scene.centerline & ~np.asarray(cv2.dilate(scene.mask.astype(np.uint8), np.ones((3, 3))), bool)).sum() == 0
    assert np.array_equal(scene.widths_px, np.asarray(scene.scalp.hair.thickness_px))


# ----------------------------------------------------------------------------- network and weights
def test_weights_round_trip_strictly(tmp_path: Path) -> None:
    net = HairNet(pretrained=False, decoder_channels=(32, 16, 16, 8, 8)).eval()
    config = net.save(tmp_path / "hair.safetensors", training_data={"synthetic": "unit test"})
    assert config["architecture"] == "HairNet" and len(config["sha256"]) == 64
    again = HairNet.load(tmp_path)
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(net(x), again(x))
    # A config that describes another architecture is refused.
    meta = json.loads((tmp_path / "hair.json").read_text())
    meta["arch"]["decoder_channels"] = [64, 32, 16, 8, 8]
    (tmp_path / "hair.json").write_text(json.dumps(meta))
    with pytest.raises(WeightsError):
        HairNet.load(tmp_path)  # sha still fine, tensors do not fit
    # A changed weight file is refused by its sha256.
    net.save(tmp_path / "hair.safetensors")
    (tmp_path / "hair.safetensors").write_bytes((tmp_path / "hair.safetensors").read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(WeightsError):
        HairNet.load(tmp_path)


@pytest.fixture(scope="module")
def meter() -> HairMeter:
    weights = _weights()
    if weights is None:
        pytest.skip("hair.safetensors not found (set SCALPSCOPE_HAIR_WEIGHTS or put it in weights/)")
    return HairMeter.load(weights)


def test_the_trained_network_finds_synthetic_hairs(meter: HairMeter) -> None:
    config = meter.config
    assert config["architecture"] == "HairNet" and config["arch"]["encoder"] == "efficientnet_lite0"
    assert (Path(_weights()).stat().st_size) < 30e6
    scene = render_hair_scene(np.random.default_rng(90210), (640, 480))
    predicted = meter.mask(scene.rgb)
    dice = 2 * (predicted & scene.mask).sum() / (predicted.sum() + scene.mask.sum())
    assert dice > 0.75
    measurement = meter.measure(scene.rgb, um_per_px=1e4 / 900)
    assert abs(measurement.count - scene.count) <= 0.25 * scene.count
    assert abs(measurement.thickness["median"] / (1e4 / 900) - np.median(scene.widths_px)) <= 1.5


@pytest.mark.real_data
def test_hand_marked_real_close_ups(meter: HairMeter, shared_data: Path) -> None:
    """Regression guard on the 10 hand-marked scalp-data val pictures (see the README there).

    Bounds are loose because the meter is weak on these very magnified frames: it counts
    too many hairs where it reads a thick shaft's two dark rims as two shafts. They hold the
    measured state of the bundled weights (found share 0.93, width error 17 %, count 2.0x the
    marked count, per-picture working width) with room, and fail if the network stops
    finding the marked shafts or the overcount grows.
    """
    from hair.evaluate import evaluate_marks

    files = sorted(MARKS.glob("*.json"))
    assert len(files) >= 10
    scores = evaluate_marks(HairMeter(meter.net, native_aspect=4 / 3), files, shared_data / "scalp-data")
    assert scores["hairs_found_share"] >= 0.85
    assert scores["width_median_abs_relative_error"] <= 0.3
    ratios = [image["count"] / image["count_sure"] for image in scores["per_image"]]
    assert 0.8 <= float(np.mean(ratios)) <= 3.0


def test_record_shafts_are_polylines_in_picture_pixels() -> None:
    # Traced in a frame half the picture's size: the record's points are the picture's pixels.
    mask = band((120, 200), (10, 60), (190, 60), 7)
    measurement = measure_hairs(mask, um_per_px=10.0)
    measurement.picture_shape = (240, 400)
    (shaft,) = measurement.to_dict()["shafts"]
    points = np.concatenate([np.asarray(p) for p in shaft["paths"]])
    assert len(points) <= 6  # a straight skeleton simplifies to a few points
    assert np.allclose(points[:, 1], 120, atol=2.5) and points[:, 0].min() < 40 and points[:, 0].max() > 360
    assert shaft["width"] == pytest.approx(70, abs=10) and shaft["thin"] is False
    json.dumps(measurement.to_dict())


def test_summary_csv_and_report_show_hair_measurements(tmp_path: Path) -> None:
    from batch.report import HAIR_COLUMNS, SUMMARY_COLUMNS, hair_cells, write_report_html
    from core.analysis import Analysis

    assert set(HAIR_COLUMNS) <= set(SUMMARY_COLUMNS)
    record = measure_hairs(band((100, 200), (10, 50), (190, 50), 7), um_per_px=10.0).to_dict()
    cells = hair_cells(record)
    assert cells["hair_count"] == 1 and cells["hair_thickness_units"] == "um"
    assert cells["hair_thickness_median"] == record["thickness_um"]["median"]
    assert hair_cells(None) == dict.fromkeys(HAIR_COLUMNS, "")
    pixels = hair_cells(measure_hairs(band((100, 200), (10, 50), (190, 50), 7)).to_dict())
    assert pixels["hair_thickness_units"] == "px" and pixels["hair_density_per_cm2"] == "" and pixels["hair_thin_ratio"] == ""
    analysis = Analysis("a.jpg", (200, 100), True, 0.9, view="closeup", view_confidence=0.9, hair=record)
    page = write_report_html([("a.jpg", analysis)], [], tmp_path, {}).read_text()
    assert "Hairs counted (close-ups)" in page and "1 hair, median 70 um" in page
