"""core/: image loading, atomic writes, the pretrained backbone registry, weight configs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.backbones import BackboneError, backbone_names, create_backbone, load_smp_encoder, positional_state_dict
from core.images import ImageError, decode_image, letterbox, load_image
from core.io import atomic_write_json
from core.weights import WeightsError, load_safetensors, read_config, save_safetensors

BUS = Path(__import__("ultralytics").__file__).parent / "assets" / "bus.jpg"
IMAGENET_MINIBUS = 654


def _imagenet_input(path: Path, mean, std, size: int = 224) -> torch.Tensor:
    rgb = np.asarray(Image.open(path).convert("RGB").resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32) / 255
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    return (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]


# ----------------------------------------------------------------------------- backbones
def test_efficientnet_lite0_loads_strictly_and_recognises_a_bus():
    model = create_backbone("efficientnet_lite0").eval()
    cfg = model.pretrained_cfg
    with torch.no_grad():
        probs = model(_imagenet_input(BUS, cfg["mean"], cfg["std"])).softmax(-1)[0]
    assert int(probs.argmax()) == IMAGENET_MINIBUS and probs.max() > 0.5
    # Without the weights the same network does not know a minibus. (Its largest class
    # probability is no test: an unseeded random head put 0.105 on some class in CI once.)
    torch.manual_seed(0)
    random = create_backbone("efficientnet_lite0", pretrained=False).eval()
    with torch.no_grad():
        random_probs = random(_imagenet_input(BUS, cfg["mean"], cfg["std"])).softmax(-1)[0]
    assert random_probs[IMAGENET_MINIBUS] < 0.05 and int(random_probs.argmax()) != IMAGENET_MINIBUS


def _features(model, x):
    with torch.no_grad():
        out = model(x)
    out = out[-1] if isinstance(out, (list, tuple)) else out
    return torch.nn.functional.adaptive_avg_pool2d(out, 1).flatten()


def test_pretrained_features_separate_different_images_better_than_random(scalp_mini):
    """ImageNet features tell a bus from a scalp close-up far more than they tell two scalps apart."""
    scalps = sorted((scalp_mini / "valid" / "images").glob("*.jpg"))[:2]
    for name in ("efficientnet_lite0", "mobilenet_v2"):
        kwargs = {"features_only": True} if name.startswith("efficientnet") else {}
        scores = {}
        for pretrained in (True, False):
            torch.manual_seed(0)
            model = create_backbone(name, pretrained=pretrained, **kwargs).eval()
            mean, std = ((0.5,) * 3, (0.5,) * 3) if name.startswith("efficientnet") else ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
            a, b, bus = (_features(model, _imagenet_input(p, mean, std)) for p in (*scalps, BUS))
            cos = torch.nn.functional.cosine_similarity
            scores[pretrained] = float(cos(a, b, dim=0) - cos(a, bus, dim=0))
        assert scores[True] > 0.1, name
        assert scores[True] > scores[False] + 0.05, name


def test_smp_encoder_loads_every_key():
    import segmentation_models_pytorch as smp

    unet = smp.Unet("timm-tf_efficientnet_lite0", encoder_weights=None, in_channels=3, classes=1)
    before = {k: v.clone() for k, v in unet.encoder.state_dict().items()}
    load_smp_encoder(unet.encoder, "efficientnet_lite0")
    after = unet.encoder.state_dict()
    changed = sum(not torch.equal(before[k], after[k]) for k in before if after[k].dtype.is_floating_point)
    assert changed > 0.9 * sum(v.dtype.is_floating_point for v in after.values())


def test_positional_load_refuses_shape_mismatch():
    source = {"a": torch.zeros(3), "b": torch.zeros(2, 2)}
    with pytest.raises(BackboneError, match="does not fit"):
        positional_state_dict(source, {"x": torch.zeros(3), "y": torch.zeros(3, 3)}, "test")
    with pytest.raises(BackboneError, match="unknown backbone"):
        create_backbone("resnet9000")
    assert {"efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "mobilenet_v2"} <= set(backbone_names())


# ----------------------------------------------------------------------------- images
def _save(tmp_path: Path, name: str, image: Image.Image, **kwargs) -> Path:
    path = tmp_path / name
    image.save(path, **kwargs)
    return path


def test_load_image_handles_the_formats_people_have(tmp_path):
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8))
    assert load_image(_save(tmp_path, "a.png", rgb)).rgb.shape == (60, 80, 3)
    gray = load_image(_save(tmp_path, "g.png", rgb.convert("L"))).rgb
    assert gray.shape == (60, 80, 3) and np.array_equal(gray[..., 0], gray[..., 2])
    rgba = rgb.convert("RGBA")
    rgba.putalpha(0)
    assert load_image(_save(tmp_path, "t.png", rgba)).rgb.max() == 0  # transparent → black, not garbage
    sixteen = Image.fromarray((np.arange(60 * 80).reshape(60, 80) * 13).astype(np.uint16))
    loaded = load_image(_save(tmp_path, "d.png", sixteen)).rgb
    assert loaded.dtype == np.uint8 and loaded.max() == 255 and loaded.min() == 0
    exif = rgb.getexif()
    exif[0x0112] = 6
    rotated = load_image(_save(tmp_path, "r.jpg", rgb, exif=exif))
    assert rotated.rgb.shape == (80, 60, 3) and rotated.original_size == (60, 80)


def test_load_image_downscales_huge_photos_and_keeps_original_size(tmp_path):
    big = Image.new("RGB", (12000, 9000), (120, 80, 60))
    loaded = load_image(_save(tmp_path, "big.jpg", big, quality=50), max_side=2048)
    assert max(loaded.rgb.shape[:2]) <= 2048 and loaded.original_size == (12000, 9000)
    assert loaded.scale == pytest.approx(12000 / loaded.rgb.shape[1])


@pytest.mark.parametrize(
    "content, reason",
    [(b"", "empty file"), (b"hello, I am text", "not an image"), ("truncated", "truncated or corrupt"), ("tiny", "too small")],
)
def test_load_image_gives_one_sentence_reasons(tmp_path, content, reason):
    path = tmp_path / "x.jpg"
    if content == "truncated":
        good = tmp_path / "good.jpg"
        Image.fromarray(np.random.default_rng(1).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(good)
        path.write_bytes(good.read_bytes()[:2000])
    elif content == "tiny":
        Image.new("RGB", (1, 1)).save(path)
    else:
        path.write_bytes(content)
    with pytest.raises(ImageError, match=reason) as err:
        load_image(path)
    assert str(path) in str(err.value)
    if isinstance(content, bytes):
        with pytest.raises(ImageError, match=reason):
            decode_image(content)


def test_letterbox_keeps_aspect_and_reports_padding():
    image = np.full((100, 200, 3), 255, np.uint8)
    boxed, scale, (left, top) = letterbox(image, 64)
    assert boxed.shape == (64, 64, 3) and scale == pytest.approx(0.32)
    assert (left, top) == (0, 16) and boxed[0].max() == 0 and boxed[32].min() == 255


# ----------------------------------------------------------------------------- weights and io
def test_weights_config_catches_a_changed_file(tmp_path):
    path = tmp_path / "segmenter.safetensors"
    config = save_safetensors({"w": torch.arange(4.0)}, path, {"stage": "segmenter", "mean": [0.5] * 3})
    state, loaded = load_safetensors(path)
    assert torch.equal(state["w"], torch.arange(4.0)) and loaded["sha256"] == config["sha256"]
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    with pytest.raises(WeightsError, match="does not match its config"):
        read_config(path)
    with pytest.raises(WeightsError, match="not found"):
        read_config(tmp_path / "nothing.safetensors")


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    atomic_write_json(tmp_path / "a" / "x.json", {"k": 1})
    assert json.loads((tmp_path / "a" / "x.json").read_text()) == {"k": 1}
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["x.json"]


def test_atomic_write_gives_files_the_usual_permissions(tmp_path):
    """Outputs are shared (reports, overlays): they get the mode open() gives, not mkstemp's 0600."""
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic_write_json(tmp_path / "atomic.json", {"k": 1})
    assert (tmp_path / "atomic.json").stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


