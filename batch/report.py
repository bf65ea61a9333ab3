"""``summary.csv``, ``errors.csv`` and a self-contained ``report.html`` from finished analyses.

The report embeds everything (CSS, SVG charts, JPEG thumbnails as data URIs): it opens from
a USB stick or an e-mail attachment with no network.
"""
from __future__ import annotations

import base64
import csv
import html
import io
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from core.analysis import DISCLAIMER, GRADE_COLORS, HAIR_LOSS_COLORS, SHORT_NAMES, Analysis, hair_thickness
from core.io import atomic_write_text
from core.taxonomy import HAIR_LOSS_GRADES, INDICATOR_GRADE_NAMES, INDICATORS

#: Thumbnails embedded in report.html; a run of thousands lists the rest in summary.csv.
MAX_THUMBNAILS = 240
THUMB_SIDE = 260

#: Hair measurements (close-ups, when the hair meter runs); ``hair_thickness_units`` says um or px.
HAIR_COLUMNS = ["hair_count", "hair_density_per_cm2", "hair_thickness_median", "hair_thickness_p10",
                "hair_thickness_p90", "hair_thickness_units", "hair_thin_ratio"]
#: Hair-count bins of the report's overview chart.
HAIR_COUNT_BINS = {"0-9": (0, 9), "10-29": (10, 29), "30-59": (30, 59), "60+": (60, 10**9)}
#: The overall Low/Mid/High grade is ``overall_*``; ``hair_loss_*`` is the 0-3 indicator.
SUMMARY_COLUMNS = [
    "image", "is_scalp", "scalp_score", "view", "view_confidence", "overall_hair_loss",
    *[f"overall_p_{g}" for g in HAIR_LOSS_GRADES],
    *[c for n in INDICATORS for c in (f"{n}_grade", *[f"{n}_p{g}" for g in range(4)])],
    "native_stage", "n_regions", "affected_fraction",
    *HAIR_COLUMNS, "notes",
]


def summary_row(image: str, analysis: Analysis) -> dict[str, object]:
    row: dict[str, object] = {
        "image": image,
        "is_scalp": analysis.is_scalp,
        "scalp_score": round(analysis.scalp_score, 4),
        "view": analysis.view or "",
        "view_confidence": "" if analysis.view_confidence is None else round(analysis.view_confidence, 4),
        "overall_hair_loss": analysis.hair_loss.grade if analysis.hair_loss else "",
        "native_stage": analysis.native_stage.grade if analysis.native_stage else "",
        "n_regions": len(analysis.regions),
        "affected_fraction": round(analysis.affected_fraction, 5),
        "notes": " | ".join(analysis.notes),
    }
    for grade in HAIR_LOSS_GRADES:
        row[f"overall_p_{grade}"] = round(analysis.hair_loss.probs[grade], 4) if analysis.hair_loss else ""
    for name in INDICATORS:
        result = analysis.indicators.get(name)
        row[f"{name}_grade"] = "" if result is None else result.grade
        for g in range(4):
            row[f"{name}_p{g}"] = "" if result is None else round(result.probs[g], 4)
    row.update(hair_cells(analysis.hair))
    return row


def hair_cells(record: dict | None) -> dict[str, object]:
    """The HAIR_COLUMNS of one picture (empty cells when the meter did not run or saw no hair)."""
    if not record:
        return dict.fromkeys(HAIR_COLUMNS, "")
    thickness, units = hair_thickness(record)

    def cell(value: object) -> object:
        return "" if value is None else value

    return {
        "hair_count": record["count"], "hair_density_per_cm2": cell(record.get("density_per_cm2")),
        "hair_thickness_median": cell(thickness.get("median")), "hair_thickness_p10": cell(thickness.get("p10")),
        "hair_thickness_p90": cell(thickness.get("p90")), "hair_thickness_units": cell(units),
        "hair_thin_ratio": cell(record.get("thin_ratio")),
    }


def write_summary_csv(rows: Sequence[tuple[str, Analysis]], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_COLUMNS)
    writer.writeheader()
    for image, analysis in rows:
        writer.writerow(summary_row(image, analysis))
    atomic_write_text(path, buffer.getvalue())


def write_errors_csv(errors: Sequence[tuple[str, str]], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["path", "reason"])
    writer.writerows(errors)
    atomic_write_text(path, buffer.getvalue())


# ----------------------------------------------------------------------------- html pieces
def _bar_chart(title: str, counts: dict[str, int], colors: dict[str, tuple[int, int, int]]) -> str:
    """A small horizontal bar chart as inline SVG."""
    total = max(1, sum(counts.values()))
    width, bar_h, label_w = 300, 18, 110
    rows = []
    for i, (label, count) in enumerate(counts.items()):
        length = (width - label_w - 50) * count / total
        r, g, b = colors.get(label, (120, 120, 120))
        y = i * (bar_h + 6)
        rows.append(
            f'<text x="0" y="{y + 13}" font-size="12">{html.escape(label)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{length:.1f}" height="{bar_h}" fill="rgb({r},{g},{b})"/>'
            f'<text x="{label_w + length + 4:.1f}" y="{y + 13}" font-size="12">{count}</text>'
        )
    height = len(counts) * (bar_h + 6)
    return (
        f'<figure class="chart"><figcaption>{html.escape(title)}</figcaption>'
        f'<svg width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">{"".join(rows)}</svg></figure>'
    )


