"""detection/: YOLO layout export, training from the yaml, validation, prediction, offline use."""
from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import yaml

from core.weights import WeightsError
from datasets.exporters import export_yolo, region_labels
from datasets.folder import DatasetFolder
from datasets.importer import import_dataset
from datasets.split import stratified_split
from datasets.synth import generate


class NetworkAttempt(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch):
    """Every DNS lookup or socket connect fails loudly and is recorded."""
    attempts: list[str] = []

    def refuse(what):
        def blocked(*args, **kwargs):
            attempts.append(f"{what} {args[1:2] if what == 'connect' else args[:1]}")
            raise NetworkAttempt(f"network attempt: {what}")

        return blocked

    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    return attempts


@pytest.fixture(scope="session")
def synth_folder(tmp_path_factory) -> DatasetFolder:
    folder = generate(24, tmp_path_factory.mktemp("synth") / "ds", seed=3, progress=False)
    stratified_split(folder.samples, (0.6, 0.4, 0.0), seed=0)
    folder.save()
    return folder


@pytest.fixture(scope="session")
def trained(synth_folder, tmp_path_factory) -> Path:
    """Two epochs on 24 synthetic close-ups at 160 px with the default (pretrained MobileNetV2)
    model: enough to exercise every code path."""
    import socket as sock

    from detection.train import train_detector

    out = tmp_path_factory.mktemp("det")
    original = (sock.socket.connect, sock.getaddrinfo, sock.create_connection)
    attempts = []

    def blocked(*args, **kwargs):
        attempts.append(args[:2])
        raise OSError("network blocked in tests")

    sock.socket.connect, sock.getaddrinfo, sock.create_connection = blocked, blocked, blocked
    try:
        train_detector(synth_folder, out, epochs=2, imgsz=160, batch=8, workers=0, cache=False)
    finally:
        sock.socket.connect, sock.getaddrinfo, sock.create_connection = original
    assert attempts == [], f"training tried the network: {attempts}"
    return out


def test_yolo_export_writes_boxes_from_polygons(scalp_mini, tmp_path):
    folder = import_dataset(scalp_mini, tmp_path / "ds")
    data_yaml = export_yolo(folder, tmp_path / "yolo")
    data = yaml.safe_load(data_yaml.read_text())
    assert list(data["names"].values()) == ["sebum", "erythema_between_follicles", "dandruff"]
    assert region_labels(folder.samples) == list(data["names"].values())
    labels = sorted((tmp_path / "yolo" / "labels" / "val").glob("*.txt"))
    assert len(labels) == 4 and sum(1 for f in labels if f.read_text() == "") == 1  # the negative stays a negative
    rich = next(f for f in labels if f.name.startswith("valid__images___1578382520860"))
    rows = [list(map(float, line.split())) for line in rich.read_text().splitlines()]
    assert len(rows) == 6 and all(0 < v <= 1 for row in rows for v in row[1:])  # 5 polygons, ds doubled


def test_yolo_export_needs_train_and_val(synth_folder, tmp_path):
    from datasets.folder import DatasetError

    folder = DatasetFolder(root=synth_folder.root, samples=[s for s in synth_folder.samples if s.split == "train"])
    with pytest.raises(DatasetError, match="data split"):
        export_yolo(folder, tmp_path / "yolo")


def test_training_writes_weights_config_and_finite_scores(trained, synth_folder):
    import json

    config = json.loads((trained / "detector.json").read_text())
    assert config["stage"] == "detector" and config["classes"] == region_labels(synth_folder.samples)
    assert config["imgsz"] == 160 and len(config["sha256"]) == 64
    assert config["training"]["epochs_run"] == config["training"]["epochs"]  # no early stop in so few epochs
    scores = config["scores"]
    assert 0.0 <= scores["map50"] <= 1.0 and 0.0 <= scores["map50_95"] <= scores["map50"] + 1e-9
    assert set(scores["per_class"]) <= set(config["classes"])
    assert (trained / "val" / "confusion_matrix.png").is_file()  # plots made with no font download


def test_predict_returns_boxes_in_original_coordinates(trained, synth_folder, no_network):
    from detection import Detector

    detector = Detector.load(trained / "detector.pt")
    rgb = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(synth_folder.image_path(synth_folder.samples[0])).convert("RGB"))
    wide = np.concatenate([rgb, rgb], axis=1)  # 1280 x 480: letterbox and scale-back must hold
    results = detector.predict([rgb, wide, np.zeros((200, 300, 3), np.uint8)], conf=0.001)
    assert len(results) == 3
    for image, found in zip((rgb, wide), results):
        assert found.boxes.shape == (len(found), 4) and found.boxes.dtype == np.float32
        if len(found):
            assert (found.boxes[:, 2] > found.boxes[:, 0]).all() and (found.boxes[:, 3] > found.boxes[:, 1]).all()
            assert found.boxes[:, [0, 2]].max() <= image.shape[1] + 1 and found.boxes[:, [1, 3]].max() <= image.shape[0] + 1
            assert set(found.labels) <= set(detector.classes) and ((found.scores > 0) & (found.scores <= 1)).all()
    assert no_network == []


def test_validate_returns_map_and_table(trained, synth_folder, no_network):
    from detection import Detector
    from detection.model import table

    detector = Detector.load(trained / "detector.pt")
    summary = detector.validate(trained / "yolo-data" / "data.yaml", split="val", plots=False)
    assert np.isfinite(summary["map50"]) and np.isfinite(summary["map50_95"])
    assert "all" in table(summary) and no_network == []