# ----------------------------------------------------------------------------- the Analysis record
def _analysis(is_scalp: bool = True):
    from core.analysis import Analysis, GradeResult, RegionResult, mask_to_rle
    from core.taxonomy import INDICATORS

    mask = np.zeros((48, 64), bool)
    mask[10:20, 30:50] = True
    return Analysis(
        image="samples/a.jpg", size=(64, 48), is_scalp=is_scalp, scalp_score=0.9 if is_scalp else 0.1,
        view="closeup", view_confidence=0.98,
        hair_loss=GradeResult("mid", {"low": 0.2, "mid": 0.7, "high": 0.1}),
        indicators={n: GradeResult(i % 4, [0.1, 0.2, 0.3, 0.4]) for i, n in enumerate(INDICATORS)},
        regions=[RegionResult([30, 10, 50, 20], "dandruff", None, 0.8, int(mask.sum()), mask_to_rle(mask))],
    )


@pytest.mark.parametrize("shape, density", [((5, 7), 0.3), ((1, 1), 1.0), ((64, 48), 0.0), ((64, 48), 1.0), ((33, 17), 0.5)])
def test_mask_rle_round_trips(shape, density):
    from core.analysis import mask_to_rle, rle_to_mask

    mask = np.random.default_rng(0).random(shape) < density
    assert np.array_equal(rle_to_mask(mask_to_rle(mask)), mask)


