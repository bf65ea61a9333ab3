"""Timing helper shared by the benchmark scripts."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_ms(run: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``run`` in milliseconds over ``repeats`` calls, after one warm-up
    call (allocations, oneDNN kernel selection)."""
    run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(times)
