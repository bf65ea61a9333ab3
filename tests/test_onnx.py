"""The ONNX Runtime path gives the same analyses as PyTorch on every bundled sample."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from core.onnx import attach_onnx, export_pipeline, matching_export
from core.weights import DEFAULT_WEIGHTS_DIR

SAMPLES = sorted((Path(__file__).resolve().parents[1] / "samples").glob("*.jpg"))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx")
    manifest = export_pipeline(DEFAULT_WEIGHTS_DIR, out)
    return out, manifest


@pytest.fixture(scope="module")
def both(exported):
    from pipeline import Pipeline

    torch_pipeline = Pipeline(backend="torch", hair=False)
    onnx_pipeline = Pipeline(backend="torch", hair=False)
    attach_onnx(onnx_pipeline.stages, exported[0])
    return torch_pipeline, onnx_pipeline


def test_export_writes_checked_models_and_their_configs(exported):
    out, manifest = exported
    for stage in ("gate", "detector", "segmenter", "classifier"):
        info = manifest["files"][stage]
        assert (out / info["file"]).stat().st_size > 100_000 and len(info["sha256"]) == 64
        assert json.loads((out / f"{stage}.json").read_text())["sha256"] == info["source"]
        if "max_abs_diff" in info:
            assert info["max_abs_diff"] < 1e-3


def test_export_is_tied_to_the_weights_it_came_from(exported, both):
    out, _ = exported
    assert matching_export(both[0].stages, out) is not None
    stale = json.loads((out / "onnx.json").read_text())
    stale["files"]["classifier"]["source"] = "0" * 64
    other = out.parent / "stale"
    other.mkdir()
    for path in out.iterdir():
        (other / path.name).symlink_to(path)
    (other / "onnx.json").unlink()
    (other / "onnx.json").write_text(json.dumps(stale))
    assert matching_export(both[0].stages, other) is None


def test_onnx_and_torch_agree_on_every_sample(both):
    torch_pipeline, onnx_pipeline = both
    for path in SAMPLES:
        a, b = torch_pipeline.analyze(path), onnx_pipeline.analyze(path)
        assert (a.is_scalp, a.view) == (b.is_scalp, b.view), path.name
        assert a.scalp_score == pytest.approx(b.scalp_score, abs=1e-3)
        if a.hair_loss:
            assert a.hair_loss.grade == b.hair_loss.grade
            for grade, p in a.hair_loss.probs.items():
                assert p == pytest.approx(b.hair_loss.probs[grade], abs=1e-3), path.name
        assert sorted(a.indicators) == sorted(b.indicators)
        for name, result in a.indicators.items():
            assert result.grade == b.indicators[name].grade, (path.name, name)
            assert np.allclose(result.probs, b.indicators[name].probs, atol=1e-3), (path.name, name)
        assert len(a.regions) == len(b.regions), path.name
        for ra, rb in zip(a.regions, b.regions):
            assert ra.kind == rb.kind and np.allclose(ra.box, rb.box, atol=2.0)
            assert abs(ra.area_px - rb.area_px) <= max(20, 0.02 * ra.area_px)


@pytest.mark.parametrize("contrast_blocks", [(), (2, 4)])
def test_per_kind_classifier_with_log_coverage_exports(tmp_path, contrast_blocks):
    import torch

    from core.onnx import export_module
    from fusion.heads import default_heads
    from fusion.model import SeverityClassifier

    torch.manual_seed(0)
    heads = default_heads()
    model = SeverityClassifier(heads, pretrained=False, mask_channels=["sebum", "dandruff", "microkeratin"],
                               contrast_blocks=contrast_blocks).eval()
    masks = torch.rand(3, 3, 64, 64)
    masks[1, 0] = 1  # a kind with no mask known: the known flag and the min-reduction must export too
    masks[2, 1] = 0  # a kind not found
    names = [h.name for h in heads]
    diff = export_module(model, (torch.randn(3, 3, 64, 64), masks), tmp_path / "kinds.onnx", ["image", "mask"], names)
    assert diff < 1e-3
