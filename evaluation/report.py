"""``report.md`` and ``report.html`` from ``metrics.json``, and ``--compare`` delta tables.

Both reports come from one list of sections (title, table rows, notes), so they never
disagree; the HTML embeds its PNG plots so it opens offline as a single file.
"""
from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

from core.analysis import DISCLAIMER
from core.io import atomic_write_text
from core.taxonomy import INDICATORS

Section = tuple[str, list[str], list[list[str]], list[str]]  # title, header, rows, notes


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def with_ci(metrics: dict[str, Any], key: str, value: Any) -> str:
    interval = metrics.get("ci95", {}).get(key)
    return f"{fmt(value)} [{fmt(interval[0])}, {fmt(interval[1])}]" if interval else fmt(value)


def sections(metrics: dict[str, Any]) -> list[Section]:
    out: list[Section] = []
    det = metrics.get("detection")
    if det:
        rows = [["all", with_ci(metrics, "detection.map50", det["map50"]), with_ci(metrics, "detection.map50_95", det["map50_95"]),
                 fmt(det["precision"]), fmt(det["recall"])]]
        rows += [[name, fmt(c["ap50"]), fmt(c["ap50_95"]), fmt(c["precision"]), fmt(c["recall"])] for name, c in det["per_class"].items()]
        out.append(("Detection", ["class", "AP50 [95% CI]", "AP50-95 [95% CI]", "precision", "recall"], rows,
                    ["ultralytics validator, conf 0.001, IoU 0.7 NMS; intervals: bootstrap over images."]))
    seg = metrics.get("segmentation")
    if seg:
        e2e = seg["end_to_end"]
        rows = [["U-Net (box-prompted)", fmt(seg["dice"]), fmt(seg["iou"])],
                ["box only (baseline)", fmt(seg["dice_box_baseline"]), fmt(seg["iou_box_baseline"])],
                ["threshold in box (baseline)", fmt(seg["dice_threshold_baseline"]), fmt(seg["iou_threshold_baseline"])],
                ["end to end: U-Net on detector boxes", fmt(e2e["dice"]), fmt(e2e["iou"])],
                ["end to end: detector boxes only", fmt(e2e["dice_box_baseline"]), "-"]]
        out.append(("Segmentation", ["masks", "Dice", "IoU"], rows,
                    [f"{seg['n_regions']} outlined regions with ground-truth boxes as prompts; end to end over {e2e['n_images']} pictures."]))
    hl = metrics.get("hair_loss")
    if hl:
        base = metrics.get("baselines", {}).get("hair_loss", {})
        rows = [["scalpscope end to end", fmt(hl["accuracy"]), with_ci(metrics, "hair_loss.macro_f1", hl["macro_f1"]), fmt(hl["ece"])]]
        if base:
            rows.append([f"majority class ({base['majority']['class']})", fmt(base["majority"]["accuracy"]), fmt(base["majority"]["macro_f1"]), "-"])
            rows.append(["classifier alone, no mask, no scalp check", fmt(base["image_only"]["accuracy"]), fmt(base["image_only"]["macro_f1"]), "-"])
        out.append(("Hair loss (Low/Mid/High)", ["model", "accuracy", "macro-F1 [95% CI]", "ECE"], rows,
                    [f"{hl['n']} labelled pictures; {hl.get('n_missing', 0)} without a grade (declined by the scalp check) count as errors."]))
    stage = metrics.get("stage")
    if stage:
        out.append(("Native stage scale", ["scale", "accuracy", "MAE (steps)", "QWK", "macro-F1"],
                    [[" / ".join(stage["scale"]), fmt(stage["accuracy"]), fmt(stage["mae"]), fmt(stage["qwk"]), fmt(stage["macro_f1"])]], []))
    ind = metrics.get("indicators")
    if ind:
        base = metrics.get("baselines", {}).get("indicators", {})
        rows = [["overall (mean of labelled)", with_ci(metrics, "indicators.overall_macro_f1", ind["overall_macro_f1"]), "-",
                 fmt(base.get("majority", {}).get("overall_macro_f1")), fmt(base.get("image_only", {}).get("overall_macro_f1"))],
                ["Hamming accuracy", fmt(ind["hamming"]), "-", fmt(base.get("majority", {}).get("hamming")), fmt(base.get("image_only", {}).get("hamming"))]]
        for name in INDICATORS:
            if name in ind:
                rows.append([name, fmt(ind[name]["macro_f1"]), fmt(ind[name]["qwk"]), fmt(base.get("majority", {}).get(name, {}).get("macro_f1")),
                             fmt(base.get("image_only", {}).get(name, {}).get("macro_f1"))])
        notes = [f"{ind.get('n_missing', 0)} (picture, indicator) pairs without a grade count as errors."]
        if ind.get("labels") == "derived":
            notes.append(f"DERIVED labels: {ind['derived']['note']} ({ind['derived']['source']}; cuts {ind['derived']['cuts']}).")
        out.append(("Six indicators (0-3)", ["indicator", "macro-F1 [95% CI]", "QWK", "majority macro-F1", "image-only macro-F1"], rows, notes))
    gate = metrics.get("scalp_check")
    if gate:
        rows = [["false reject (scalp photos declined)", fmt(gate["false_reject"]), str(gate["n"])],
                ["view accuracy (close-up vs head)", fmt(metrics["view"]["accuracy"]), str(metrics["view"]["n"])]]
        out.append(("Scalp check and view", ["measure", "value", "pictures"], rows, []))
    return out