def _thumbnail(path: Path) -> str | None:
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            img.thumbnail((THUMB_SIDE * 2, THUMB_SIDE))
            buffer = io.BytesIO()
            img.save(buffer, format="JPEG", quality=75)
    except OSError:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{margin:0 0 4px} .disclaimer{background:#fff3f3;border-left:4px solid #c33;padding:8px 12px;margin:12px 0}
.meta{color:#555;font-size:14px} .charts{display:flex;flex-wrap:wrap;gap:18px}
.chart{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 12px;margin:0}
.chart figcaption{font-weight:600;margin-bottom:6px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:12px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px;font-size:13px}
.card img{max-width:100%;display:block;margin-bottom:6px} .declined{opacity:.75}
table{border-collapse:collapse;background:#fff} td,th{border:1px solid #ddd;padding:4px 8px;font-size:13px;text-align:left}
"""


def write_report_html(
    rows: Sequence[tuple[str, Analysis]],
    errors: Sequence[tuple[str, str]],
    out: Path,
    overlays: dict[str, Path],
    run_info: dict[str, str] | None = None,
) -> Path:
    """The human-readable report of a batch run, written atomically to ``out/report.html``."""
    graded = [a for _, a in rows if a.is_scalp]
    declined = len(rows) - len(graded)
    charts = [
        _bar_chart("Pictures", {"graded": len(graded), "declined (not scalp)": declined, "errors": len(errors)},
                   {"graded": GRADE_COLORS[0], "declined (not scalp)": (150, 150, 150), "errors": GRADE_COLORS[3]}),
        _bar_chart("Hair-loss grade", {g: sum(a.hair_loss is not None and a.hair_loss.grade == g for a in graded) for g in HAIR_LOSS_GRADES}, HAIR_LOSS_COLORS),
        _bar_chart("View", dict(Counter(a.view or "unknown" for a in graded)), {}),
    ]
    measured = [a.hair["count"] for a in graded if a.hair and a.hair.get("count") is not None]
    if measured:
        bins = {label: sum(low <= c <= high for c in measured) for label, (low, high) in HAIR_COUNT_BINS.items()}
        charts.append(_bar_chart("Hairs counted (close-ups)", bins, {}))
    for name in INDICATORS:
        counts = Counter(int(a.indicators[name].grade) for a in graded if name in a.indicators)
        if counts:
            labels = {f"{g} {INDICATOR_GRADE_NAMES[g]}": counts.get(g, 0) for g in range(4)}
            colors = {f"{g} {INDICATOR_GRADE_NAMES[g]}": GRADE_COLORS[g] for g in range(4)}
            charts.append(_bar_chart(f"{SHORT_NAMES[name]} (0-3)", labels, colors))
    cards = []
    for image, analysis in list(rows)[:MAX_THUMBNAILS]:
        thumb = _thumbnail(overlays[image]) if image in overlays else None
        img_tag = f'<img alt="overlay of {html.escape(image)}" src="{thumb}">' if thumb else ""
        css = "card" if analysis.is_scalp else "card declined"
        cards.append(f'<div class="{css}">{img_tag}<div>{html.escape(analysis.summary())}</div></div>')
    more = f"<p>Showing {MAX_THUMBNAILS} of {len(rows)} pictures; every picture is in summary.csv.</p>" if len(rows) > MAX_THUMBNAILS else ""
    error_rows = "".join(f"<tr><td>{html.escape(p)}</td><td>{html.escape(r)}</td></tr>" for p, r in errors)
    error_table = (
        f"<table><tr><th>file</th><th>reason</th></tr>{error_rows}</table>" if errors else "<p>No file failed.</p>"
    )
    info = {"generated": time.strftime("%Y-%m-%d %H:%M:%S"), **(run_info or {})}
    meta = " · ".join(f"{html.escape(k)}: {html.escape(str(v))}" for k, v in info.items())
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>scalpscope report</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>
<body><h1>scalpscope report</h1><div class="meta">{meta}</div>
<div class="disclaimer"><strong>{html.escape(DISCLAIMER)}</strong> Grades are model estimates with the
confidence shown; pictures that do not look like a scalp are declined, not graded.</div>
<h2>Overview</h2><div class="charts">{''.join(charts)}</div>
<h2>Pictures</h2>{more}<div class="grid">{''.join(cards)}</div>
<h2>Errors ({len(errors)})</h2>{error_table}
</body></html>
"""
    path = out / "report.html"
    atomic_write_text(path, page)
    return path
