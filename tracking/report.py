"""A person's history for people: a text timeline for the terminal and one self-contained
HTML page (inline CSS, inline SVG trend charts, overlays as data URIs; opens with no network).
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import logging
import math
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from core.analysis import DISCLAIMER, GRADE_COLORS, HAIR_LOSS_COLORS, SHORT_NAMES
from core.io import atomic_write_text, sha256_file
from core.taxonomy import INDICATORS
from tracking.capture import HALF_POINTS, MIN_CONSISTENCY
from tracking.change import (
    BETTER,
    CHANGE_PROBABILITY,
    HAIR_LOSS_GRADE,
    NO_RELIABLE_CHANGE,
    NOT_COMPARABLE,
    VIEW_NAMES,
    WORSE,
    Change,
    Comparison,
    compare,
)
from tracking.charts import figure_svg, metric_figure, safe_id, trend_figure
from tracking.visit import Visit

log = logging.getLogger(__name__)

OVERLAY_SIDE = 560  # overlays are shown at most this tall/wide in the page
STATUS_CSS = {WORSE: "worse", BETTER: "better", NO_RELIABLE_CHANGE: "same", NOT_COMPARABLE: "na"}


# ----------------------------------------------------------------------------- shared pieces
def steps_of(visits: Sequence[Visit], threshold: float = CHANGE_PROBABILITY) -> list[Comparison]:
    """Each visit compared with the one before it."""
    return [compare(a, b, threshold) for a, b in itertools.pairwise(visits)]


def hair_text(hair: dict[str, Any] | None) -> str:
    """Hair measurements in one short line, e.g. ``count 112, density_per_cm2 85.3``."""
    if not hair:
        return ""
    parts = []
    for key, value in sorted(hair.items()):
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, (int, float)) and math.isfinite(value):
            parts.append(f"{key} {value:.3g}" if isinstance(value, float) else f"{key} {value}")
        elif isinstance(value, str) and len(value) <= 24:
            parts.append(f"{key} {value}")
    return ", ".join(parts)


def _indicator_heading(name: str) -> str:
    # The 0-3 hair-loss indicator sits beside the low/mid/high grade: name the scale to tell them apart.
    return "hair loss 0-3" if name == "hair_loss" else SHORT_NAMES[name]


def _grade_cell(visit: Visit, name: str) -> str:
    if name == HAIR_LOSS_GRADE:
        result = visit.analysis.hair_loss
        return "-" if result is None else f"{result.grade} {result.confidence:.2f}"
    result = visit.analysis.indicators.get(name)
    return "-" if result is None else f"{result.grade} {result.confidence:.2f}"


def timeline_table(visits: Sequence[Visit], steps: Sequence[Comparison] | None = None) -> str:
    """The visits as a fixed-width text table: date, view, grades (with their probability),
    hair measurements and the capture consistency with the visit before."""
    steps = steps_of(visits) if steps is None else steps
    header = ["date", "view", "hair-loss grade", *[_indicator_heading(n) for n in INDICATORS], "consistency", "hair"]
    rows = []
    for i, visit in enumerate(visits):
        step = steps[i - 1] if i > 0 and i - 1 < len(steps) else None
        consistency = "-" if step is None or step.consistency is None else f"{step.consistency.score:.2f}"
        view = VIEW_NAMES.get(visit.view or "", visit.view or "?") if visit.analysis.is_scalp else "not scalp"
        rows.append(
            [
                visit.visit_date.strftime("%Y-%m-%d"),
                view,
                _grade_cell(visit, HAIR_LOSS_GRADE),
                *[_grade_cell(visit, n) for n in INDICATORS],
                consistency,
                hair_text(visit.analysis.hair),
            ]
        )
    widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(len(header))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- html pieces
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;background:#fafafa;max-width:1400px}
h1{margin:0 0 4px} h2{margin-top:28px} .meta{color:#555;font-size:14px}
.disclaimer{background:#fff3f3;border-left:4px solid #c33;padding:8px 12px;margin:12px 0}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 14px;margin:10px 0}
.card h3{margin:0 0 6px;font-size:16px}
table{border-collapse:collapse;background:#fff} td,th{border:1px solid #ddd;padding:4px 8px;font-size:13px;text-align:left;vertical-align:top}
th{background:#f2f2f2}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;white-space:nowrap}
.worse{background:#fde0e0;color:#a11} .better{background:#dff3e2;color:#1b5e20} .same{background:#eee;color:#444}
.na{background:#fff;color:#777;border:1px dashed #aaa}
.dot{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:4px;vertical-align:middle}
.score{font-weight:700} .low{color:#a11} .ok{color:#1b5e20}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(430px,1fr));gap:12px}
.charts figure{background:#fff;border:1px solid #ddd;border-radius:6px;margin:0;padding:6px}
.charts svg{width:100%;height:auto}
.strip{display:flex;gap:12px;overflow-x:auto;padding-bottom:8px}
.strip figure{background:#fff;border:1px solid #ddd;border-radius:6px;margin:0;padding:6px;flex:0 0 auto;max-width:560px}
.strip img{max-height:420px;max-width:100%;display:block}
.strip figcaption{font-size:12px;color:#444;margin-top:4px;max-width:540px}
.missing{width:360px;height:240px;display:flex;align-items:center;justify-content:center;text-align:center;
  background:repeating-linear-gradient(45deg,#f4f4f4,#f4f4f4 10px,#ececec 10px,#ececec 20px);color:#555;padding:12px;box-sizing:border-box}
.notes{font-size:13px;color:#555;margin:6px 0 0 18px;padding:0} small{color:#666}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _badge(status: str) -> str:
    return f'<span class="badge {STATUS_CSS[status]}">{_esc(status)}</span>'


def _grade_html(name: str, grade: Any) -> str:
    if grade is None:
        return "-"
    color = HAIR_LOSS_COLORS.get(grade) if name == HAIR_LOSS_GRADE else GRADE_COLORS.get(int(grade))
    dot = f'<span class="dot" style="background:rgb{tuple(color)}"></span>' if color else ""
    return f"{dot}{_esc(grade)}"


def _comparison_card(title: str, comparison: Comparison) -> str:
    head = f"{comparison.earlier_date:%Y-%m-%d} &rarr; {comparison.later_date:%Y-%m-%d}"
    if comparison.consistency is None:
        score_html = "capture consistency: not measured"
        factors = ""
    else:
        score = comparison.consistency.score
        css = "ok" if score >= MIN_CONSISTENCY else "low"
        score_html = (
            f'capture consistency <span class="score {css}">{score:.2f}</span> '
            f"<small>(comparable from {MIN_CONSISTENCY:.2f}; the lowest factor decides)</small>"
        )
        rows = "".join(
            f"<tr><td>{_esc(factor)}</td><td>{value:.2f}</td><td>{_esc(comparison.consistency.details[factor])}</td></tr>"
            for factor, value in comparison.consistency.factors.items()
        ) + "".join(
            f"<tr><td>{_esc(f)}</td><td>-</td><td>{_esc(why)}</td></tr>"
            for f, why in comparison.consistency.skipped.items()
        )
        factors = f"<table><tr><th>factor</th><th>score</th><th>measured</th></tr>{rows}</table>"
    verdict = "" if comparison.comparable else f"<p><strong>Not comparable:</strong> {_esc(comparison.reason)}</p>"
    rows = "".join(_change_row(change) for change in comparison.changes())
    notes = "".join(f"<li>{_esc(note)}</li>" for note in comparison.notes)
    return (
        f'<div class="card"><h3>{_esc(title)}: {head}</h3><div>{score_html}</div>{verdict}'
        f"<table><tr><th>grade</th><th>earlier</th><th>later</th><th>result</th><th>P(worse)</th><th>P(better)</th><th>reason</th></tr>"
        f"{rows}</table>"
        f"<details><summary>capture factors</summary>{factors}</details>"
        f"{f'<ul class=notes>{notes}</ul>' if notes else ''}</div>"
    )


def _change_row(change: Change) -> str:
    def cell(p: float | None, decided: bool) -> str:
        return "-" if p is None else f"<strong>{p:.2f}</strong>" if decided else f"{p:.2f}"

    return (
        f"<tr><td>{_esc(change.label)}</td><td>{_grade_html(change.name, change.earlier_grade)}</td>"
        f"<td>{_grade_html(change.name, change.later_grade)}</td><td>{_badge(change.status)}</td>"
        f"<td>{cell(change.p_worse, change.status == WORSE)}</td>"
        f"<td>{cell(change.p_better, change.status == BETTER)}</td>"
        f"<td>{_esc(change.reason)}</td></tr>"
    )


def _timeline_html(visits: Sequence[Visit], steps: Sequence[Comparison]) -> str:
    names = [HAIR_LOSS_GRADE, *INDICATORS]
    header = "".join(
        f"<th>{_esc(h)}</th>"
        for h in [
            "date",
            "view",
            "hair-loss grade",
            *[_indicator_heading(n) for n in INDICATORS],
            "hair",
            "consistency with previous",
            "models",
        ]
    )
    rows = []
    for i, visit in enumerate(visits):
        cells = [
            f"{visit.visit_date:%Y-%m-%d %H:%M}<br><small>{_esc(visit.date_source or 'unknown')} date</small>",
            _esc(
                VIEW_NAMES.get(visit.view or "", visit.view or "?") if visit.analysis.is_scalp else "not a scalp photo"
            ),
        ]
        for name in names:
            result = visit.analysis.hair_loss if name == HAIR_LOSS_GRADE else visit.analysis.indicators.get(name)
            cells.append(
                "-" if result is None else f"{_grade_html(name, result.grade)} <small>{result.confidence:.2f}</small>"
            )
        cells.append(_esc(hair_text(visit.analysis.hair)) or "-")
        step = steps[i - 1] if i > 0 else None
        cells.append("-" if step is None or step.consistency is None else f"{step.consistency.score:.2f}")
        cells.append(
            "<br>".join(f"<small>{_esc(stage)} {_esc(sha[:15])}</small>" for stage, sha in sorted(visit.models.items()))
            or "-"
        )
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{header}</tr>{''.join(rows)}</table>"


def _jpeg_uri(data: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


def _regenerate_overlay(visit: Visit) -> bytes | None:
    """``Analysis.plot`` over the picture at its recorded path, when it still holds the same bytes."""
    from PIL import Image

    from core.images import ImageError, load_image

    try:
        if sha256_file(visit.image_path) != visit.image_sha256:
            return None
        overlay = Image.fromarray(visit.analysis.plot(load_image(visit.image_path).rgb))
    except (OSError, ImageError):
        return None
    overlay.thumbnail((OVERLAY_SIDE * 2, OVERLAY_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    overlay.save(buffer, format="JPEG", quality=82)
    return buffer.getvalue()


def _picture_state(visit: Visit) -> str:
    if not visit.image_path.exists():
        return "gone"
    try:
        return "same" if sha256_file(visit.image_path) == visit.image_sha256 else "changed"
    except OSError:
        return "gone"


def _overlay_figure(visit: Visit, stored_overlay: Callable[[int], bytes | None] | None) -> str:
    state = _picture_state(visit)
    where = _esc(visit.image_path)
    jpeg = stored_overlay(visit.id) if stored_overlay and visit.has_overlay else None
    source = "overlay stored when the visit was recorded"
    if jpeg is None and state == "same":
        jpeg, source = _regenerate_overlay(visit), "overlay drawn from the picture"
    if state == "gone":
        note = f"The picture is no longer at {where} (moved or deleted)."
    elif state == "changed":
        note = f"The file at {where} has changed since this visit was recorded."
    else:
        note = f"Picture: {where}."
    view = _esc(VIEW_NAMES.get(visit.view or "", visit.view or "?"))
    caption = f"<strong>{visit.visit_date:%Y-%m-%d}</strong> · {view}<br>{note}"
    if jpeg is None:
        body = f'<div class="missing">{note} No overlay was stored, so none can be shown.</div>'
    else:
        body = f'<img alt="overlay of the {visit.visit_date:%Y-%m-%d} visit" src="{_jpeg_uri(jpeg)}">'
        caption += f" Showing the {source}."
    return f"<figure>{body}<figcaption>{caption}</figcaption></figure>"


def _charts_html(visits: Sequence[Visit], steps: Sequence[Comparison]) -> str:
    figures = []
    for name in [HAIR_LOSS_GRADE, *INDICATORS]:
        if not any(
            (v.analysis.hair_loss if name == HAIR_LOSS_GRADE else v.analysis.indicators.get(name)) for v in visits
        ):
            continue
        svg = figure_svg(trend_figure(name, visits, steps), salt=f"trend-{safe_id(name)}")
        figures.append(f'<figure aria-label="trend of {_esc(name)}">{svg}</figure>')
    metrics = sorted(
        {
            key
            for v in visits
            for key, value in (v.analysis.hair or {}).items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        }
    )
    for key in metrics:
        svg = figure_svg(metric_figure(key, visits), salt=f"hair-{safe_id(key)}")
        figures.append(f'<figure aria-label="trend of hair {_esc(key)}">{svg}</figure>')
    return f'<div class="charts">{"".join(figures)}</div>' if figures else "<p>No grades to chart.</p>"


def _how_to_read(threshold: float) -> str:
    halves = ", ".join(f"{k} {v:g}{'x' if k in ('sharpness', 'scale') else ''}" for k, v in HALF_POINTS.items())
    return f"""<h2>How to read this page</h2><div class="card"><ul>