def test_mask_rle_is_coco_ordered():
    from core.analysis import mask_to_rle

    mask = np.zeros((4, 4), bool)
    mask[1:3, 1:3] = True
    assert mask_to_rle(mask) == {"size": [4, 4], "counts": "5 2 2 2 5"}  # column-major, background first


def test_analysis_round_trips_and_summarizes():
    from core.analysis import Analysis

    analysis = _analysis()
    again = Analysis.from_json(analysis.to_json())
    assert again == analysis
    data = json.loads(analysis.to_json())
    assert data["disclaimer"].startswith("Screening aid") and data["schema_version"] == 1
    assert analysis.affected_fraction == pytest.approx(200 / (64 * 48))
    line = analysis.summary()
    assert "hair loss MID (0.70)" in line and "dandruff" not in line.split("|")[2]  # dandruff graded 0 here
    assert "not a scalp photo" in _analysis(is_scalp=False).summary()


def test_overlay_tints_the_mask_and_adds_a_legend():
    analysis = _analysis()
    rgb = np.full((48, 64, 3), 128, np.uint8)
    overlay = analysis.plot(rgb)
    assert overlay.shape[0] == 48 and overlay.shape[1] > 64  # legend panel to the right
    inside, outside = overlay[15, 40].astype(int), overlay[40, 5].astype(int)
    assert np.abs(inside - 128).sum() > 30 and np.abs(outside - 128).sum() == 0
    declined = _analysis(is_scalp=False).plot(rgb, legend=False)
    assert declined.shape == rgb.shape and declined.mean() < 128  # shaded, with the refusal text


def test_overlay_draws_the_hair_record_and_the_summary_names_it():
    from core.analysis import Analysis
    from core.overlay import HAIR_COLOR, THIN_COLOR

    analysis = _analysis()
    analysis.hair = {"count": 2, "density_per_cm2": 150.0, "thickness_um": {"median": 50.0, "p10": 25.0, "p90": 70.0},
                     "thin_ratio": 0.5, "units": "um", "um_per_px": 10.0,
                     "shafts": [{"paths": [[[2.0, 40.0], [60.0, 40.0]]], "width": 70.0, "thin": False},
                                {"paths": [[[5.0, 5.0], [5.0, 30.0]]], "width": 25.0, "thin": True}]}
    assert Analysis.from_json(analysis.to_json()) == analysis
    assert "2 hairs, median 50 um, thin 50%, 150/cm2" in analysis.summary()
    rgb = np.full((96, 128, 3), 128, np.uint8)  # drawn on a picture twice the analysed size
    overlay = analysis.plot(rgb, legend=False)
    assert (overlay[80, 20:100] == HAIR_COLOR).all(axis=1).sum() >= 60
    assert (overlay[20:50, 10] == THIN_COLOR).all(axis=1).sum() >= 20
    assert (overlay[60, 60] == 128).all()  # nothing drawn between the hairs


def test_hair_records_of_other_versions_still_draw():
    # A tracking database keeps analyses for years: a hair record without the thickness fields
    # (written before they existed) must still summarize and draw, not raise KeyError.
    analysis = _analysis()
    analysis.hair = {"count": 118, "mean_width_px": 7.5}
    assert "118 hairs" in analysis.summary() and "median" not in analysis.summary()
    overlay = analysis.plot(np.full((48, 64, 3), 128, np.uint8))
    assert overlay.ndim == 3 and overlay.shape[2] == 3
    from batch.report import hair_cells

    cells = hair_cells(analysis.hair)  # the summary.csv of a folder analysed by two versions
    assert cells["hair_count"] == 118 and cells["hair_thickness_median"] == "" and cells["hair_thickness_units"] == ""
