"""One ``analyze`` run end to end: discover, analyze (locally or on Ray), report.

The command line, the Makefile's ``analyze`` target and the benchmark all call
:func:`analyze_paths`; the result says how many images were done, skipped and failed.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from batch.report import write_errors_csv, write_report_html, write_summary_csv
from batch.runner import Analyzer, BatchResult, Item, collect, discover, run_batch
from core.analysis import Analysis

log = logging.getLogger(__name__)


@dataclass
class JobOutcome:
    items: list[Item]
    result: BatchResult
    n_analyzed: int
    n_failed: int
    report: Path


def finish(items: Sequence[Item], out: Path, run_info: dict[str, str]) -> tuple[int, int, Path]:
    """Rebuild summary.csv, errors.csv and report.html from what is on disk for ``items``."""
    analyses, errors = collect(items, out)
    rows = [(item.key, analysis) for item, analysis in analyses]
    write_summary_csv(rows, out / "summary.csv")
    error_rows = [(str(item.path), reason) for item, reason in errors]
    write_errors_csv(error_rows, out / "errors.csv")
    overlays = {item.key: item.overlay_path(out) for item, _ in analyses}
    report = write_report_html(rows, error_rows, out, overlays, run_info)
    return len(rows), len(error_rows), report


def remove_stale_temporaries(out: Path) -> int:
    """Delete temporary files a killed run left behind (final names are only ever complete)."""
    stale = list(out.rglob(".*.tmp")) if out.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        log.info("removed %d temporary files left by an interrupted run", len(stale))
    return len(stale)


def analyze_paths(
    make_analyzer: Callable[[], Analyzer],
    paths: Sequence[Path],
    out: Path,
    batch_size: int = 8,
    force: bool = False,
    overlay: bool = True,
    executor: str = "local",
    shards: int | None = None,
    on_done: Callable[[Item, Analysis, np.ndarray], None] | None = None,
    run_info: dict[str, str] | None = None,
) -> JobOutcome:
    """Analyze every image under ``paths`` into ``out`` and write the run's reports."""
    out = Path(out)
    items = discover(paths, out)
    if not items:
        raise FileNotFoundError(f"no images (jpg, jpeg, png, bmp, webp) under {', '.join(map(str, paths))}")
    remove_stale_temporaries(out)
    if executor == "ray":
        from batch.ray_executor import run_on_ray

        if on_done is not None:
            raise ValueError("--subject recording runs locally; drop --executor ray for a per-person history")
        result = run_on_ray(make_analyzer, items, out, batch_size=batch_size, force=force, overlay=overlay, shards=shards)
    elif executor == "local":
        result = run_batch(make_analyzer(), items, out, batch_size=batch_size, force=force, overlay=overlay, on_done=on_done)
    else:
        raise ValueError(f"unknown executor {executor!r}; use local or ray")
    info = {"images": str(len(items)), "analyzed now": str(len(result.done)), "skipped (up to date)": str(len(result.skipped)),
            **(run_info or {})}
    if result.seconds and result.done:
        info["speed"] = f"{result.images_per_s:.2f} images/s"
    n_ok, n_failed, report = finish(items, out, info)
    return JobOutcome(items, result, n_ok, n_failed, report)
