"""Trend charts of one grade over a person's visits (matplotlib, no pyplot state).

Each visit is a column of cells, one per grade, shaded by the probability the model gave that
grade, so uncertainty is seen and not only the top grade; a line joins the top grades, its
segments coloured by what :func:`tracking.change.compare` concluded: red worse, green better,
grey no reliable change, dashed not comparable. Markers say the view: circle close-up,
square head photo.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import datetime, timedelta

import matplotlib
import matplotlib.dates
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

from core.analysis import GRADE_COLORS, HAIR_LOSS_COLORS
from core.taxonomy import HAIR_LOSS_GRADES, INDICATOR_GRADE_NAMES
from tracking.change import BETTER, HAIR_LOSS_GRADE, LABELS, NOT_COMPARABLE, WORSE, Comparison
from tracking.visit import Visit

SEGMENT_COLORS = {WORSE: "#c62828", BETTER: "#2e7d32"}
NEUTRAL = "#757575"
MARKERS = {"closeup": "o", "head": "s"}


def _rgb(color: tuple[int, int, int]) -> tuple[float, float, float]:
    return tuple(c / 255 for c in color)


def _grade_axis(name: str) -> tuple[list[str], list[tuple[float, float, float]]]:
    if name == HAIR_LOSS_GRADE:
        return list(HAIR_LOSS_GRADES), [_rgb(HAIR_LOSS_COLORS[g]) for g in HAIR_LOSS_GRADES]
    return [f"{g} {INDICATOR_GRADE_NAMES[g]}" for g in range(4)], [_rgb(GRADE_COLORS[g]) for g in range(4)]


def _grade_at(visit: Visit, name: str) -> tuple[int | None, list[float] | None]:
    """Top grade as a row index and the probability of each row, for one visit."""
    if name == HAIR_LOSS_GRADE:
        result = visit.analysis.hair_loss
        if result is None or result.grade not in HAIR_LOSS_GRADES:
            return None, None
        probs = result.probs if isinstance(result.probs, dict) else {}
        return HAIR_LOSS_GRADES.index(result.grade), [float(probs.get(g, 0.0)) for g in HAIR_LOSS_GRADES]
    result = visit.analysis.indicators.get(name)
    if result is None:
        return None, None
    probs = list(result.probs) if isinstance(result.probs, (list, tuple)) and len(result.probs) == 4 else [0.0] * 4
    return int(result.grade), [float(p) for p in probs]


def trend_figure(name: str, visits: Sequence[Visit], steps: Sequence[Comparison] = ()) -> Figure:
    """The chart of grade ``name`` (an indicator or ``HAIR_LOSS_GRADE``) over ``visits``.

    ``steps`` are the comparisons of consecutive visits (``compare(visits[i], visits[i + 1])``);
    without them the line is drawn neutral.
    """
    rows, colors = _grade_axis(name)
    figure = Figure(figsize=(4.6, 2.5), dpi=110, layout="constrained")
    axes = figure.add_subplot()
    dates = [v.visit_date for v in visits]
    span = (max(dates) - min(dates)) if dates else timedelta(0)
    width = max(span / max(len(dates), 1) * 0.35, timedelta(days=1))
    points: list[tuple[datetime, int] | None] = []
    for visit in visits:
        top, probs = _grade_at(visit, name)
        if top is None:
            points.append(None)
            continue
        for row, p in enumerate(probs):
            axes.bar(
                visit.visit_date,
                0.9,
                width=width,
                bottom=row - 0.45,
                color=colors[row],
                alpha=0.08 + 0.82 * p,
                linewidth=0,
            )
        points.append((visit.visit_date, top))
    by_ids = {(c.earlier_id, c.later_id): c for c in steps}
    for i in range(len(visits) - 1):
        if points[i] is None or points[i + 1] is None:
            continue
        step = by_ids.get((visits[i].id, visits[i + 1].id))
        change = None
        if step is not None:
            change = step.hair_loss if name == HAIR_LOSS_GRADE else step.indicators.get(name)
        status = change.status if change else None
        (x0, y0), (x1, y1) = points[i], points[i + 1]
        color = SEGMENT_COLORS.get(status, NEUTRAL)
        axes.plot(
            [x0, x1],
            [y0, y1],
            color=color,
            linestyle="--" if status == NOT_COMPARABLE else "-",
            linewidth=2.2 if status in SEGMENT_COLORS else 1.4,
        )
        if status in SEGMENT_COLORS or status == NOT_COMPARABLE:
            text = status if change.probability is None else f"{status} P={change.probability:.2f}"
            rising = y1 >= y0  # the label goes on the side of the midpoint the line leaves clear
            axes.annotate(
                text,
                (x0 + (x1 - x0) / 2, (y0 + y1) / 2),
                xytext=(-5 if rising else 5, 7),
                textcoords="offset points",
                ha="right" if rising else "left",
                va="bottom",
                fontsize=8,
                color=color,
                bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
            )
    for visit, point in zip(visits, points):
        if point is not None:
            axes.plot(
                *point,
                marker=MARKERS.get(visit.view or "", "D"),
                markersize=7,
                color="#212121",
                markerfacecolor="white",
                markeredgewidth=1.6,
                linestyle="none",
            )
    axes.set_yticks(range(len(rows)), rows, fontsize=8)
    axes.set_ylim(-0.6, len(rows) - 0.4)
    if dates:
        pad = max(span * 0.06, width * 0.6)  # room for the first and last columns
        axes.set_xlim(min(dates) - pad, max(dates) + pad)
    locator = matplotlib.dates.AutoDateLocator(minticks=2, maxticks=6)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(matplotlib.dates.ConciseDateFormatter(locator))
    axes.tick_params(axis="x", labelsize=8)
    axes.set_title(LABELS.get(name, name), fontsize=10, loc="left")
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return figure


def metric_figure(key: str, visits: Sequence[Visit]) -> Figure:
    """A plain line of one numeric hair measurement (``Analysis.hair[key]``) over the visits.

    Hair measurements carry no calibrated uncertainty, so no change is claimed from them.
    """
    figure = Figure(figsize=(4.6, 2.5), dpi=110, layout="constrained")
    axes = figure.add_subplot()
    points = [
        (v.visit_date, float(v.analysis.hair[key]))
        for v in visits
        if v.analysis.hair
        and isinstance(v.analysis.hair.get(key), (int, float))
        and not isinstance(v.analysis.hair.get(key), bool)
    ]
    if points:
        axes.plot(*zip(*points), color="#37474f", marker="o", markerfacecolor="white", linewidth=1.4)
        dates = [d for d, _ in points]
        pad = max((max(dates) - min(dates)) * 0.08, timedelta(days=2))
        axes.set_xlim(min(dates) - pad, max(dates) + pad)
        values = [value for _, value in points]
        if min(values) >= 0:  # counts and densities from zero, so small wobbles look small
            axes.set_ylim(0, max(values) * 1.15 or 1.0)
    locator = matplotlib.dates.AutoDateLocator(minticks=2, maxticks=6)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(matplotlib.dates.ConciseDateFormatter(locator))
    axes.tick_params(labelsize=8)
    axes.set_title(f"hair: {key} (measured; no change claimed)", fontsize=10, loc="left")
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return figure


def figure_svg(figure: Figure, salt: str) -> str:
    """The figure as an inline ``<svg>`` element: text kept as text, ids unique per ``salt``."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        # No metadata: the page stays free of dates and outside addresses.
        FigureCanvasSVG(figure).print_svg(buffer, metadata=dict.fromkeys(("Date", "Creator", "Format", "Type")))
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML declaration and DOCTYPE for inlining


def figure_png(figure: Figure, dpi: int = 150) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure)  # attaches itself to the figure: no pyplot involved
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)
