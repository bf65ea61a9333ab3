"""segmentation/ (the box-prompted U-Net refiner) and evaluation/masks.py (Dice, IoU)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core.backbones import get_spec
from core.weights import WeightsError, read_config, write_config
from datasets.folder import DatasetFolder
from datasets.records import Region, Sample
from evaluation.masks import RegionScore, dice_iou, dice_score, iou_score, summarize
from segmentation.crops import CropGeometry, crop_mask, crop_window, paste_back
from segmentation.losses import box_projection_loss, dice_bce_loss
from segmentation.model import MaskRefiner
from segmentation.weak import picture_box_mask, threshold_mask, weak_mask

SMALL = 64  # crop side for fast tests (a multiple of the encoder's stride 32)


@pytest.fixture(autouse=True)
def _few_threads():
    # The suite shares a small CPU; more threads only add contention at these sizes.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pretrained_refiner() -> MaskRefiner:
    return MaskRefiner(crop_size=SMALL).eval()


# ----------------------------------------------------------------------------- synthetic pictures
def _skin(rng: np.random.Generator, height: int, width: int, hairs: int = 4) -> np.ndarray:
    """Skin-coloured noise crossed by a few dark hair shafts."""
    rgb = np.clip(rng.normal((196, 160, 140), 6, (height, width, 3)), 0, 255).astype(np.uint8)
    for _ in range(hairs):
        p1 = tuple(int(v) for v in rng.integers(0, (width, height)))
        p2 = tuple(int(v) for v in rng.integers(0, (width, height)))
        cv2.line(rgb, p1, p2, (40, 30, 25), 2, cv2.LINE_AA)
    return rgb


def _blob(shape: tuple[int, int], centre: tuple[int, int], axes: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.ellipse(mask, centre, axes, 20, 0, 360, 1, -1)
    return mask.astype(bool)


def _tiny_dataset(root: Path, n: int = 6, size: int = 96, seed: int = 0, outlined=(True, False)) -> DatasetFolder:
    """Close-ups with two white flakes each; ``outlined`` says which get a polygon (else a box only)."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    samples = []
    for index in range(n):
        rgb = _skin(rng, size, size)
        regions = []
        for number in range(2):
            centre = (int(rng.integers(25, size - 25)), int(rng.integers(25, size - 25)))
            axes = (int(rng.integers(8, 16)), int(rng.integers(6, 12)))
            blob = _blob(rgb.shape[:2], centre, axes)
            rgb[blob] = (245, 245, 235)
            contours, _ = cv2.findContours(blob.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            ys, xs = np.nonzero(blob)
            box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
            polygon = [(float(x), float(y)) for x, y in contours[0][:, 0]] if outlined[number] else None
            regions.append(Region(box=box, kind="dandruff", polygon=polygon))
        name = f"images/flakes_{index:02d}.png"
        cv2.imwrite(str(root / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        split = "val" if index >= n - 2 else "train"
        samples.append(Sample(image=name, width=size, height=size, regions=regions, split=split,
                              meta={"view": "closeup", "subject": f"s{index}"}))
    folder = DatasetFolder(root=root, samples=samples, name="tiny-flakes")
    folder.save()
    return folder


# ----------------------------------------------------------------------------- metrics
def test_dice_and_iou_match_hand_computed_values():
    pred = np.zeros((4, 5), bool)
    pred[0:2, 0:3] = True  # 6 pixels
    truth = np.zeros((4, 5), bool)
    truth[1:3, 1:4] = True  # 6 pixels, 2 shared (row 1, columns 1-2)
    assert dice_score(pred, truth) == pytest.approx(2 * 2 / 12)
    assert iou_score(pred, truth) == pytest.approx(2 / 10)
    assert dice_iou(pred, truth) == pytest.approx((1 / 3, 1 / 5))
    assert dice_iou(truth, truth) == (1.0, 1.0)
    empty = np.zeros_like(pred)
    assert dice_iou(empty, empty) == (1.0, 1.0)  # both empty: agreement
    assert dice_iou(pred, empty) == (0.0, 0.0)
    with pytest.raises(ValueError, match="shapes differ"):
        dice_score(pred, truth[:3])


def test_summarize_averages_over_regions_and_per_group():
    scores = [RegionScore("dandruff", 1.0, 1.0), RegionScore("dandruff", 0.5, 0.25), RegionScore("sebum", 0.0, 0.0)]
    summary = summarize(scores)
    assert summary["n"] == 3
    assert summary["dice"] == pytest.approx(0.5) and summary["iou"] == pytest.approx(1.25 / 3)
    assert summary["per_group"]["dandruff"] == {"dice": 0.75, "iou": 0.625, "n": 2}
    assert summarize([])["dice"] is None


# ----------------------------------------------------------------------------- encoder
def test_encoder_is_the_pretrained_one_strictly_and_the_prior_starts_at_zero(pretrained_refiner):
    """Every encoder tensor equals the wheel's (positionally renamed); only the prior's filters are new."""
    import timm

    spec = get_spec("efficientnet_lite0")
    full = timm.create_model(spec.timm_name, pretrained=False)
    wheel = spec.state_dict(full)
    encoder = pretrained_refiner.encoder.state_dict()
    assert set(encoder) <= set(wheel)
    stem = next(k for k in encoder if encoder[k].ndim == 4)
    for key, tensor in encoder.items():
        if key == stem:
            assert tensor.shape[1] == 4
            assert torch.equal(tensor[:, :3], wheel[key])  # RGB filters untouched
            assert torch.count_nonzero(tensor[:, 3]) == 0  # prior filters start at zero
        else:
            assert torch.equal(tensor, wheel[key]), key


def test_pretrained_features_separate_different_pictures_better_than_random(scalp_mini, pretrained_refiner):
    scalp = cv2.cvtColor(cv2.imread(str(min((scalp_mini / "valid" / "images").glob("*.jpg")))), cv2.COLOR_BGR2RGB)
    scalp = cv2.resize(scalp, (128, 128), interpolation=cv2.INTER_AREA)
    x = np.arange(128) / 128.0
    stripes = np.repeat((np.sin(x * 40)[None, :, None] * 0.5 + 0.5) * np.ones((128, 1, 3)), 1, axis=0)

    def features(refiner: MaskRefiner, rgb01: np.ndarray) -> torch.Tensor:
        planes = np.concatenate([rgb01.transpose(2, 0, 1), np.zeros((1, 128, 128))]).astype(np.float32)
        with torch.no_grad():
            deepest = refiner.encoder((torch.from_numpy(planes)[None] - refiner.input_mean) / refiner.input_std)[-1]
        return deepest.mean(dim=(0, 2, 3))

    torch.manual_seed(0)
    random = MaskRefiner(crop_size=SMALL, pretrained=False).eval()
    similarity = {}
    for name, refiner in (("pretrained", pretrained_refiner), ("random", random)):
        a, b = features(refiner, scalp / 255.0), features(refiner, stripes)
        similarity[name] = float(torch.nn.functional.cosine_similarity(a, b, dim=0))
    assert similarity["pretrained"] < 0.5, similarity
    assert similarity["pretrained"] < similarity["random"] - 0.3, similarity


# ----------------------------------------------------------------------------- weak masks
@pytest.mark.parametrize("colour", [(250, 250, 240), (60, 35, 30)], ids=["bright", "dark"])
@pytest.mark.parametrize("method", [weak_mask, threshold_mask], ids=["weak", "threshold"])
def test_weak_mask_finds_the_blob_and_stays_inside_the_box(colour, method):
    rng = np.random.default_rng(1)
    rgb = _skin(rng, 160, 200, hairs=3)
    blob = _blob(rgb.shape[:2], (100, 80), (22, 15))
    rgb[blob] = colour
    ys, xs = np.nonzero(blob)
    box = (xs.min() - 8.0, ys.min() - 8.0, xs.max() + 9.0, ys.max() + 9.0)  # loose, as people draw
    mask = method(rgb, box)
    assert mask.shape == rgb.shape[:2] and mask.dtype == bool
    assert not (mask & ~picture_box_mask(box, rgb.shape[:2])).any()  # never outside its box
    assert dice_score(mask, blob) > 0.85
    assert dice_score(mask, blob) > dice_score(picture_box_mask(box, rgb.shape[:2]), blob) + 0.1


def test_weak_mask_without_contrast_falls_back_to_the_inscribed_ellipse():
    rgb = np.full((80, 80, 3), 180, np.uint8)
    box = (20.0, 30.0, 60.0, 50.0)
    mask = weak_mask(rgb, box)
    assert mask[40, 40] and not mask[30, 20]  # centre in, corner out
    assert 0.6 < mask.sum() / (40 * 20) < 0.9  # pi/4 of the box
    assert not (mask & ~picture_box_mask(box, rgb.shape[:2])).any()


def test_weak_mask_at_the_picture_border():
    rng = np.random.default_rng(2)
    rgb = _skin(rng, 100, 100, hairs=0)
    blob = _blob(rgb.shape[:2], (5, 95), (12, 12))  # corner blob, partly outside
    rgb[blob] = (250, 250, 240)
    box = (0.0, 80.0, 20.0, 100.0)
    mask = weak_mask(rgb, box)
    assert dice_score(mask, blob) > 0.8


# ----------------------------------------------------------------------------- geometry
def _prior_as_mask(refiner: MaskRefiner):
    """Replace the network by 'the mask is the box prior': refine() must then return the boxes."""

    def forward(crops: torch.Tensor) -> torch.Tensor:
        forward.calls.append(crops.shape[0])
        return (crops[:, 3:4] - 0.5) * 50.0

    forward.calls = []
    refiner.forward = forward
    return forward


@pytest.mark.parametrize("margin", [0.25, 0.6])
def test_paste_back_puts_each_mask_on_its_box_also_at_the_border(margin):
    refiner = MaskRefiner(crop_size=SMALL, margin=margin, pretrained=False).eval()
    forward = _prior_as_mask(refiner)
    rgb = np.zeros((120, 200, 3), np.uint8)
    boxes = np.array([
        [50, 40, 90, 70],      # inside
        [0, 0, 30, 25],        # top-left corner
        [170, 90, 200, 120],   # bottom-right corner
        [-10, 50, 15, 80],     # partly outside the picture
        [100, 10, 106, 14],    # tiny (window at its minimum size)
        [20, 5, 180, 115],     # large (window bigger than the picture)
    ], np.float32)
    masks = refiner.refine(rgb, boxes, binary=True)
    assert masks.shape == (6, 120, 200) and masks.dtype == bool
    assert forward.calls == [6]  # one forward pass for all boxes
    for box, mask in zip(boxes, masks, strict=True):
        expected = picture_box_mask(box, (120, 200))
        assert iou_score(mask, expected) > 0.8, box
        ys, xs = np.nonzero(mask)
        assert abs(xs.min() - max(box[0], 0)) <= 1 and abs(xs.max() + 1 - min(box[2], 200)) <= 1, box
        assert abs(ys.min() - max(box[1], 0)) <= 1 and abs(ys.max() + 1 - min(box[3], 120)) <= 1, box


def test_crop_and_paste_back_round_trip_a_mask():
    truth = _blob((240, 320), (300, 20), (30, 18))  # at the picture's corner
    ys, xs = np.nonzero(truth)
    geometry = CropGeometry(crop_size=SMALL)
    window = crop_window((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), geometry.margin, geometry.min_window)
    back = paste_back(crop_mask(truth, window, SMALL), window, truth.shape) > 0.5
    assert dice_score(back, truth) > 0.95


def test_refine_returns_one_probability_map_per_box(pretrained_refiner):
    rng = np.random.default_rng(3)
    rgb = _skin(rng, 90, 130)
    boxes = np.array([[10, 10, 40, 50], [60, 20, 120, 80], [0, 60, 30, 90]], np.float32)
    probs = pretrained_refiner.refine(rgb, boxes)
    assert probs.shape == (3, 90, 130) and probs.dtype == np.float32
    assert 0.0 <= probs.min() and probs.max() <= 1.0
    window = crop_window(boxes[0], pretrained_refiner.geometry.margin, pretrained_refiner.geometry.min_window)
    outside = np.ones((90, 130), bool)
    outside[max(window[1], 0) : window[3], max(window[0], 0) : window[2]] = False
    assert probs[0][outside].max() == 0.0  # nothing outside a box's window
    assert pretrained_refiner.refine(rgb, np.zeros((0, 4))).shape == (0, 90, 130)
    with pytest.raises(ValueError, match="uint8"):
        pretrained_refiner.refine(rgb.astype(np.float32), boxes)


def test_forward_is_plain_tensors_with_any_batch(pretrained_refiner):
    """What the ONNX export needs: tensor in, tensor out, batch size free, traceable."""
    x = torch.rand(2, 4, SMALL, SMALL)
    with torch.no_grad():
        traced = torch.jit.trace(pretrained_refiner, x)
        out = traced(torch.rand(3, 4, SMALL, SMALL))
    assert out.shape == (3, 1, SMALL, SMALL)


# ----------------------------------------------------------------------------- losses
def test_box_projection_loss_rewards_masks_that_fill_the_box_and_punishes_leaks():
    box = torch.zeros(1, 1, 32, 32)
    box[..., 8:24, 10:20] = 1
    inside = torch.zeros_like(box)
    inside[..., 9:23, 11:19] = 1  # smaller than the box, but spans most of it
    leak = box.clone()
    leak[..., 8:24, 20:30] = 1  # runs past the right edge

    def logits(mask: torch.Tensor) -> torch.Tensor:
        return (mask - 0.5) * 40

    assert box_projection_loss(logits(box), box).item() < 0.02
    assert box_projection_loss(logits(inside), box) < box_projection_loss(logits(leak), box)
    assert dice_bce_loss(logits(box), box) < dice_bce_loss(logits(leak), box)


# ----------------------------------------------------------------------------- train, save, load
def test_one_epoch_of_training_writes_weights_that_load_back(tmp_path):
    from pipeline import main

    dataset = _tiny_dataset(tmp_path / "ds")
    out = tmp_path / "run"
    rc = main(["-q", "train", "segmenter", str(dataset.root), "--out", str(out), "--epochs", "1",
               "--crop-size", str(SMALL), "--batch", "4", "--threads", "1"])
    assert rc == 0
    weights = out / "segmenter.safetensors"
    config = read_config(weights)  # sha256 checked
    assert config["architecture"] == "MaskRefiner" and config["arch"]["crop_size"] == SMALL
    assert config["arch"]["encoder"] == "efficientnet_lite0" and config["smp_encoder"] == "timm-tf_efficientnet_lite0"
    assert config["input"]["normalization"]["mean"] == [0.5, 0.5, 0.5, 0.5]
    assert config["kinds"] == ["dandruff"]
    assert config["training_data"][0]["n_exact"] == 4 and config["training_data"][0]["n_weak"] == 4
    assert 0.0 <= config["scores"]["dice"] <= 1.0 and config["scores"]["dice_box_baseline"] > 0.5
    assert json.loads((out / "history.json").read_text())[0]["epoch"] == 1

    refiner = MaskRefiner.load(out)
    rgb = cv2.cvtColor(cv2.imread(str(dataset.root / dataset.samples[-1].image)), cv2.COLOR_BGR2RGB)
    boxes = np.array([r.box for r in dataset.samples[-1].regions], np.float32)
    again = MaskRefiner.load(weights.with_suffix(".json"))
    assert np.array_equal(refiner.refine(rgb, boxes), again.refine(rgb, boxes))


def test_box_only_dataset_trains_on_weak_masks(tmp_path):
    from segmentation.train import TrainOptions, train_segmenter

    dataset = _tiny_dataset(tmp_path / "ds", n=4, outlined=(False, False))
    options = TrainOptions(epochs=1, batch_size=4, crop_size=SMALL)
    result = train_segmenter(dataset, tmp_path / "run", options, progress=False)
    assert result.config["training_data"][0]["n_weak"] == 4 and result.config["training_data"][0]["n_exact"] == 0
    assert result.config["validation"]["early_stopping_masks"] == "weak"
    assert result.config["scores"]["dice"] is None  # no outline to measure against: not faked
    masks = MaskRefiner.load(result.weights).refine(np.zeros((50, 50, 3), np.uint8), np.array([[5, 5, 30, 30]]))
    assert masks.shape == (1, 50, 50)


def test_without_a_val_split_whole_subjects_are_held_out(tmp_path):
    from segmentation.train import training_split

    folder = _tiny_dataset(tmp_path / "ds", n=12)
    for index, sample in enumerate(folder.samples):
        sample.split = None
        sample.meta["subject"] = f"s{index // 3}"  # three pictures per person
    train, val, how = training_split(folder, seed=0)
    assert "held out" in how and val and train
    assert not {s.group for s in train} & {s.group for s in val}
    assert len(train) + len(val) == 12


def test_load_refuses_a_config_that_does_not_fit_the_tensors(tmp_path):
    refiner = MaskRefiner(crop_size=SMALL, decoder_channels=(32, 16, 16, 8, 8), pretrained=False)
    weights = tmp_path / "segmenter.safetensors"
    config = refiner.save(weights, kinds=["dandruff"])
    wrong = {k: v for k, v in config.items() if k not in ("file", "sha256")}
    wrong["arch"] = {**config["arch"], "decoder_channels": [64, 32, 16, 8, 8]}
    write_config(weights, wrong)
    with pytest.raises(WeightsError, match="do not match the architecture"):
        MaskRefiner.load(weights)
    write_config(weights, {**wrong, "architecture": "Unet"})
    with pytest.raises(WeightsError, match="not segmenter weights"):
        MaskRefiner.load(tmp_path)


# ----------------------------------------------------------------------------- evaluation
def test_evaluation_on_the_committed_real_images(scalp_mini, tmp_path, pretrained_refiner):
    """Real polygons: the box baseline is scored exactly, weak masks stay in their boxes."""
    from datasets.importer import import_dataset
    from segmentation.evaluate import evaluate_segmenter

    folder = import_dataset(scalp_mini, tmp_path / "ds")
    report = evaluate_segmenter(pretrained_refiner, folder, None, methods=("unet", "box", "threshold"), progress=False)
    regions = [(s, r) for s in folder for r in s.regions]
    assert report["n_regions"] == len(regions) > 0
    expected_box = []
    for sample, region in regions:
        truth = folder.region_mask(sample, region)
        box = picture_box_mask(region.box, truth.shape)
        expected_box.append(2 * (truth & box).sum() / (truth.sum() + box.sum()))
    assert report["methods"]["box"]["dice"] == pytest.approx(np.mean(expected_box))
    for method in ("unet", "threshold"):
        assert 0.0 <= report["methods"][method]["dice"] <= 1.0
        assert report["methods"][method]["iou"] <= report["methods"][method]["dice"]
    unet, box = report["methods"]["unet"], report["methods"]["box"]
    assert report["gain"]["dice_over_box"] == pytest.approx(unet["dice"] / box["dice"])

    sample = next(s for s in folder if s.regions)
    rgb = cv2.cvtColor(cv2.imread(str(folder.image_path(sample))), cv2.COLOR_BGR2RGB)
    for region in sample.regions:
        mask = weak_mask(rgb, region.box)
        assert mask.any() and not (mask & ~picture_box_mask(region.box, rgb.shape[:2])).any()


def test_end_to_end_scores_detector_boxes_against_the_union_of_outlines(tmp_path):
    from segmentation.evaluate import evaluate_end_to_end

    folder = _tiny_dataset(tmp_path / "ds", n=3, outlined=(True, True))
    refiner = MaskRefiner(crop_size=SMALL, pretrained=False).eval()
    _prior_as_mask(refiner)  # the "U-Net" returns the box: both methods must then agree
    truth_boxes = {s.image: np.array([r.box for r in s.regions], np.float32) for s in folder}
    images = iter(s.image for s in folder.split(None))
    report = evaluate_end_to_end(refiner, folder, lambda rgb: truth_boxes[next(images)], split=None, progress=False)
    unet, box = report["methods"]["unet"], report["methods"]["box"]
    assert report["n_boxes"] == 6 and unet["n"] == 3
    assert unet["dice"] == pytest.approx(box["dice"], abs=0.03)
    assert 0.5 < box["dice"] < 0.95  # ellipses in their boxes: about pi/4 filled


@pytest.mark.real_data
def test_baselines_on_the_real_validation_outlines(shared_data, tmp_path):
    """On real scalp-data polygons the seed method is a usable mask and never leaves its box."""
    from datasets.importer import import_dataset
    from segmentation.evaluate import evaluate_segmenter

    folder = import_dataset(shared_data / "scalp-data", tmp_path / "ds")
    report = evaluate_segmenter(None, folder, "val", methods=("box", "threshold"), limit=12, progress=False)
    assert report["n_regions"] >= 20
    assert 0.6 < report["methods"]["box"]["dice"] < 0.95  # people outline ~70% of their box
    assert report["methods"]["threshold"]["dice"] > 0.6
    sample = folder.split("val")[0]
    rgb = cv2.cvtColor(cv2.imread(str(folder.image_path(sample))), cv2.COLOR_BGR2RGB)
    for region in sample.regions:
        assert not (threshold_mask(rgb, region.box) & ~picture_box_mask(region.box, rgb.shape[:2])).any()
