"""Score the hair meter: on held-out synthetic close-ups (exact truth) and on hand-marked real ones.

    python -m hair.evaluate figure --weights W \\
        --marks tests/fixtures/hair-marks/{D_172,_1582445249327,_1603010849137,_1578313336813}.json \\
        --dataset ../shared/data/scalp-data --out docs/hair_real.png                  # the README figure
    python -m hair.evaluate tune --weights W --scenes S/val --out thresholds.json   # then export with them
    python -m hair.evaluate synthetic --weights W --scenes S/test --out scores_synthetic.json
    python -m hair.evaluate suggest-width --weights W --dataset runs/data/scalp-data --out width.json
    python -m hair.evaluate marks --weights W --marks tests/fixtures/hair-marks \\
        --dataset ../shared/data/scalp-data --out scores_marks.json

Synthetic truth: the count is the generator's (every strand with a visible pixel); the
thickness truth is each visible strand's exact drawn width (the generator draws a shaft
as the pixels within half its width of its centre line). Scores on synthetic pictures say
the measuring works; they say nothing of real-world accuracy.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from hair.marks import FRAME_SIZE, load_marks, mask_widths
from hair.measure import measure_hairs
from hair.meter import HairMeter, suggest_working_width, to_frame
from hair.shafts import TraceParams
from hair.training_data import load_scene
from hair.units import SYNTHETIC_UM_PER_PX

log = logging.getLogger(__name__)


#: A strand counts as *countable* when its visible part is at least this many widths long
#: (visible pixels >= COUNTABLE_LENGTH x width^2): the generator counts every strand with one
#: visible pixel, a fifth of which show less than three widths of shaft.
COUNTABLE_LENGTH = 1.5


def countable_strands(scene) -> int:  # type: ignore[no-untyped-def]
    """Visible strands that show at least ``COUNTABLE_LENGTH`` widths of shaft."""
    visible = np.bincount(scene.ids.ravel(), minlength=scene.count + 1)[1:]
    return int(np.sum(visible >= COUNTABLE_LENGTH * scene.widths_px.astype(np.float64) ** 2))


def evaluate_synthetic(meter: HairMeter, scene_paths: list[Path], truth_maps: bool = False) -> dict:
    """Count and median-thickness agreement per picture, and mask Dice.

    With ``truth_maps`` the network is left out: the tracer and the width reader run on the
    scenes' true hair mask and centre lines, which scores the counting itself (its ceiling).
    """
    rows = []
    for path in tqdm(scene_paths, desc="synthetic", unit="img"):
        scene = load_scene(path)
        started = time.perf_counter()
        if truth_maps:
            frame = to_frame(scene.rgb)
            hair, centerline = scene.mask.astype(np.float32), scene.centerline.astype(np.float32)
        else:
            frame, hair, centerline = meter.probabilities(scene.rgb)
        measurement = meter.measure_maps(scene.rgb.shape[1], frame, hair, centerline, um_per_px=SYNTHETIC_UM_PER_PX)
        elapsed = time.perf_counter() - started
        predicted = hair > meter.net.threshold
        dice = 2 * (predicted & scene.mask).sum() / max(1, predicted.sum() + scene.mask.sum())
        median_px = float(np.median(measurement.widths_px)) if measurement.count else float("nan")
        countable = countable_strands(scene)
        rows.append({
            "scene": path.name, "count_true": scene.count, "count": measurement.count,
            "count_error": measurement.count / scene.count - 1.0 if scene.count else float("nan"),
            "count_countable": countable,
            "count_error_countable": measurement.count / countable - 1.0 if countable else float("nan"),
            "median_px": median_px, "median_drawn_px": float(np.median(scene.widths_px)),
            "dice": float(dice), "seconds": elapsed,
        })
    count_error = np.array([r["count_error"] for r in rows])
    countable_error = np.array([r["count_error_countable"] for r in rows])
    drawn_error = np.array([r["median_px"] - r["median_drawn_px"] for r in rows])
    return {
        "n_images": len(rows),
        "count_within_10pct": float(np.mean(np.abs(count_error) <= 0.10)),
        "count_mean_error": float(np.mean(count_error)),
        "count_mean_abs_error": float(np.mean(np.abs(count_error))),
        "countable_share_of_truth": float(np.mean([r["count_countable"] / r["count_true"] for r in rows])),
        "count_within_10pct_of_countable": float(np.mean(np.abs(countable_error) <= 0.10)),
        "count_mean_error_vs_countable": float(np.mean(countable_error)),
        "median_thickness_within_1px_of_drawn": float(np.mean(np.abs(drawn_error) <= 1.0)),
        "median_thickness_mean_error_px_vs_drawn": float(np.mean(drawn_error)),
        "hair_dice": float(np.mean([r["dice"] for r in rows])),
        "seconds_per_image": float(np.median([r["seconds"] for r in rows])),
        "per_image": rows,
    }


def tune_thresholds(
    meter: HairMeter, scene_paths: list[Path], centerline_levels: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6),
    width_levels: tuple[float, ...] = (0.4, 0.5, 0.6, 0.7),
) -> dict:
    """Centre-line and width thresholds chosen on held-out synthetic scenes (a val split, never
    the scenes scored): the centre-line level with the most pictures counted within 10 % of
    the countable hairs, and at that level the width level with the most median widths within
    1 px (ties: the first, lowest level)."""
    maps = []
    for path in tqdm(scene_paths, desc="maps", unit="img"):
        scene = load_scene(path)
        frame, hair, centerline = meter.probabilities(scene.rgb)
        maps.append((scene, frame, hair.astype(np.float16), centerline.astype(np.float16)))
    rows = []
    for line_level in centerline_levels:
        for width_level in width_levels:
            counts, widths = [], []
            for scene, frame, hair, centerline in maps:
                measurement = measure_hairs(
                    hair > meter.net.threshold, None, centerline=centerline > line_level, width_map=hair.astype(np.float32),
                    params=meter.params, width_level=width_level, px_scale=frame.px_scale)
                counts.append(measurement.count / max(1, countable_strands(scene)) - 1.0)
                median = float(np.median(measurement.widths_px)) if measurement.count else float("nan")
                widths.append(median - float(np.median(scene.widths_px)))
            rows.append({"centerline_threshold": line_level, "width_threshold": width_level,
                         "count_within_10pct_of_countable": float(np.mean(np.abs(counts) <= 0.10)),
                         "median_thickness_within_1px": float(np.mean(np.abs(widths) <= 1.0))})
    # Counting is chosen first (over every width level), then the width level at that count level.
    best_line = max(rows, key=lambda r: r["count_within_10pct_of_countable"])["centerline_threshold"]
    at_line = [r for r in rows if r["centerline_threshold"] == best_line]
    best_width = max(at_line, key=lambda r: r["median_thickness_within_1px"])["width_threshold"]
    return {"n_images": len(maps), "centerline_threshold": best_line, "width_threshold": best_width, "grid": rows}


def evaluate_marks(meter: HairMeter, mark_files: list[Path], dataset: Path) -> dict:
    """Count against the marker's (sure, sure + unsure) range; width of the meter's mask
    across each marked hair against the width from the intensity profile."""
    images, hair_rows = [], []
    for path in tqdm(mark_files, desc="hand marks", unit="img"):
        marks = load_marks(path)
        rgb = cv2.cvtColor(cv2.imread(str(marks.picture(dataset))), cv2.COLOR_BGR2RGB)
        frame, hair, centerline = meter.probabilities(rgb)
        measurement = meter.measure_maps(rgb.shape[1], frame, hair, centerline)
        # Marks live in the 640 x 480 reference frame; the working frame may be smaller.
        reference = cv2.resize(hair, FRAME_SIZE, interpolation=cv2.INTER_LINEAR) if hair.shape[::-1] != FRAME_SIZE else hair
        mask = reference > meter.net.threshold
        low, high = marks.count_range
        images.append({
            "image": marks.image, "count_sure": low, "count_with_unsure": high, "count": measurement.count,
            "count_error_vs_sure": measurement.count / low - 1.0,
            "outside_range_by": 0 if low <= measurement.count <= high else min(abs(measurement.count - low),
                                                                                abs(measurement.count - high)),
            "median_width_px": measurement.thickness["median"],
            "hand_median_width_px": float(np.median([h.width_px for h in marks.hairs if h.width_px])) if any(
                h.width_px for h in marks.hairs) else None,
        })
        for hair_mark in marks.hairs:
            if not hair_mark.width_px:
                continue
            widths = mask_widths(mask, hair_mark.polyline)
            found = [w for w in widths if w > 0]
            hair_rows.append({
                "image": marks.image, "hand_px": hair_mark.width_px, "certain": hair_mark.certain,
                "mask_px": float(np.median(found)) if found else None,
                "found_share": len(found) / len(widths) if widths else 0.0,
            })
    measured = [r for r in hair_rows if r["mask_px"] is not None]
    errors = np.array([r["mask_px"] - r["hand_px"] for r in measured])
    relative = np.array([r["mask_px"] / r["hand_px"] - 1.0 for r in measured])
    count_errors = np.array([i["count_error_vs_sure"] for i in images])
    return {
        "n_images": len(images),
        "n_marked_hairs_with_width": len(hair_rows),
        "count_mean_abs_error_vs_sure": float(np.mean(np.abs(count_errors))),
        "count_mean_error_vs_sure": float(np.mean(count_errors)),
        "count_in_marked_range": float(np.mean([i["outside_range_by"] == 0 for i in images])),
        "hairs_found_share": float(np.mean([r["found_share"] for r in hair_rows])) if hair_rows else 0.0,
        "width_mean_abs_error_px": float(np.mean(np.abs(errors))) if len(errors) else None,
        "width_mean_error_px": float(np.mean(errors)) if len(errors) else None,
        "width_median_abs_relative_error": float(np.median(np.abs(relative))) if len(relative) else None,
        "per_image": images,
        "per_hair": hair_rows,
    }


def marks_figure(meter: HairMeter, mark_files: list[Path], dataset: Path, out: Path, columns: int = 2) -> Path:
    """A picture sheet: each marked close-up with the meter's hairs (cyan, thin ones magenta)
    and the hand marks (yellow), and both counts written on it."""
    from PIL import Image, ImageDraw, ImageFont

    from hair.draw import draw_hairs

    tiles = []
    for path in mark_files:
        marks = load_marks(path)
        rgb = cv2.cvtColor(cv2.imread(str(marks.picture(dataset))), cv2.COLOR_BGR2RGB)
        frame = cv2.resize(rgb, FRAME_SIZE, interpolation=cv2.INTER_AREA)  # the un-stretched 640 x 480 frame
        tile = Image.fromarray(draw_hairs(frame, meter.measure(rgb)))
        pen = ImageDraw.Draw(tile)
        for hair in marks.hairs:
            pen.line([tuple(p) for p in hair.polyline.tolist()], fill=(255, 220, 0), width=1)
        low, high = marks.count_range
        text = f"hand count {low}-{high} (yellow lines)"
        font = ImageFont.load_default(size=14)
        box = pen.textbbox((6, FRAME_SIZE[1] - 22), text, font=font)
        pen.rectangle(box, fill=(20, 20, 20))
        pen.text((6, FRAME_SIZE[1] - 22), text, fill=(255, 255, 255), font=font)
        tiles.append(np.asarray(tile))
    while len(tiles) % columns:
        tiles.append(np.full_like(tiles[0], 255))
    rows = [np.concatenate(tiles[i : i + columns], axis=1) for i in range(0, len(tiles), columns)]
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
    return out


def working_width_arg(text: str) -> int | str:
    return text if text == "auto" else int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("synthetic")
    p.add_argument("--scenes", type=Path, required=True)
    p.add_argument("--truth-maps", action="store_true", help="trace the true maps instead of the network's (the tracer's ceiling)")
    p = sub.add_parser("marks")
    p.add_argument("--marks", type=Path, required=True)
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--working-width", type=working_width_arg, default="auto",
                   help="frame width the meter works in: auto (per picture, the default) or 160-640 px")
    p = sub.add_parser("figure", help="picture sheet of marked close-ups: the meter's hairs and the hand marks")
    p.add_argument("--marks", type=Path, nargs="+", required=True, help="mark files to draw")
    p.add_argument("--dataset", type=Path, required=True)
    p = sub.add_parser("tune", help="centre-line and width thresholds from synthetic val scenes")
    p.add_argument("--scenes", type=Path, required=True)
    p.add_argument("--n", type=int, default=50, help="scenes to use (default %(default)s)")
    p = sub.add_parser("suggest-width", help="working width for a dataset, from its train pictures")
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--every", type=int, default=4, help="use every n-th train picture")
    for p in sub.choices.values():
        p.add_argument("--weights", type=Path, required=True)
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--params", type=str, default="{}", help="TraceParams overrides as JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    import torch

    torch.set_num_threads(2)
    params = TraceParams(**json.loads(args.params))
    if args.command == "synthetic":
        meter = HairMeter.load(args.weights, params=params)
        scores = evaluate_synthetic(meter, sorted(args.scenes.glob("scene_*.npz")), truth_maps=args.truth_maps)
    elif args.command == "figure":
        meter = HairMeter.load(args.weights, native_aspect=4 / 3, params=params)
        log.info("wrote %s", marks_figure(meter, args.marks, args.dataset, args.out))
        return
    elif args.command == "tune":
        meter = HairMeter.load(args.weights, params=params)
        scores = tune_thresholds(meter, sorted(args.scenes.glob("scene_*.npz"))[: args.n])
    elif args.command == "suggest-width":
        from datasets.folder import DatasetFolder

        meter = HairMeter.load(args.weights, native_aspect=4 / 3, params=params)
        folder = DatasetFolder.load(args.dataset)
        samples = folder.split("train")[:: args.every]
        pictures = (cv2.cvtColor(cv2.imread(str(folder.image_path(s))), cv2.COLOR_BGR2RGB) for s in samples)
        width, median = suggest_working_width(meter, pictures)
        scores = {"dataset": str(args.dataset), "split": "train", "pictures": len(samples),
                  "median_shaft_px": median, "working_width": width}
    else:
        meter = HairMeter.load(args.weights, native_aspect=4 / 3, params=params, working_width=args.working_width)
        scores = evaluate_marks(meter, sorted(args.marks.glob("*.json")), args.dataset)
        scores["working_width"] = args.working_width
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(scores, indent=2))
    log.info("%s", json.dumps({k: v for k, v in scores.items() if not isinstance(v, list)}, indent=2))


if __name__ == "__main__":
    main()
