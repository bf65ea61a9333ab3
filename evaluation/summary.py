"""The headline scores of one or more ``evaluate`` runs as one Markdown table (README, model card).

    python -m evaluation.summary runs/eval/scalp-data/metrics.json runs/eval/hair-loss-levels/metrics.json

Numbers are printed exactly as ``metrics.json`` holds them, rounded to three decimals, so the
table in README can be regenerated and diffed at any time.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _f(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def _ci(metrics: dict, key: str) -> str:
    low_high = metrics.get("ci95", {}).get(key)
    return f" [{low_high[0]:.3f}, {low_high[1]:.3f}]" if low_high else ""


def rows(metrics: dict) -> list[tuple[str, str, str, str]]:
    """(dataset/split, measure, ours, baseline) rows for the scores ``metrics`` holds."""
    where = f"{metrics['dataset']} `{metrics['split']}` ({metrics['n_images']})"
    out: list[tuple[str, str, str, str]] = []
    det = metrics.get("detection")
    if det:
        out.append((where, "detection mAP50", _f(det["map50"]) + _ci(metrics, "detection.map50"), ""))
        out.append((where, "detection mAP50-95", _f(det["map50_95"]) + _ci(metrics, "detection.map50_95"), ""))
        for name, row in det["per_class"].items():
            out.append((where, f"AP50 {name}", _f(row["ap50"]), ""))
    seg = metrics.get("segmentation")
    if seg:
        out.append((where, "mask Dice, ground-truth boxes (baseline: box as mask)", _f(seg["dice"]), _f(seg["dice_box_baseline"])))
        out.append((where, "mask IoU, ground-truth boxes (baseline: box as mask)", _f(seg["iou"]), _f(seg["iou_box_baseline"])))
        e2e = seg.get("end_to_end")
        if e2e:
            out.append((where, "mask Dice end to end, detector boxes (baseline: box as mask)", _f(e2e["dice"]), _f(e2e["dice_box_baseline"])))
    ind = metrics.get("indicators")
    if ind:
        base = metrics.get("baselines", {}).get("indicators", {})
        derived = " (derived grades)" if ind.get("labels") == "derived" else ""
        out.append((where, f"indicators overall macro-F1{derived} (baselines: majority / image-only)",
                    _f(ind["overall_macro_f1"]) + _ci(metrics, "indicators.overall_macro_f1"),
                    f"{_f(base.get('majority', {}).get('overall_macro_f1'))} / {_f(base.get('image_only', {}).get('overall_macro_f1'))}"))
        out.append((where, "indicators Hamming accuracy (baseline: majority)", _f(ind["hamming"]),
                    _f(base.get("majority", {}).get("hamming"))))
    hair = metrics.get("hair_loss")
    if hair:
        base = metrics.get("baselines", {}).get("hair_loss", {})
        out.append((where, "Low/Mid/High accuracy (baseline: majority)", _f(hair["accuracy"]), _f(base.get("majority", {}).get("accuracy"))))
        out.append((where, "Low/Mid/High macro-F1 (baselines: majority / image-only)",
                    _f(hair["macro_f1"]) + _ci(metrics, "hair_loss.macro_f1"),
                    f"{_f(base.get('majority', {}).get('macro_f1'))} / {_f(base.get('image_only', {}).get('macro_f1'))}"))
        out.append((where, "Low/Mid/High ECE (calibrated)", _f(hair.get("ece")), ""))
    stage = metrics.get("stage")
    if stage:
        out.append((where, f"{len(stage['scale'])}-level stage accuracy", _f(stage["accuracy"]), ""))
        out.append((where, f"{len(stage['scale'])}-level stage QWK / MAE", f"{_f(stage['qwk'])} / {_f(stage['mae'])}", ""))
    gate = metrics.get("scalp_check")
    if gate:
        out.append((where, "scalp photos wrongly declined", _f(gate["false_reject"]), ""))
    return out


def table(all_metrics: list[dict]) -> str:
    lines = ["| data (pictures) | measure | scalpscope | baseline |", "|---|---|---|---|"]
    for metrics in all_metrics:
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows(metrics)]
    return "\n".join(lines)


def load_metrics(path: Path) -> dict:
    """``metrics.json`` of an ``evaluate`` run, given as the file or its run folder."""
    file = path / "metrics.json" if path.is_dir() else path
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SystemExit(f"{file}: no such file; give the metrics.json (or the --out folder) of 'pipeline.py evaluate'") from None
    except json.JSONDecodeError as error:
        raise SystemExit(f"{file}: not a metrics.json ({error})") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("metrics", nargs="+", type=Path,
                        help="metrics.json files written by 'pipeline.py evaluate', or the folders holding them")
    args = parser.parse_args()
    print(table([load_metrics(p) for p in args.metrics]))


if __name__ == "__main__":
    main()
