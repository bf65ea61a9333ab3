"""benchmarks/: the speed scripts stay runnable against the bundled models (speed itself is not tested)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_analyze", ROOT / "benchmarks" / "bench_analyze.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_flop_count_feeds_each_bundled_network_the_inputs_it_takes():
    """The classifier takes one mask channel per lesion kind; the FLOP count must build them."""
    result = _bench_module().flops_per_image(ROOT / "weights", sorted((ROOT / "samples").glob("*.jpg")))
    for stage in ("gate", "detect", "segment_per_box", "classify"):
        assert result[stage] > 0, stage
    assert 0 < result["closeup_share"] < 1 and result["boxes_per_closeup"] > 0
    assert result["gflops_per_image"] > result["gate"]