def test_changed_weights_are_refused(trained, tmp_path):
    from detection import Detector

    copy = tmp_path / "detector.pt"
    copy.write_bytes((trained / "detector.pt").read_bytes() + b"tampered")
    (tmp_path / "detector.json").write_text((trained / "detector.json").read_text())
    with pytest.raises(WeightsError, match="sha256"):
        Detector.load(copy)


def test_init_checkpoint_must_match_its_sha256(trained):
    from core.io import sha256_file
    from detection.train import verify_checkpoint

    checkpoint = trained / "detector.pt"
    assert verify_checkpoint(checkpoint, sha256_file(checkpoint).upper()) == sha256_file(checkpoint)
    with pytest.raises(WeightsError, match="does not match"):
        verify_checkpoint(checkpoint, "0" * 64)
    with pytest.raises(WeightsError, match="--init-sha256"):
        verify_checkpoint(checkpoint, None)
    with pytest.raises(WeightsError, match="not found"):
        verify_checkpoint(trained / "missing.pt", "0" * 64)


def test_gpu_amp_self_test_never_downloads(no_network, monkeypatch, tmp_path):
    """On a GPU, ultralytics' AMP self-test would download yolo26n.pt; without that file it is
    skipped (AMP on); on a CPU its own check still runs (and turns AMP off)."""
    import torch
    import ultralytics.utils
    from ultralytics.engine import trainer

    from detection.offline import skip_amp_download

    monkeypatch.setattr(trainer, "check_amp", trainer.check_amp)  # undone after the test
    monkeypatch.setattr(ultralytics.utils, "WEIGHTS_DIR", tmp_path)  # holds no yolo26n.pt
    skip_amp_download()
    skip_amp_download()  # twice wraps once
    assert trainer.check_amp.__wrapped__ is not trainer.check_amp
    assert trainer.check_amp(torch.nn.Linear(2, 2, device="meta")) is True  # stands in for a GPU model
    assert trainer.check_amp(torch.nn.Linear(2, 2)) is False


# ------------------------------------------------------------------ pretrained MobileNetV2 backbone
def test_pretrained_backbone_matches_imagenet_mobilenet_on_raw_pixels():
    """After loading, layer 0 on 0-1 pixels equals torchvision's MobileNetV2 on ImageNet-normalized
    pixels: the weights went in strictly and the normalization is exact (no border error)."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    import detection.offline  # noqa: F401
    from core.backbones import IMAGENET_MEAN, IMAGENET_STD, create_backbone
    from detection.backbones import load_pretrained_backbone, resolve_model

    path, backbone = resolve_model("mobilenet_v2-yolo.yaml")
    assert backbone == "mobilenet_v2" and Path(path).is_file()
    assert resolve_model("yolo11n.yaml") == ("yolo11n.yaml", None)  # ultralytics' own yamls train from scratch
    model = DetectionModel(path, nc=3, verbose=False).eval()
    load_pretrained_backbone(model, backbone)
    reference = create_backbone("mobilenet_v2").eval()
    x = torch.rand(2, 3, 96, 128)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        ours = model.model[0](x)[18]  # [x, f0..f17]: the P5 map
        theirs = reference[:18]((x - mean) / std)
    assert torch.allclose(ours, theirs, atol=1e-4), float((ours - theirs).abs().max())
    # and the features are not collapsed to a constant (sanity, not exactness)
    assert float(theirs.std()) > 0.1
    with pytest.raises(RuntimeError, match="already"):
        load_pretrained_backbone(model, backbone)


def test_pretrained_backbone_normalization_follows_the_model_device_and_dtype():
    """ultralytics moves the model to the GPU before the weights go in; the normalization layer
    added then must land beside them (it was left on the CPU once, and a GPU run failed at its
    first batch). Checked here through the dtype, which a CPU-only machine can change."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    import detection.offline  # noqa: F401
    from detection.backbones import load_pretrained_backbone, resolve_model

    path, backbone = resolve_model("mobilenet_v2-yolo.yaml")
    model = DetectionModel(path, nc=3, verbose=False).eval().to(torch.float64)
    load_pretrained_backbone(model, backbone)
    assert {p.dtype for p in model.parameters()} == {torch.float64}
    with torch.no_grad():
        model(torch.rand(1, 3, 64, 64, dtype=torch.float64))  # a float32 layer would raise here


def test_default_training_keeps_the_pretrained_backbone_frozen_and_saves_a_plain_checkpoint(trained, no_network):
    """The ``trained`` fixture used the default model, the MobileNetV2 one."""
    import json

    import torch

    from core.backbones import create_backbone
    from detection.model import Detector

    config = json.loads((trained / "detector.json").read_text())
    assert config["backbone"]["name"] == "mobilenet_v2" and config["backbone"]["frozen"]
    detector = Detector.load(trained / "detector.pt")  # plain YOLO(path): no code from detection.backbones
    saved = detector.model.model.model[0].m
    imagenet = create_backbone("mobilenet_v2")
    # frozen: still the ImageNet weights, up to the half precision ultralytics saves in
    assert torch.equal(saved[5].conv[0][0].weight.float(), imagenet[5].conv[0][0].weight.half().float())
    # and so are the BatchNorm statistics (training mode would have moved them)
    norms = [m for m in saved.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    reference = [m for m in imagenet[: len(saved)].modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == len(reference) > 40
    for ours, theirs in zip(norms, reference):
        assert torch.equal(ours.running_mean.float(), theirs.running_mean.half().float())
        assert torch.equal(ours.running_var.float(), theirs.running_var.half().float())
    rgb = np.full((90, 120, 3), 128, np.uint8)
    assert len(detector.predict([rgb])) == 1
    assert no_network == []