def markdown(metrics: dict[str, Any], plots: list[Path]) -> str:
    weights = ", ".join(f"{k} {v.split(':')[-1][:12]}" for k, v in metrics["weights"].items())
    lines = [f"# scalpscope evaluation: {metrics['dataset']} / {metrics['split']}", "",
             (f"{metrics['n_images']} pictures ({metrics['n_unreadable']} unreadable) · weights: {weights} · "
              f"seed {metrics['seed']} · {metrics['time']['finished']} · {metrics['time']['seconds']} s"), "",
             f"> {DISCLAIMER}", ""]
    for title, header, rows, notes in sections(metrics):
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        lines += [""] + [f"_{n}_" for n in notes] + [""]
    if plots:
        lines += ["## Plots", ""] + [f"![{p.stem}]({p.as_posix()})" for p in plots] + [""]
    return "\n".join(lines)


def html_page(metrics: dict[str, Any], plots: list[Path], root: Path) -> str:
    parts = [f"<h1>scalpscope evaluation: {html.escape(metrics['dataset'])} / {html.escape(metrics['split'])}</h1>",
             f"<p class='meta'>{metrics['n_images']} pictures · seed {metrics['seed']} · {html.escape(metrics['time']['finished'])}</p>",
             f"<p class='disclaimer'>{html.escape(DISCLAIMER)}</p>"]
    for title, header, rows, notes in sections(metrics):
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
        parts.append(f"<h2>{html.escape(title)}</h2><table><tr>{head}</tr>{body}</table>")
        parts += [f"<p class='note'>{html.escape(n)}</p>" for n in notes]
    if plots:
        parts.append("<h2>Plots</h2><div class='plots'>")
        for plot in plots:
            data = base64.b64encode((root / plot).read_bytes()).decode("ascii")
            parts.append(f"<figure><img alt='{html.escape(plot.stem)}' src='data:image/png;base64,{data}'><figcaption>{html.escape(plot.stem)}</figcaption></figure>")
        parts.append("</div>")
    style = ("body{font-family:system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0}"
             "td,th{border:1px solid #ccc;padding:4px 8px;font-size:14px}.note{color:#555;font-size:13px}"
             ".disclaimer{background:#fff3f3;border-left:4px solid #c33;padding:6px 10px}.plots{display:flex;flex-wrap:wrap;gap:12px}"
             "figure{margin:0}img{max-width:420px}")
    return f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>scalpscope evaluation</title><style>{style}</style></head><body>{''.join(parts)}</body></html>"


def write_reports(metrics: dict[str, Any], out: Path) -> None:
    out = Path(out)
    plots = sorted(p.relative_to(out) for p in out.rglob("*.png") if "yolo-data" not in p.parts)
    atomic_write_text(out / "report.md", markdown(metrics, plots))
    atomic_write_text(out / "report.html", html_page(metrics, plots, out))


# ----------------------------------------------------------------------------- compare
def flatten(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves as dotted keys (``indicators.dandruff.macro_f1``); lists and matrices left out."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and key not in ("ci95", "confusion_matrix", "weights", "versions", "time"):
            out.update(flatten(value, name + "."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def compare_table(current: dict[str, Any], other: dict[str, Any]) -> str:
    """Side-by-side delta table of every score both runs have."""
    a, b = flatten(current), flatten(other)
    keys = [k for k in a if k in b and not k.endswith(("n", "seed", "n_images", "n_unreadable", "support"))]
    lines = [f"{'score':<58}{'this run':>10}{'other':>10}{'delta':>10}", "-" * 88]
    for key in keys:
        delta = a[key] - b[key]
        lines.append(f"{key:<58}{a[key]:>10.4f}{b[key]:>10.4f}{delta:>+10.4f}")
    return "\n".join(lines)