<li><strong>worse / better</strong>: the two visits' calibrated grade probabilities, taken as independent, give
P(later grade &gt; earlier grade) (or the reverse) of at least {threshold:.2f}. Identical pictures can never reach it.</li>
<li><strong>no reliable change</strong>: the grades may differ, but the move is within the model's own uncertainty.</li>
<li><strong>not comparable</strong>: the pictures are of different views, one was not graded, or they were taken too
differently to compare: the capture consistency score (the lowest of sharpness, brightness, highlights and
magnification scores, each 0.5 at a difference of {halves}) is under {MIN_CONSISTENCY:.2f}.
Retake the picture the way the earlier one was taken (same device, magnification, focus and light).</li>
<li>Charts: each visit is a column of cells shaded by the probability of each grade; the line joins the top grades,
red where worse, green where better, grey where no reliable change, dashed where not comparable;
circle = close-up, square = head photo.</li></ul></div>"""


def history_html(
    subject: str,
    visits: Sequence[Visit],
    out_path: str | Path,
    threshold: float = CHANGE_PROBABILITY,
    stored_overlay: Callable[[int], bytes | None] | None = None,
) -> Path:
    """Write the self-contained history page of ``subject`` to ``out_path`` (atomically).

    ``visits`` are oldest first (as ``HistoryStore.visits`` returns them). ``stored_overlay``
    (e.g. ``store.overlay_jpeg``) supplies overlays kept at record time; without one, or for a
    visit without one, the overlay is drawn from the picture when it is still where it was, and
    the page says so when it is not.
    """
    out_path = Path(out_path)
    visits = list(visits)
    steps = steps_of(visits, threshold)
    sections = []
    if len(visits) >= 2:
        cards = [
            _comparison_card("Latest vs previous visit" + (" (the baseline)" if len(visits) == 2 else ""), steps[-1])
        ]
        if len(visits) > 2:
            cards.append(
                _comparison_card("Latest vs baseline (first visit)", compare(visits[0], visits[-1], threshold))
            )
            history = "".join(f"<li>{_esc(step.summary())}</li>" for step in steps)
            cards.append(f'<div class="card"><h3>Visit by visit</h3><ul class="notes">{history}</ul></div>')
        sections.append("<h2>Changes</h2>" + "".join(cards))
    else:
        sections.append("<h2>Changes</h2><p>One visit so far: changes appear from the second visit on.</p>")
    sections.append("<h2>Trends</h2>" + _charts_html(visits, steps))
    sections.append("<h2>Timeline</h2>" + _timeline_html(visits, steps))
    figures = "".join(_overlay_figure(visit, stored_overlay) for visit in visits)
    sections.append(f'<h2>Pictures</h2><div class="strip">{figures}</div>')
    sections.append(_how_to_read(threshold))
    span = f"{visits[0].visit_date:%Y-%m-%d} to {visits[-1].visit_date:%Y-%m-%d}" if visits else "no visits"
    meta = f"{len(visits)} visit{'s' if len(visits) != 1 else ''}, {span} · generated {datetime.now():%Y-%m-%d %H:%M}"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>scalpscope history: {_esc(subject)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>
<body><h1>History: {_esc(subject)}</h1><div class="meta">{meta}</div>
<div class="disclaimer"><strong>{_esc(DISCLAIMER)}</strong> A change is reported only when it exceeds the model's
own uncertainty and the pictures were taken alike; everything else says so.</div>
{"".join(sections)}
</body></html>
"""
    atomic_write_text(out_path, page)
    return out_path
