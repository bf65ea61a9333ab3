"""datasets/: records, readers (on real exports and malformed inputs), relabel, split, check, pull."""
from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import pipeline
from datasets.check import check_dataset
from datasets.folder import DatasetError, DatasetFolder
from datasets.importer import detect_format, import_dataset
from datasets.readers import aihub, roboflow_yolo
from datasets.records import Region, Sample
from datasets.relabel import RelabelError, RelabelMap
from datasets.split import split_report, stratified_split


# ----------------------------------------------------------------------------- records
def test_sample_round_trips_through_json():
    sample = Sample(
        image="images/a.jpg",
        width=640,
        height=480,
        regions=[Region(box=(1, 2, 30, 40), kind="dandruff", polygon=[(1, 2), (30, 2), (30, 40)], source_class="d")],
        indicators={"sebum": 2},
        hair_loss="mid",
        meta={"view": "closeup", "age": 31},
        source={"dataset": "x", "class": "d"},
        split="valid",
    )
    again = Sample.from_dict(json.loads(json.dumps(sample.to_dict())))
    assert again == sample
    assert again.split == "val"  # Roboflow's "valid" is stored as "val"
    assert again.indicators["sebum"] == 2 and again.indicators["dandruff"] is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"indicators": {"sebum": 4}}, "0-3"),
        ({"indicators": {"shine": 1}}, "unknown indicator"),
        ({"hair_loss": "severe"}, "hair-loss grade"),
        ({"meta": {"view": "macro"}}, "unknown view"),
        ({"split": "holdout"}, "unknown split"),
    ],
)
def test_sample_rejects_values_outside_the_vocabulary(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Sample(image="a.jpg", **kwargs)


# ----------------------------------------------------------------------------- Roboflow YOLO
def test_yolo_reader_on_committed_real_images(scalp_mini, tmp_path):
    folder = import_dataset(scalp_mini, tmp_path / "ds")
    assert detect_format(scalp_mini) == "roboflow-yolo"
    assert len(folder) == 6
    by_name = {Path(s.image).name: s for s in folder}
    rich = by_name["_1578382520860_jpg.rf.5abf4bf331dbf4e8388a23753beb1b07.jpg"]
    # label rows 0,0,1,2,2 (d, d, ds, o, o): ds becomes a dandruff and an erythema region.
    kinds = Counter(r.kind for r in rich.regions)
    assert kinds == {"dandruff": 3, "erythema_between_follicles": 1, "sebum": 2}
    assert all(r.polygon and len(r.polygon) >= 3 for r in rich.regions)
    for region in rich.regions:
        xs, ys = zip(*region.polygon)
        assert region.box == pytest.approx((min(xs), min(ys), max(xs), max(ys)), abs=0.01)
        assert 0 <= region.box[0] < region.box[2] <= 640
    negative = by_name["D_116_jpg.rf.a6ef127e50466b3fe7d0062fa03fa012.jpg"]
    assert negative.regions == [] and negative.meta["negative"] is True
    assert {s.split for s in folder} == {"train", "val"}
    assert all(s.view == "closeup" for s in folder)
    copies = [s for s in folder if s.source["group"] == "O_464"]
    assert len(copies) == 2  # augmented copies share their source photo
    assert (tmp_path / "ds" / "relabel.yaml").read_text().startswith("# Relabel map")


def test_yolo_reader_on_the_full_real_export(shared_data, tmp_path):
    folder = import_dataset(shared_data / "scalp-data", tmp_path / "ds")
    assert len(folder.split("train")) == 492 and len(folder.split("valid")) == 93
    instances = Counter(r.source_class for s in folder.split("val") for r in s.regions)
    # MANIFEST: valid d 333, ds 52, o 80, s 47; ds yields two regions each.
    assert instances == {"d": 333, "ds": 104, "o": 80, "s": 47}
    assert sum(1 for s in folder.split("val") if not s.regions) == 22


def _mini_copy(scalp_mini: Path, tmp_path: Path) -> Path:
    src = tmp_path / "export"
    shutil.copytree(scalp_mini, src)
    return src


def test_yolo_box_rows_and_polygon_rows_both_read(scalp_mini, tmp_path):
    src = _mini_copy(scalp_mini, tmp_path)
    label = next((src / "valid" / "labels").glob("D_18*.txt"))
    label.write_text("0 0.5 0.5 0.2 0.1\n3 0.1 0.1 0.3 0.1 0.2 0.3\n")
    sample = next(s for s in import_dataset(src, tmp_path / "ds") if "D_18" in s.image)
    box_region, polygon_region = sample.regions
    assert box_region.kind == "dandruff" and box_region.polygon is None
    assert box_region.box == pytest.approx((256, 288, 384, 352))
    assert polygon_region.kind == "erythema_between_follicles"
    assert polygon_region.box == pytest.approx((64, 64, 192, 192))


@pytest.mark.parametrize(
    "row, message",
    [("7 0.5 0.5 0.1 0.1", "class id 7"), ("0 0.5 0.5 0.1", "expected 4 box numbers"), ("d 0.5 0.5 0.1 0.1", "not a YOLO label row")],
)
def test_yolo_malformed_rows_name_file_and_line(scalp_mini, tmp_path, row, message):
    src = _mini_copy(scalp_mini, tmp_path)
    label = next((src / "valid" / "labels").glob("D_18*.txt"))
    label.write_text("0 0.5 0.5 0.1 0.1\n" + row + "\n")
    with pytest.raises(DatasetError, match=message) as err:
        import_dataset(src, tmp_path / "ds")
    assert f"{label.name}:2" in str(err.value)
    assert not (tmp_path / "ds").exists()  # a failed import writes nothing


def test_yolo_unknown_class_names_class_file_and_map(scalp_mini, tmp_path):
    src = _mini_copy(scalp_mini, tmp_path)
    (src / "data.yaml").write_text((src / "data.yaml").read_text().replace("nc: 4", "nc: 5").replace("'s']", "'s', 'itch']"))
    label = next((src / "valid" / "labels").glob("D_18*.txt"))
    label.write_text("4 0.5 0.5 0.1 0.1\n")
    custom = tmp_path / "map.yaml"
    shutil.copy(Path("datasets/relabel/scalp-data.yaml"), custom)
    with pytest.raises(RelabelError) as err:
        import_dataset(src, tmp_path / "ds", relabel=custom)
    text = str(err.value)
    assert "'itch'" in text and label.name in text and str(custom) in text
    # Without --relabel no shipped map knows 'itch': the message says to write one.
    with pytest.raises(RelabelError, match="--relabel"):
        import_dataset(src, tmp_path / "ds2")


def test_yolo_split_declared_but_absent_is_a_warning(scalp_mini, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        folder = import_dataset(scalp_mini, tmp_path / "ds")  # data.yaml names test/, which is absent
    assert len(folder) == 6
    assert any("test split" in r.getMessage() for r in caplog.records)


def test_yolo_missing_label_file_is_a_negative_with_warning(scalp_mini, tmp_path, caplog):
    src = _mini_copy(scalp_mini, tmp_path)
    next((src / "valid" / "labels").glob("D_18*.txt")).unlink()
    with caplog.at_level(logging.WARNING):
        folder = import_dataset(src, tmp_path / "ds")
    assert next(s for s in folder if "D_18" in s.image).regions == []
    assert any("no label file" in r.getMessage() for r in caplog.records)


# ----------------------------------------------------------------------------- classification
def test_classification_reader_keeps_native_level_beside_grade(hair_loss_mini, tmp_path):
    assert detect_format(hair_loss_mini) == "roboflow-classification"
    folder = import_dataset(hair_loss_mini, tmp_path / "ds")
    levels = {s.source["class"]: s.hair_loss for s in folder}
    assert levels == {"LEVEL_2": "low", "LEVEL_3": "low", "LEVEL_4": "mid", "LEVEL_5": "mid", "LEVEL_6": "high", "LEVEL_7": "high"}
    assert all(s.view == "head" and s.split == "val" for s in folder)
    # People are numbered per class: the subject is the number within its level.
    assert all(s.meta["subject"] == f"hair-loss-mini:{s.source['class']}:{s.source['group'].split('-')[0]}" for s in folder)
    info = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert info["native_scale"] == [f"LEVEL_{i}" for i in range(2, 8)]


def test_classification_reader_on_the_full_real_export(shared_data, tmp_path):
    folder = import_dataset(shared_data / "hair-loss-levels", tmp_path / "ds")
    train = Counter(s.source["class"] for s in folder.split("train"))
    assert train == {"LEVEL_2": 254, "LEVEL_3": 214, "LEVEL_4": 244, "LEVEL_5": 205, "LEVEL_6": 207, "LEVEL_7": 170}
    # The export's valid split holds new views of people seen in train (its MANIFEST says so):
    # with people keyed per level, every valid subject is also a train subject, no photo is.
    subjects = {split: {s.group for s in folder.split(split)} for split in ("train", "val")}
    assert len(subjects["val"]) == 88 and subjects["val"] <= subjects["train"]
    photos = {split: {(s.source["class"], s.source["group"]) for s in folder.split(split)} for split in ("train", "val")}
    assert not photos["val"] & photos["train"]
    assert len(folder.split("valid")) == 133


def test_classification_bad_csv_is_reported(hair_loss_mini, tmp_path):
    src = tmp_path / "export"
    shutil.copytree(hair_loss_mini, src)
    csv = src / "valid" / "_classes.csv"
    csv.write_text(csv.read_text() + "broken.jpg, 0, x, 0, 0, 0, 0\n")
    with pytest.raises(DatasetError, match=r"_classes.csv:8: class columns"):
        import_dataset(src, tmp_path / "ds")


# ----------------------------------------------------------------------------- COCO
def _coco_from_mini(scalp_mini: Path, tmp_path: Path) -> Path:
    """A Roboflow-style COCO export made from the committed YOLO images and polygons."""
    src = tmp_path / "coco"
    split_dir = src / "valid"
    split_dir.mkdir(parents=True)
    names = roboflow_yolo.read_names(scalp_mini / "data.yaml")
    categories = [{"id": 0, "name": "scalp", "supercategory": "none"}]
    categories += [{"id": i + 1, "name": n, "supercategory": "scalp"} for i, n in enumerate(names)]
    images, annotations = [], []
    for image_id, image in enumerate(sorted((scalp_mini / "valid" / "images").glob("*.jpg"))):
        shutil.copy(image, split_dir / image.name)
        images.append({"id": image_id, "file_name": image.name, "width": 640, "height": 640})
        for row in (scalp_mini / "valid" / "labels" / f"{image.stem}.txt").read_text().split("\n"):
            if not row.strip():
                continue
            ann = roboflow_yolo.parse_label_line(row, names, 640, 640, "x")
            x1, y1, x2, y2 = ann.box
            flat = [v for point in ann.polygon for v in point]
            annotations.append(
                {"id": len(annotations), "image_id": image_id, "category_id": names.index(ann.class_name) + 1,
                 "bbox": [x1, y1, x2 - x1, y2 - y1], "segmentation": [flat], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0}
            )
    (split_dir / "_annotations.coco.json").write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return src


def test_coco_reader_matches_the_yolo_reader(scalp_mini, tmp_path):
    src = _coco_from_mini(scalp_mini, tmp_path)
    assert detect_format(src) == "roboflow-coco"
    coco = {Path(s.image).name: s for s in import_dataset(src, tmp_path / "from-coco")}
    yolo = {Path(s.image).name: s for s in import_dataset(scalp_mini, tmp_path / "from-yolo").split("val")}
    assert coco.keys() == yolo.keys()
    for name, sample in coco.items():
        assert [r.kind for r in sample.regions] == [r.kind for r in yolo[name].regions]
        for a, b in zip(sample.regions, yolo[name].regions):
            assert a.box == pytest.approx(b.box, abs=0.01)
            assert np.allclose(a.polygon, b.polygon, atol=0.01)


def test_coco_bad_json_is_reported(scalp_mini, tmp_path):
    src = _coco_from_mini(scalp_mini, tmp_path)
    (src / "valid" / "_annotations.coco.json").write_text('{"images": [')
    with pytest.raises(DatasetError, match=r"_annotations.coco.json: invalid JSON"):
        import_dataset(src, tmp_path / "ds", fmt="roboflow-coco")


# ----------------------------------------------------------------------------- AI-Hub
def _aihub_tree(root: Path, scalp_mini: Path, labels: list[tuple[str, dict]]) -> Path:
    """Parallel [원천]/[라벨] trees as the AI-Hub download lays them out, images from the fixtures."""
    sources = sorted((scalp_mini / "valid" / "images").glob("*.jpg"))
    for (split_dir, label), image in zip(labels, sources):
        name = label.get("image_file_name") or label.get("label", {}).get("image_file_name") or label.get("image_name")
        image_dir = root / split_dir / "[원천]비듬_2.중등도"
        label_dir = root / split_dir / "[라벨]비듬_2.중등도"
        image_dir.mkdir(parents=True, exist_ok=True)
        label_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(image, image_dir / name)
        (label_dir / f"{Path(name).stem}.json").write_text(json.dumps(label, ensure_ascii=False), encoding="utf-8")
    return root


def test_aihub_reader_accepts_documented_variants(scalp_mini, tmp_path):
    labels = [
        ("Training", {"image_id": "a", "image_file_name": "0013_A2LEBJJDE00060O_1602578303771_6_BH.jpg",
                      "value_1": "0", "value_2": "2", "value_3": "2", "value_4": "0", "value_5": "3", "value_6": "1"}),
        ("Training", {"image_file_name": "0013_A2LEBJJDE00060O_1603942897337_3_TH.jpg",
                      "value_1": 2, "value_2": 0, "value_3": 1, "value_4": 0, "value_5": 1, "value_6": 3, "gender": "F", "age": 34}),
        ("Validation", {"label": {"image_file_name": "0131_A2LEBJJDE00166C_1604282955299_4_LH.jpg",
                                  "value1": "1.0", "value2": "0", "value3": "3", "value4": "0", "value5": "0", "value6": "0"}}),
    ]
    root = _aihub_tree(tmp_path / "aihub", scalp_mini, labels)
    assert detect_format(root) == "aihub"
    folder = import_dataset(root, tmp_path / "ds")
    by_name = {Path(s.image).name: s for s in folder}
    first = by_name["0013_A2LEBJJDE00060O_1602578303771_6_BH.jpg"]
    assert first.indicators == {"microkeratin": 0, "sebum": 2, "erythema_between_follicles": 2,
                                "follicular_erythema_pustule": 0, "dandruff": 3, "hair_loss": 1}
    assert first.hair_loss == "mid" and first.split == "train" and first.view == "closeup"
    assert first.meta["subject"] == "0013_A2LEBJJDE00060O"
    second = by_name["0013_A2LEBJJDE00060O_1603942897337_3_TH.jpg"]
    assert second.hair_loss == "high" and second.meta["gender"] == "F" and second.meta["age"] == 34
    third = by_name["0131_A2LEBJJDE00166C_1604282955299_4_LH.jpg"]
    assert third.split == "val" and third.indicators["microkeratin"] == 1 and third.hair_loss == "low"


@pytest.mark.parametrize(
    "label, message",
    [
        ({"image_file_name": "x.jpg", "value_1": "5", "value_2": 0}, "field value_1 must be a grade 0-3"),
        ({"image_file_name": "x.jpg", "value_3": "mild"}, "field value_3 must be a grade 0-3"),
        ({"value_1": 0, "value_2": 1}, "no image file name field"),
        ({"image_file_name": "x.jpg", "grade": 2}, "no grade fields"),
    ],
)
def test_aihub_rejects_bad_fields_naming_file_and_field(label, message, tmp_path):
    file = tmp_path / "label.json"
    with pytest.raises(DatasetError, match=message) as err:
        aihub.parse_label(label, file)
    assert str(file) in str(err.value)


def test_aihub_bad_json_names_the_file(scalp_mini, tmp_path):
    root = _aihub_tree(tmp_path / "aihub", scalp_mini, [("Training", {"image_file_name": "a_1.jpg", "value_1": 0})])
    bad = root / "Training" / "[라벨]비듬_2.중등도" / "broken.json"
    bad.write_text("{not json")
    with pytest.raises(DatasetError, match="broken.json: invalid JSON"):
        import_dataset(root, tmp_path / "ds", fmt="aihub")


def test_aihub_hair_loss_cut_comes_from_the_map(scalp_mini, tmp_path):
    labels = [("Training", {"image_file_name": "s_1.jpg", **{f"value_{i}": 0 for i in range(1, 6)}, "value_6": 2})]
    root = _aihub_tree(tmp_path / "aihub", scalp_mini, labels)
    custom = tmp_path / "cut.yaml"
    custom.write_text("name: strict\nview: closeup\nhair_loss_grades: {0: low, 1: low, 2: mid, 3: high}\n")
    assert import_dataset(root, tmp_path / "a").samples[0].hair_loss == "high"
    assert import_dataset(root, tmp_path / "b", relabel=custom).samples[0].hair_loss == "mid"


# ----------------------------------------------------------------------------- folders
def test_class_folders_map_through_the_relabel_map(scalp_mini, tmp_path):
    images = sorted((scalp_mini / "valid" / "images").glob("*.jpg"))
    for split, cls, image in [("train", "Psoriasis", images[0]), ("train", "Alopecia Areata", images[1]), ("valid", "Healthy", images[2])]:
        (tmp_path / "src" / split / cls).mkdir(parents=True, exist_ok=True)
        shutil.copy(image, tmp_path / "src" / split / cls / image.name)
    folder = import_dataset(tmp_path / "src", tmp_path / "ds", relabel=Path("datasets/relabel/scalp-conditions-folders.yaml"))
    assert detect_format(tmp_path / "src") == "folders"
    by_class = {s.source["class"]: s for s in folder}
    assert by_class["Psoriasis"].indicators["erythema_between_follicles"] == 2
    assert by_class["Alopecia Areata"].hair_loss == "high" and by_class["Alopecia Areata"].view == "head"
    assert by_class["Healthy"].split == "val" and by_class["Healthy"].indicators["dandruff"] == 0


def test_relabel_map_rejects_unknown_kind(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("classes:\n  x: {kinds: [scurf]}\n")
    with pytest.raises(RelabelError, match="unknown indicator 'scurf'"):
        RelabelMap.load(bad)


# ----------------------------------------------------------------------------- split
def _grouped_samples(n_groups: int = 60) -> list[Sample]:
    rng = np.random.default_rng(3)
    samples = []
    for group in range(n_groups):
        kind = ["dandruff", "sebum", "erythema_between_follicles"][group % 3]
        rare = group % 10 == 0
        for copy in range(int(rng.integers(1, 4))):
            regions = [Region(box=(0, 0, 10, 10), kind=kind)]
            if rare:
                regions.append(Region(box=(0, 0, 5, 5), kind="follicular_erythema_pustule"))
            samples.append(Sample(image=f"g{group}_{copy}.jpg", regions=regions, source={"group": f"g{group}"}))
    return samples


def test_split_is_deterministic_grouped_and_stratified():
    first, second = _grouped_samples(), _grouped_samples()
    stratified_split(first, seed=7)
    stratified_split(second, seed=7)
    assert [s.split for s in first] == [s.split for s in second]
    splits_of_group: dict[str, set] = {}
    for s in first:
        splits_of_group.setdefault(s.group, set()).add(s.split)
    assert all(len(v) == 1 for v in splits_of_group.values())
    report = split_report(first)
    n = len(first)
    assert abs(report.sizes["train"] / n - 0.7) < 0.08
    # The rare label (6 groups) reaches every split instead of piling into train.
    assert all(report.counts[s]["kind:follicular_erythema_pustule"] > 0 for s in ("train", "val", "test"))
    other = _grouped_samples()
    stratified_split(other, seed=8)
    assert [s.split for s in other] != [s.split for s in first]


def test_split_cli_keeps_subjects_apart_on_real_data(hair_loss_mini, tmp_path, capsys):
    import_dataset(hair_loss_mini, tmp_path / "ds")
    assert pipeline.main(["data", "split", str(tmp_path / "ds"), "--ratios", "0.5", "0.25", "0.25"]) == 0
    out = capsys.readouterr().out
    assert "hair_loss_grade:low" in out and "groups" in out
    folder = DatasetFolder.load(tmp_path / "ds")
    assert all(s.split in ("train", "val", "test") for s in folder)


# ----------------------------------------------------------------------------- check
def test_check_reports_each_kind_of_problem(scalp_mini, tmp_path, capsys):
    folder = import_dataset(scalp_mini, tmp_path / "ds")
    samples = folder.samples
    (folder.root / samples[0].image).write_bytes(b"")  # zero bytes
    data = (folder.root / samples[1].image).read_bytes()
    (folder.root / samples[1].image).write_bytes(data[: len(data) // 3])  # truncated JPEG
    (folder.root / samples[2].image).unlink()  # label without image
    samples[3].regions.append(Region(box=(600, 600, 700, 700), kind="sebum"))  # out of bounds
    samples[3].regions.append(Region(box=(10, 10, 10.5, 40), kind="sebum"))  # degenerate
    shutil.copy(folder.root / samples[4].image, folder.root / "images" / "stray.jpg")  # no record
    samples[5].split = "train" if samples[5].split != "train" else "val"
    dup = Sample.from_dict(samples[5].to_dict())
    dup.split = "test"
    samples.append(dup)  # the same picture in two splits
    folder.save()
    report = check_dataset(DatasetFolder.load(folder.root))
    reasons = {p.reason.split(":")[0] for p in report.errors}
    assert {"empty image file", "unreadable image", "image missing", "box out of bounds", "degenerate box",
            "duplicate image across splits"} <= reasons
    assert any(p.reason.startswith("image without a record") for p in report.warnings)
    assert pipeline.main(["data", "check", str(folder.root)]) == 1
    assert "errors" in capsys.readouterr().out


def test_check_passes_a_clean_import(scalp_mini, tmp_path):
    folder = import_dataset(scalp_mini, tmp_path / "ds")
    report = check_dataset(folder)
    assert report.errors == []
    assert pipeline.main(["data", "check", str(tmp_path / "ds")]) == 0


# ----------------------------------------------------------------------------- pull and CLI
def test_pull_without_key_says_so_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ROBOFLOW_API_KEY", raising=False)
    assert pipeline.main(["data", "pull", "--workspace", "w", "--project", "p", "--version", "1", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ROBOFLOW_API_KEY is not set") and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_pull_without_network_says_so_and_writes_nothing(tmp_path, monkeypatch, capsys):
    import socket

    def refuse(*args, **kwargs):
        raise OSError(101, "Network is unreachable")

    monkeypatch.setenv("ROBOFLOW_API_KEY", "dummy-key")
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert pipeline.main(["data", "pull", "--workspace", "w", "--project", "p", "--version", "1", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert "cannot reach api.roboflow.com" in err and "network" in err and "\n" not in err
    assert not (tmp_path / "o").exists()


def test_import_cli_detects_format_and_refuses_to_overwrite(scalp_mini, tmp_path, capsys):
    out = tmp_path / "ds"
    assert pipeline.main(["data", "import", str(scalp_mini), "--out", str(out)]) == 0
    assert "imported 6 images" in capsys.readouterr().out
    assert pipeline.main(["data", "import", str(scalp_mini), "--out", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert pipeline.main(["data", "import", str(scalp_mini), "--out", str(out), "--format", "roboflow-yolo", "--force"]) == 0


def test_missing_weights_folder_is_one_clean_sentence(tmp_path, capsys):
    code = pipeline.main(["export", "onnx", "--weights", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1 and "nowhere" in err and "not found" in err and "Traceback" not in err


def test_image_header_reader_handles_exif_rotation(tmp_path):
    from datasets.readers import image_size

    img = Image.new("RGB", (80, 40))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90°: displayed as 40x80
    img.save(tmp_path / "r.jpg", exif=exif)
    assert image_size(tmp_path / "r.jpg") == (40, 80)
