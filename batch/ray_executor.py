"""``analyze --executor ray``: shard a folder over a Ray cluster, same outputs, same resumability.

Each shard is one Ray task that builds its own pipeline (models are loaded once per task, not
per image) and runs the ordinary :func:`~batch.runner.run_batch` on its share, writing into
the same output folder; outputs are per-image files, so shards never touch the same file.
Connects to a running cluster when ``RAY_ADDRESS`` is set, else starts a local one.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from batch.runner import Analyzer, BatchResult, Item, run_batch


def _run_shard(make_analyzer: Callable[[], Analyzer], shard: list[Item], out: str, batch_size: int, force: bool,
               overlay: bool) -> dict:
    result = run_batch(make_analyzer(), shard, Path(out), batch_size=batch_size, force=force, overlay=overlay, progress=False)
    return {"done": result.done, "skipped": result.skipped, "failed": result.failed, "seconds": result.seconds}


def run_on_ray(make_analyzer: Callable[[], Analyzer], items: Sequence[Item], out: Path, batch_size: int = 8,
               force: bool = False, overlay: bool = True, shards: int | None = None) -> BatchResult:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no telemetry from an offline tool
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    try:
        workers = shards or max(1, int(ray.available_resources().get("CPU", 1)))
        parts = [list(items[i::workers]) for i in range(workers) if items[i::workers]]
        task = ray.remote(num_cpus=1)(_run_shard)
        futures = [task.remote(make_analyzer, part, str(out), batch_size, force, overlay) for part in parts]
        result = BatchResult()
        for outcome in ray.get(futures):
            result.done += outcome["done"]
            result.skipped += outcome["skipped"]
            result.failed += outcome["failed"]
            result.seconds = max(result.seconds, outcome["seconds"])
        return result
    finally:
        if started_here:
            ray.shutdown()
