"""``pipeline.py evaluate``: every stage scored on a labelled split, with baselines and intervals.

Runs the bundled weights on the small real fixtures (pictures from the exports' valid splits).
The arithmetic of the metrics themselves is checked by hand in test_metrics_classification.py
and test_segmentation.py; here we check that evaluation wires truth and predictions correctly.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from datasets.importer import import_dataset
from evaluation.report import compare_table
from evaluation.run import EvaluationError, evaluate


@pytest.fixture(scope="module")
def scalp_eval(pipeline, scalp_mini, tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_scalp")
    folder = import_dataset(scalp_mini, root / "ds")
    return folder, evaluate(folder.root, root / "out", split="val", pipeline=pipeline, n_bootstrap=50), root / "out"


@pytest.fixture(scope="module")
def hair_eval(pipeline, hair_loss_mini, tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_hair")
    folder = import_dataset(hair_loss_mini, root / "ds")
    return folder, evaluate(folder.root, root / "out", split="val", pipeline=pipeline, n_bootstrap=50), root / "out"


def test_closeup_split_scores_detection_masks_and_indicators(scalp_eval):
    folder, metrics, out = scalp_eval
    n_val = len(folder.split("val"))
    assert metrics["n_images"] == n_val and metrics["split"] == "val"
    det = metrics["detection"]
    assert det["n_images"] == n_val
    assert set(det["per_class"]) <= set(metrics["weights"]) | set(det["per_class"])  # names from the detector
    assert 0 <= det["map50_95"] <= det["map50"] <= 1
    seg = metrics["segmentation"]
    for key in ("dice", "iou", "dice_box_baseline", "dice_threshold_baseline"):
        assert 0 <= seg[key] <= 1
    assert seg["iou"] <= seg["dice"]  # IoU <= Dice for every mask, so for their means too
    assert seg["n_regions"] == sum(len(s.regions) for s in folder.split("val"))
    ind = metrics["indicators"]
    assert ind["labels"] == "derived" and "not graded by people" in ind["derived"]["note"]
    assert 0 <= ind["overall_macro_f1"] <= 1 and 0 <= ind["hamming"] <= 1
    assert set(metrics["baselines"]["indicators"]) == {"majority", "image_only"}
    low, high = metrics["ci95"]["indicators.overall_macro_f1"]
    assert low <= ind["overall_macro_f1"] <= high
    assert (out / "detection" / "confusion_matrix.png").is_file()
    assert list((out / "plots").glob("confusion_*.png"))


def test_head_split_scores_the_hair_loss_grade_and_native_stage(hair_eval):
    folder, metrics, out = hair_eval
    hair = metrics["hair_loss"]
    assert hair["n"] == len(folder.split("val")) - hair["n_missing"]
    confusion = json.loads((out / "metrics.json").read_text())["hair_loss"]
    assert confusion == hair
    assert 0 <= hair["accuracy"] <= 1 and 0 <= hair["macro_f1"] <= 1
    assert metrics["stage"]["scale"][0] == "LEVEL_2" and metrics["stage"]["mae"] >= 0
    assert "detection" not in metrics  # head photos have no outlined regions
    assert metrics["baselines"]["hair_loss"]["majority"]["class"] in ("low", "mid", "high")


def test_metrics_json_validates_against_the_schema(scalp_eval, hair_eval):
    import jsonschema

    schema = json.loads((Path(__file__).resolve().parents[1] / "evaluation" / "metrics.schema.json").read_text())
    for _, metrics, out in (scalp_eval, hair_eval):
        jsonschema.validate(json.loads((out / "metrics.json").read_text()), schema)
    broken = json.loads(json.dumps(scalp_eval[1]))
    broken["indicators"]["overall_macro_f1"] = 1.7
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_reports_are_written_and_say_what_was_scored(scalp_eval):
    _, metrics, out = scalp_eval
    md = (out / "report.md").read_text()
    assert "macro-F1" in md and "mAP50" in md.replace("AP50", "mAP50") and metrics["dataset"] in md
    assert (out / "report.html").read_text().count("<table") >= 3


def test_compare_shows_deltas(scalp_eval):
    _, metrics, _ = scalp_eval
    better = json.loads(json.dumps(metrics))
    better["indicators"]["overall_macro_f1"] = metrics["indicators"]["overall_macro_f1"] + 0.1
    table = compare_table(better, metrics)
    line = next(row for row in table.splitlines() if "indicators.overall_macro_f1" in row)
    assert "+0.100" in line


def test_missing_split_and_unknown_labels_stop_with_a_reason(pipeline, scalp_mini, tmp_path):
    folder = import_dataset(scalp_mini, tmp_path / "ds")
    with pytest.raises(EvaluationError, match="no 'test' split"):
        evaluate(folder.root, tmp_path / "out", split="test", pipeline=pipeline)
    for sample in folder.samples:
        for region in sample.regions:
            region.grade = "high"  # graded regions ("dandruff/high") are not classes of the bundled detector
    folder.save()
    with pytest.raises(EvaluationError, match="/high"):
        evaluate(folder.root, tmp_path / "out2", split="val", pipeline=pipeline)


def test_training_split_is_flagged(pipeline, hair_loss_mini, tmp_path):
    from datasets.split import stratified_split

    folder = import_dataset(hair_loss_mini, tmp_path / "ds")
    stratified_split(folder.samples, (0.5, 0.5, 0.0), seed=0)
    folder.save()
    metrics = evaluate(folder.root, tmp_path / "out", split="train", pipeline=pipeline, n_bootstrap=10)
    assert "training split" in metrics["warning"]
    assert np.isfinite(metrics["hair_loss"]["accuracy"])


def test_test_time_study_scores_the_same_models_as_evaluate(scalp_eval, hair_eval, tmp_path):
    """``python -m evaluation.test_time``: its plain rows are what ``evaluate`` measured
    (the classifier alone without masks; ultralytics' validator at the trained size)."""
    from evaluation.test_time import DETECTOR_VARIANTS, main

    out = tmp_path / "tta.json"
    assert main(["--classifier-data", str(hair_eval[0].root), "--detector-data", str(scalp_eval[0].root),
                 "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    rows = result["classifier"]["variants"]
    assert set(rows) == {"plain", "flip", "joint"} and result["classifier"]["n"] == len(hair_eval[0].split("val"))
    assert rows["plain"]["grade_accuracy"] == pytest.approx(hair_eval[1]["baselines"]["hair_loss"]["image_only"]["accuracy"])
    for row in rows.values():
        assert all(np.isfinite(v) for v in row.values()) and 0 <= row["stage_accuracy"] <= 1
    detector = result["detector"]["variants"]
    assert [r["augment"] for r in detector.values()] == [a for _, _, a in DETECTOR_VARIANTS]
    assert detector["plain"]["map50"] == pytest.approx(scalp_eval[1]["detection"]["map50"], abs=1e-6)
    assert detector["1.3x size"]["imgsz"] > detector["plain"]["imgsz"]


def test_summary_table_prints_what_metrics_json_holds_from_a_file_or_its_folder(scalp_eval, hair_eval, tmp_path):
    from evaluation.summary import load_metrics, table

    rows = table([load_metrics(scalp_eval[2]), load_metrics(hair_eval[2] / "metrics.json")]).splitlines()
    detection = next(r for r in rows if r.split("|")[2].strip() == "detection mAP50")
    assert f"{scalp_eval[1]['detection']['map50']:.3f}" in detection
    stage = next(r for r in rows if "stage accuracy" in r)
    assert f"{hair_eval[1]['stage']['accuracy']:.3f}" in stage
    with pytest.raises(SystemExit, match="no such file"):
        load_metrics(tmp_path / "missing")
