"""fusion/: the mask-guided multi-head severity classifier, its losses, data and CLI."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import pipeline
from core.backbones import create_backbone
from core.images import load_image
from core.taxonomy import INDICATORS
from core.weights import WeightsError, read_config
from datasets.folder import DatasetFolder
from datasets.importer import import_dataset
from evaluation.classification import expected_calibration_error
from fusion.calibration import fit_temperature, probabilities
from fusion.data import (
    Augment,
    DerivedGrades,
    collect_examples,
    derive_area_grades,
    fit_area_cuts,
    native_scale,
    needs_derived_grades,
)
from fusion.heads import GradeHead, HeadSpec, default_heads, head_probabilities, native_head_name
from fusion.inputs import prepare
from fusion.losses import class_alpha, corn_loss, focal_loss, multi_head_loss
from fusion.model import COVERAGE_GAIN, MaskContrast, MaskGuidedPooling, SeverityClassifier, staged_features
from fusion.predict import SeverityGrader, build_model, load_classifier

HEADS = default_heads({"hair-loss-levels": [f"LEVEL_{i}" for i in range(2, 8)]})


@pytest.fixture(scope="module")
def pretrained_model() -> SeverityClassifier:
    torch.manual_seed(0)
    return SeverityClassifier(HEADS, "efficientnet_lite0", pretrained=True)


# ----------------------------------------------------------------------------- model
def test_backbone_holds_the_imagenet_weights_exactly(pretrained_model):
    reference = create_backbone("efficientnet_lite0", pretrained=True).state_dict()
    ours = pretrained_model.backbone.state_dict()
    assert len(ours) == len(reference) - 2  # everything but the ImageNet classifier
    for key, tensor in ours.items():
        assert torch.equal(tensor, reference[key]), key
    random = SeverityClassifier(HEADS[:1], "efficientnet_lite0", pretrained=False).backbone.state_dict()
    assert not torch.equal(random["conv_stem.weight"], ours["conv_stem.weight"])


def test_heads_come_from_the_config_and_outputs_have_their_shapes(pretrained_model):
    assert list(pretrained_model.heads) == [*INDICATORS, "hair_loss_grade", "stage_hair_loss_levels"]
    pretrained_model.eval()
    with torch.no_grad():
        out = pretrained_model(torch.zeros(3, 3, 96, 96), torch.ones(3, 1, 96, 96))
    assert out["dandruff"].shape == (3, 4) and out["hair_loss_grade"].shape == (3, 3)
    assert out["stage_hair_loss_levels"].shape == (3, 6)
    corn = SeverityClassifier([HeadSpec("sebum", ("0", "1", "2", "3"), "indicator:sebum", "corn")], pretrained=False)
    assert corn(torch.zeros(1, 3, 64, 64), torch.ones(1, 1, 64, 64))["sebum"].shape == (1, 3)


def test_frozen_blocks_get_no_gradient_and_keep_batchnorm_statistics():
    model = SeverityClassifier(HEADS[:1], pretrained=False, freeze_blocks=2).train()
    before = model.backbone.bn1.running_mean.clone()
    out = model(torch.randn(2, 3, 64, 64), torch.ones(2, 1, 64, 64))
    out["microkeratin"].sum().backward()
    assert model.backbone.conv_stem.weight.grad is None and model.backbone.blocks[1][0].conv_dw.weight.grad is None
    assert model.backbone.blocks[2][0].conv_pw.weight.grad is not None
    assert torch.equal(before, model.backbone.bn1.running_mean)


def test_mask_guided_pooling_weights_by_the_mask():
    features = torch.arange(2 * 4 * 4, dtype=torch.float32).view(1, 2, 4, 4)
    pooling = MaskGuidedPooling(stride=2)
    ones = pooling(features, torch.ones(1, 1, 8, 8))
    torch.testing.assert_close(ones[:, :2], ones[:, 2:])  # unknown mask: a second global average
    assert torch.all(pooling(features, torch.zeros(1, 1, 8, 8))[:, 2:] == 0)  # nothing found
    spot = torch.zeros(1, 1, 8, 8)
    spot[..., 2:4, 6:8] = 1  # exactly feature cell (1, 3)
    torch.testing.assert_close(pooling(features, spot)[0, 2:], features[0, :, 1, 3], rtol=1e-4, atol=1e-4)


def test_per_kind_pooling_pools_each_channel_and_reports_its_coverage():
    features = torch.randn(2, 5, 4, 4)
    masks = (torch.rand(2, 3, 8, 8) > 0.6).float()
    masks[1, 2] = 0  # a kind not found in the second picture
    pooled = MaskGuidedPooling(stride=2, coverage_copies=2, coverage="sqrt")(features, masks)
    assert pooled.shape == (2, MaskGuidedPooling.out_features(5, 3, 2, "sqrt")) == (2, 4 * 5 + 3 * 2)
    single = MaskGuidedPooling(stride=2)
    for k in range(3):  # each channel pools exactly as a one-channel mask would
        torch.testing.assert_close(pooled[:, 5 * (k + 1):5 * (k + 2)], single(features, masks[:, k:k + 1])[:, 5:])
    coverage = masks.mean(dim=(2, 3)).sqrt()
    torch.testing.assert_close(pooled[:, -6:], coverage.repeat_interleave(2, dim=1))  # each kind twice, in order
    assert torch.all(pooled[1, 15:20] == 0) and torch.all(pooled[1, -2:] == 0)


def test_log_coverage_steps_equally_per_area_ratio_and_flags_unknown_masks():
    features = torch.randn(4, 5, 8, 8)
    masks = torch.zeros(4, 2, 16, 16)
    masks[0, 0, :4, :4] = 1  # 1/16 of the frame
    masks[1, 0, :8, :8] = 1  # 4x that area
    masks[2] = 1  # no mask known for either kind
    # picture 3: nothing found of either kind
    pooling = MaskGuidedPooling(stride=2, coverage_copies=3)
    pooled = pooling(features, masks)
    assert pooled.shape == (4, MaskGuidedPooling.out_features(5, 2, 3)) == (4, 3 * 5 + 2 * 3 * 2)
    log_cover, known = pooled[:, -12:-6], pooled[:, -6:]
    torch.testing.assert_close(log_cover[:, :3], log_cover[:, :1].expand(-1, 3))  # copies, kind by kind
    floor = torch.log10(torch.tensor(1e-4))
    expected = torch.log10(torch.tensor([1 / 16, 1 / 4]) + 1e-4) - floor
    torch.testing.assert_close(log_cover[:2, 0], expected)
    assert log_cover[1, 0] - log_cover[0, 0] == pytest.approx(np.log10(4), abs=1e-3)  # a ratio is a fixed step
    assert torch.all(known[[0, 1, 3]] == 1) and torch.all(known[2] == 0)  # all ones = mask unknown
    assert torch.all(log_cover[2] == 0) and torch.all(log_cover[3] == 0)  # unknown is not "the whole frame"
    assert torch.all(log_cover[0, 3:] == 0)  # the second kind, not found
    with pytest.raises(ValueError, match="coverage encoding"):
        MaskGuidedPooling(coverage="linear")


def test_mask_contrast_is_inside_minus_outside_and_zero_without_either():
    features = torch.ones(3, 2, 4, 4)
    features[:, :, :2, :2] = 3.0  # the masked quarter reads 3, the rest 1
    features[:, 1] *= -1
    masks = torch.zeros(3, 3, 8, 8)
    masks[:, 0, :4, :4] = 1  # at input resolution: the quarter the features describe
    masks[1, 1] = 1  # no mask known
    # channel 2: nothing found anywhere
    contrast = MaskContrast(stride=2, channels=2, n_masks=3).eval()  # fresh statistics: mean 0, variance 1
    out = contrast(features, masks).view(3, 3, 2)
    torch.testing.assert_close(out[:, 0], torch.tensor([2.0, -2.0]).expand(3, 2), atol=1e-4, rtol=0)
    assert torch.all(out[:, 2] == 0) and torch.all(out[1, 1] == 0)  # no outside / no inside: no contrast
    contrast.train()
    standardized = contrast(features + torch.randn(3, 2, 4, 4), masks)
    assert standardized[:, 0].mean().abs() < 1e-5  # a batch of several: standardized with its own statistics
    assert torch.isfinite(contrast(features[:1], masks[:1])).all()  # a batch of one: running statistics


def test_contrast_taps_the_backbone_without_changing_its_output():
    model = SeverityClassifier(HEADS[:1], pretrained=False, mask_channels=["sebum", "hair_loss"],
                               contrast_blocks=(2, 4)).eval()
    image = torch.randn(1, 3, 64, 64)
    last, (stride8, stride16) = staged_features(model.backbone, image, (2, 4))
    torch.testing.assert_close(last, model.backbone(image))
    assert stride8.shape[-1] == 8 and stride16.shape[-1] == 4
    pooled = MaskGuidedPooling.out_features(1280, 2, 1) + 2 * (stride8.shape[1] + stride16.shape[1])
    assert model.heads[HEADS[0].name].linear.in_features + model.heads[HEADS[0].name].n_coverage == pooled
    assert model(image, torch.rand(1, 2, 64, 64))[HEADS[0].name].shape == (1, 4)
    with pytest.raises(ValueError, match="contrast block 9"):
        SeverityClassifier(HEADS[:1], pretrained=False, contrast_blocks=(9,))


def test_contrast_heads_read_only_their_own_kinds_contrast_and_the_coverage():
    kinds = ["sebum", "hair_loss"]
    model = SeverityClassifier(HEADS, pretrained=False, mask_channels=kinds, contrast_blocks=(2, 4),
                               contrast_heads=("hair_loss",)).eval()
    head = model.heads["hair_loss"]
    assert head.linear.in_features == 40 + 112 and head.n_coverage == 4  # two taps' widths; log + flag per kind
    image, mask = torch.randn(2, 3, 64, 64), torch.rand(2, 2, 64, 64)
    other_sebum = mask.clone()
    other_sebum[:, 0] = torch.rand(2, 64, 64)
    with torch.no_grad():
        first, second = model(image, mask), model(image, other_sebum)
        model.heads["hair_loss"].coverage.weight.fill_(1e-3)
        covered = model(image, other_sebum)
    torch.testing.assert_close(first["hair_loss"], second["hair_loss"])  # sebum's outline reaches it only ...
    assert not torch.allclose(covered["hair_loss"], second["hair_loss"])  # ... through the coverage inputs
    assert not torch.allclose(first["sebum"], second["sebum"])  # the other heads read everything
    with pytest.raises(ValueError, match="no mask channel"):
        SeverityClassifier(HEADS[:1], pretrained=False, mask_channels=kinds, contrast_blocks=(4,),
                           contrast_heads=("dandruff",))
    with pytest.raises(ValueError, match="need contrast blocks"):
        SeverityClassifier(HEADS[:1], pretrained=False, mask_channels=kinds, contrast_heads=("hair_loss",))


def test_coverage_layer_starts_silent_takes_the_gain_and_skips_dropout():
    head = GradeHead(10, 4, dropout=0.9, n_coverage=2, coverage_gain=1000.0).train()
    pooled = torch.rand(6, 10)
    other = pooled.clone()
    other[:, -2:] = torch.rand(6, 2)
    torch.manual_seed(0)
    first = head(pooled)
    torch.manual_seed(0)
    torch.testing.assert_close(head(other), first)  # zero-initialized: the gain cannot blow up the first logits
    assert head.linear.in_features == 8
    with torch.no_grad():
        head.coverage.weight.fill_(1e-3)
    torch.manual_seed(0)
    shifted = head(pooled) - first  # same dropout draw on the image part, so only the coverage moved
    torch.testing.assert_close(shifted, pooled[:, -2:].sum(1, keepdim=True).expand(-1, 4) * 1e-3 * 1000.0)


def test_per_kind_masks_follow_the_kinds_through_data_and_grader(synthetic):
    from fusion.data import Example

    kinds = ["sebum", "dandruff"]
    sample = next(s for s in synthetic.samples if {"sebum", "dandruff"} <= {r.kind for r in s.regions})
    example = Example(synthetic, sample, {}, outlines_lesions=True)
    layers, union = example.lesion_mask(kinds), example.lesion_mask()
    assert layers.shape == (sample.height, sample.width, 2) and layers.any(axis=(0, 1)).all()
    for k, kind in enumerate(kinds):
        alone = np.zeros_like(union)
        for region in (r for r in sample.regions if r.kind == kind):
            alone |= synthetic.region_mask(sample, region, union.shape)
        np.testing.assert_array_equal(layers[:, :, k], alone)
    assert not (layers.any(axis=2) & ~union).any()

    model = SeverityClassifier(HEADS[:1], pretrained=False, mask_channels=kinds)
    config = {"heads": [HEADS[0].to_dict()], "input_size": 64, "normalization": {"mean": [0.5] * 3, "std": [0.5] * 3},
              "mask": {"channels": kinds}}
    grader = SeverityGrader(model, config)
    regions = np.zeros((3, 20, 30), np.float32)
    regions[0, :5], regions[1, 10:], regions[2, :, :3] = 0.9, 0.8, 0.7
    stack = grader.lesion_map(regions, ["dandruff", "sebum", "erythema_between_follicles"])  # the last has no channel
    assert stack.shape == (20, 30, 2)
    np.testing.assert_array_equal(stack[:, :, 0], regions[1])  # sebum
    np.testing.assert_array_equal(stack[:, :, 1], regions[0])  # dandruff
    assert not grader.lesion_map(regions[:0], []).any()  # nothing found: zeros, not "unknown"
    rgb = np.zeros((20, 30, 3), np.uint8)
    assert grader.predict([rgb, rgb], [stack, None])[0]["indicators"]
    with pytest.raises(ValueError, match="channel"):
        grader.predict([rgb], [regions[0]])  # a union mask for a per-kind classifier
    legacy = SeverityGrader(SeverityClassifier(HEADS[:1], pretrained=False), {**config, "mask": {}})
    np.testing.assert_array_equal(legacy.lesion_map(regions, ["dandruff"] * 3), regions.max(axis=0))
    empty = legacy.lesion_map(regions[:0], [])  # nothing found on a close-up: zeros, as in training
    assert empty.shape == (20, 30) and not empty.any()


def test_letterboxed_masks_keep_every_channel():
    """More than four kinds (OpenCV's area resize stops at four channels) and a single kind
    (OpenCV drops a lone channel) both come back whole, each channel as if boxed alone."""
    from fusion.inputs import letterbox_mask

    rng = np.random.default_rng(0)
    for channels in (1, 3, 6):
        mask = rng.random((48, 64, channels)) > 0.5
        boxed = letterbox_mask(mask, 32)
        assert boxed.shape == (32, 32, channels)
        for k in range(channels):
            np.testing.assert_array_equal(boxed[:, :, k], letterbox_mask(mask[:, :, k], 32))


# ----------------------------------------------------------------------------- losses
def test_head_with_all_unknown_labels_gets_zero_gradient(pretrained_model):
    model = pretrained_model.train()
    model.zero_grad(set_to_none=True)
    logits = model(torch.randn(4, 3, 64, 64), torch.ones(4, 1, 64, 64))
    targets = {h.name: torch.full((4,), -1) for h in HEADS}
    targets["hair_loss_grade"] = torch.tensor([0, 1, 2, 1])
    loss, parts = multi_head_loss(logits, targets, {h.name: h.loss for h in HEADS})
    loss.backward()
    assert set(parts) == {"hair_loss_grade"} and float(loss.detach()) > 0
    assert model.heads["hair_loss_grade"].linear.weight.grad.abs().sum() > 0
    for name in INDICATORS:
        grad = model.heads[name].linear.weight.grad
        assert grad is None or float(grad.abs().sum()) == 0.0, name
    model.zero_grad(set_to_none=True)


def test_masked_rows_do_not_change_the_loss():
    torch.manual_seed(0)
    logits = torch.randn(6, 4)
    target = torch.tensor([0, -1, 3, -1, 1, 2])
    kept = target != -1
    assert torch.allclose(focal_loss(logits, target), focal_loss(logits[kept], target[kept]))
    assert torch.allclose(corn_loss(logits[:, :3], target), corn_loss(logits[kept, :3], target[kept]))
    # gamma 0 is cross-entropy; focusing lowers the loss of well-classified rows.
    ce = torch.nn.functional.cross_entropy(logits[kept], target[kept])
    assert torch.allclose(focal_loss(logits, target, gamma=0.0), ce)
    assert focal_loss(logits, target, gamma=2.0) < ce


def test_corn_loss_and_probabilities_follow_the_ordinal_definition():
    logits = torch.tensor([[2.0, 0.5, -1.0]])
    probs = head_probabilities(logits, "corn")[0]
    s = torch.sigmoid(logits[0])
    expected = torch.stack([1 - s[0], s[0] * (1 - s[1]), s[0] * s[1] * (1 - s[2]), s[0] * s[1] * s[2]])
    torch.testing.assert_close(probs, expected)
    # Grade 2: tasks "> 0" and "> 1" are true, "> 2" is false; all three apply (grade >= k).
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    manual = (bce(logits[0, 0], torch.tensor(1.0)) + bce(logits[0, 1], torch.tensor(1.0)) + bce(logits[0, 2], torch.tensor(0.0))) / 3
    torch.testing.assert_close(corn_loss(logits, torch.tensor([2])), manual)
    # Grade 0 takes part only in task 0.
    torch.testing.assert_close(corn_loss(logits, torch.tensor([0])), bce(logits[0, 0], torch.tensor(0.0)))


def test_class_alpha_weights_rare_grades_up():
    alpha = class_alpha([90, 9, 1, 0], "inverse")
    assert alpha[3] == 0 and alpha[2] > alpha[1] > alpha[0]
    assert float((alpha[:3] * torch.tensor([90.0, 9, 1])).sum() / 100) <= 1.0 + 1e-6  # capped mean weight
    assert class_alpha([5, 5], "none") is None


# ----------------------------------------------------------------------------- data
def test_derived_grades_follow_area_terciles():
    fractions = [{"dandruff": f} for f in (0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06)]
    cuts = fit_area_cuts(fractions, ["dandruff"])
    low, high = cuts["dandruff"]
    assert 0.01 < low < high < 0.06
    grades = [derive_area_grades(f, cuts)["dandruff"] for f in fractions]
    assert grades[0] == 0 and grades == sorted(grades) and set(grades[1:]) == {1, 2, 3}


def test_real_scalp_data_gets_derived_grades_and_hair_loss_set_its_native_head(scalp_mini, hair_loss_mini, tmp_path):
    scalp = import_dataset(scalp_mini, tmp_path / "scalp")
    hair = import_dataset(hair_loss_mini, tmp_path / "hair")
    assert needs_derived_grades(scalp) and not needs_derived_grades(hair)
    derived = DerivedGrades.fit(scalp, cuts={"dandruff": (0.01, 0.05), "sebum": (0.05, 0.2),
                                             "erythema_between_follicles": (0.01, 0.05)})
    scale = native_scale(hair)
    assert scale == [f"LEVEL_{i}" for i in range(2, 8)]
    heads = default_heads({hair.name: scale})
    examples = collect_examples([scalp, hair], "val", heads, {scalp.name: derived})
    by_folder = {name: [e for e in examples if e.folder.name == name] for name in (scalp.name, hair.name)}
    for example in by_folder[scalp.name]:
        kinds = {r.kind for r in example.sample.regions}
        # Outlined kinds get a grade >= 1, unoutlined ones 0; never-outlined indicators stay unknown.
        assert (example.targets.get("dandruff", 0) > 0) == ("dandruff" in kinds)
        assert "microkeratin" not in example.targets and "hair_loss_grade" not in example.targets
        assert example.lesion_mask().any() == bool(kinds)
    stage = native_head_name(hair.name)
    assert stage in [h.name for h in heads]
    for example in by_folder[hair.name]:
        assert set(example.targets) == {"hair_loss_grade", stage} and example.lesion_mask() is None
        assert scale[example.targets[stage]] == example.sample.source["class"]


def test_augment_moves_image_and_mask_together():
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[10:20, 40:50] = 255
    mask = (rgb[..., 0] > 0).astype(np.uint8) * 255
    rng = np.random.default_rng(3)
    for _ in range(5):
        out_rgb, out_mask = Augment(brightness=0, contrast=0, saturation=0, hue=0)(rgb, mask, rng, closeup=True)
        bright = out_rgb[..., 0] > 127
        assert abs(int(bright.sum()) - int((out_mask > 127).sum())) <= 12
        assert (bright & (out_mask > 127)).sum() > 0.8 * bright.sum()


def test_augment_reframes_square_pictures_as_letterboxed_photos():
    """Square exports are shown as a 4:3 or 3:4 phone photo looks after letterboxing: black bars."""
    rgb = np.full((64, 64, 3), 200, np.uint8)
    rgb[20:30, 20:30] = 255
    mask = (rgb[..., 0] == 255).astype(np.uint8) * 255
    still = Augment(hflip=0, vflip_closeup=0, brightness=0, contrast=0, saturation=0, hue=0, rotation=0,
                    scale=(1.0, 1.0), reframe=1.0)
    rng = np.random.default_rng(0)
    bar_sides = set()
    for _ in range(20):
        out_rgb, out_mask = still(rgb, mask, rng, closeup=False)
        assert out_rgb.shape == rgb.shape and out_mask.shape == mask.shape
        dark_rows, dark_cols = (out_rgb.max(axis=(1, 2)) == 0), (out_rgb.max(axis=(0, 2)) == 0)
        assert 0 < dark_rows.sum() + dark_cols.sum() <= 0.3 * 64 + 2  # bars, no more than the aspect allows
        bar_sides.add("rows" if dark_rows.any() else "cols")
        assert not (out_mask[dark_rows] > 0).any() and not (out_mask[:, dark_cols] > 0).any()
        assert ((out_rgb[..., 0] > 230) & (out_mask > 127)).sum() > 0.5 * (out_mask > 127).sum()
    assert bar_sides == {"rows", "cols"}


def test_area_geometry_keeps_every_lesion_share_of_the_frame_that_free_geometry_moves():
    """Where a grade is an area share, only flips and quarter turns leave the label true."""
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((64, 64, 2), np.uint8)
    mask[5:25, 30:62, 0] = 255  # a patch off centre, near the frame's edge
    mask[40:46, 8:14, 1] = 255
    shares = mask.reshape(-1, 2).mean(0)
    area, free = Augment(geometry="area", reframe=1.0), Augment(reframe=1.0)
    moved, turned = 0, set()
    for _ in range(20):
        out_rgb, out_mask = area(rgb, mask, rng, closeup=True)
        np.testing.assert_array_equal(out_mask.reshape(-1, 2).mean(0), shares)
        assert out_rgb.shape == rgb.shape and out_rgb.flags.c_contiguous
        turned.add(int(np.argmax(out_mask[..., 1].sum(0) > 0) < 32))  # the small patch changes side
        moved += not np.allclose(free(rgb, mask, rng, closeup=True)[1].reshape(-1, 2).mean(0), shares, rtol=0.05)
    assert turned == {0, 1} and moved >= 10
    head_photo = Augment(geometry="area", hflip=0, brightness=0, contrast=0, saturation=0, hue=0)
    np.testing.assert_array_equal(head_photo(rgb, mask, rng, closeup=False)[1], mask)  # a head photo keeps its up
    with pytest.raises(ValueError, match="geometry"):
        Augment(geometry="warp")


# ----------------------------------------------------------------------------- calibration
def test_temperature_scaling_cools_overconfident_logits():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 400)
    logits = rng.normal(size=(400, 3))
    logits[np.arange(400), labels] += 1.0
    logits *= 6  # right more often than not, but far too sure
    head = HeadSpec("hair_loss_grade", ("low", "mid", "high"), "hair_loss")
    temperature = fit_temperature(head, logits, labels)
    assert temperature > 2
    assert expected_calibration_error(probabilities(head, logits, temperature), labels) < \
        0.5 * expected_calibration_error(probabilities(head, logits), labels)
    assert (probabilities(head, logits, temperature).argmax(1) == logits.argmax(1)).all()


# ----------------------------------------------------------------------------- training and inference
@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> DatasetFolder:
    synth = pytest.importorskip("datasets.synth")
    folder = synth.generate(12, tmp_path_factory.mktemp("synth") / "ds", seed=3, progress=False)
    for i, sample in enumerate(folder.samples):
        sample.split = "train" if i < 8 else "val"
    folder.save()
    return folder


def test_one_epoch_cli_train_writes_a_config_that_loads_back(synthetic, tmp_path, capsys):
    out = tmp_path / "classifier"
    code = pipeline.main(["train", "classifier", str(synthetic.root), "--out", str(out), "--epochs", "1",
                          "--imgsz", "64", "--batch", "4", "--freeze-blocks", "3"])
    assert code == 0, capsys.readouterr().err
    assert "classifier written" in capsys.readouterr().out
    config = read_config(out / "classifier.safetensors")
    assert config["input_size"] == 64 and config["backbone"] == "efficientnet_lite0"
    assert [h["name"] for h in config["heads"]] == [*INDICATORS, "hair_loss_grade"]
    assert config["label_distribution"]["train"]["dandruff"] and set(config["temperatures"]) >= set(INDICATORS)
    assert config["training"]["epochs_run"] == 1 and len(config["sha256"]) == 64
    assert sorted(p.name for p in out.glob("confusion_*.png"))

    grader = SeverityGrader.load(out / "classifier.safetensors")
    sample = synthetic.samples[-1]
    rgb = load_image(synthetic.image_path(sample)).rgb
    mask = np.zeros(rgb.shape[:2], np.float32)
    results = grader.predict([rgb, rgb[:200]], [mask, None])
    assert len(results) == 2
    for result in results:
        assert set(result["indicators"]) == set(INDICATORS)
        for grade in result["indicators"].values():
            assert grade["grade"] in range(4) and sum(grade["probs"]) == pytest.approx(1, abs=1e-3)
        assert result["hair_loss"]["grade"] in ("low", "mid", "high")
        assert sum(result["hair_loss"]["probs"].values()) == pytest.approx(1, abs=1e-3)
    # Reloaded weights reproduce the trained model's logits exactly.
    model, _ = load_classifier(out / "classifier.safetensors")
    image, soft = prepare(rgb, mask, 64, grader.mean, grader.std)
    with torch.no_grad():
        direct = model(image[None], soft[None])["dandruff"].numpy()
    np.testing.assert_allclose(grader.logits([rgb], [mask])["dandruff"], direct, rtol=1e-5, atol=1e-5)

    (out / "classifier.safetensors").write_bytes((out / "classifier.safetensors").read_bytes()[:-8] + b"corrupt!")
    with pytest.raises(WeightsError, match="sha256"):
        SeverityGrader.load(out / "classifier.safetensors")


def test_ema_training_writes_the_moving_average_not_the_last_step(synthetic, tmp_path, capsys):
    """Same seed, same steps: without --ema the written weights moved off the pretrained ones; with a
    decay so slow that the average cannot follow, the written weights stay where training began."""
    pretrained = create_backbone("efficientnet_lite0", pretrained=True, num_classes=0, global_pool="")
    start = pretrained.conv_head.weight.detach()
    moved = {}
    for decay in ("0", "0.9999999"):
        out = tmp_path / f"ema_{decay}"
        code = pipeline.main(["train", "classifier", str(synthetic.root), "--out", str(out), "--epochs", "1",
                              "--imgsz", "64", "--batch", "4", "--freeze-blocks", "3", "--lr", "1e-3", "--ema", decay])
        assert code == 0, capsys.readouterr().err
        model, config = load_classifier(out / "classifier.safetensors")
        assert config["training"]["settings"]["ema"] == float(decay)
        moved[decay] = float((model.backbone.conv_head.weight.detach() - start).abs().max())
    assert moved["0"] > 1e-4
    assert moved["0.9999999"] < 1e-3 * moved["0"]
    assert pipeline.main(["train", "classifier", str(synthetic.root), "--out", str(tmp_path / "bad"), "--ema", "1"]) == 2
    assert "--ema 1.0" in capsys.readouterr().err


def test_per_kind_training_records_its_channels_and_loads_back(synthetic, tmp_path, capsys):
    out = tmp_path / "kinds"
    code = pipeline.main(["train", "classifier", str(synthetic.root), "--out", str(out), "--epochs", "1",
                          "--imgsz", "64", "--batch", "4", "--freeze-blocks", "3", "--mask-channels", "kinds",
                          "--contrast-blocks", "4", "--contrast-heads", "dandruff"])
    assert code == 0, capsys.readouterr().err
    config = read_config(out / "classifier.safetensors")
    assert config["mask"]["contrast_blocks"] == [4] and "inside-minus-outside" in config["pooling"]
    assert config["mask"]["contrast_heads"] == ["dandruff"]
    outlined = {r.kind for s in synthetic.samples for r in s.regions}
    assert config["mask"]["channels"] == [k for k in INDICATORS if k in outlined] and len(outlined) > 1
    assert config["mask"]["coverage"] == "log" and config["mask"]["coverage_gain"] == COVERAGE_GAIN
    older = {**config, "mask": {"channels": config["mask"]["channels"], "coverage_copies": 1280}}  # and no contrast
    model = build_model(older)  # per-kind configs from before the log encoding: sqrt coverage in copies
    assert model.coverage == "sqrt" and not hasattr(model.heads["dandruff"], "coverage")
    assert model.heads["dandruff"].linear.in_features == 1280 * (1 + len(outlined)) + 1280 * len(outlined)
    grader = SeverityGrader.load(out / "classifier.safetensors")
    assert grader.n_mask_channels == len(outlined) and grader.model.n_mask_channels == len(outlined)
    assert grader.model.heads["dandruff"].linear.in_features == 112  # rebuilt from the config, loaded strictly
    rgb = load_image(synthetic.image_path(synthetic.samples[0])).rgb
    stack = np.zeros((*rgb.shape[:2], len(outlined)), np.float32)
    stack[:40, :40, 0] = 1
    assert grader.predict([rgb], [stack])[0]["indicators"]

    # Scored again on its val split from the saved file: the scores training stored for it.
    from fusion.score_split import main as score_main
    from fusion.score_split import score_split
    again = score_split(out, synthetic.root, "val")
    assert again["n"] == 4
    stored = config["val_scores"]
    for key in ("overall_macro_f1", "hamming"):
        assert again["indicators"][key] == pytest.approx(stored["indicators"][key], abs=1e-6)
    assert {k: h["macro_f1"] for k, h in again["heads"].items()} == pytest.approx(
        {k: h["macro_f1"] for k, h in stored["heads"].items()}, abs=1e-6)
    assert again["hair_loss"]["ece"] == pytest.approx(stored["hair_loss"]["ece"], abs=1e-6)  # same temperatures
    assert score_main([str(out), str(synthetic.root), "--split", "test"]) == 2
    assert "no labelled images in the 'test' split" in capsys.readouterr().err


def test_grader_refuses_mismatched_masks(synthetic, tmp_path):
    model = SeverityClassifier(HEADS[:1], pretrained=False)
    config = {"heads": [HEADS[0].to_dict()], "input_size": 64, "normalization": {"mean": [0.5] * 3, "std": [0.5] * 3}}
    grader = SeverityGrader(model, config)
    rgb = np.zeros((50, 80, 3), np.uint8)
    with pytest.raises(ValueError, match="mask shape"):
        grader.predict([rgb], [np.zeros((80, 50))])
    with pytest.raises(ValueError, match="one mask"):
        grader.predict([rgb, rgb], [None])


def test_forward_exports_to_onnx_with_a_dynamic_batch(tmp_path):
    onnx = pytest.importorskip("onnx")
    model = SeverityClassifier(HEADS[:2], pretrained=False).eval()
    path = tmp_path / "classifier.onnx"
    names = [h.name for h in HEADS[:2]]
    torch.onnx.export(model, (torch.zeros(2, 3, 64, 64), torch.ones(2, 1, 64, 64)), str(path),
                      input_names=["image", "mask"], output_names=names, dynamo=False,
                      dynamic_axes={"image": {0: "batch"}, "mask": {0: "batch"}, **{n: {0: "batch"} for n in names}})
    graph = onnx.load(str(path)).graph
    assert [o.name for o in graph.output] == names
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    image, mask = torch.randn(3, 3, 64, 64), torch.rand(3, 1, 64, 64)
    with torch.no_grad():
        expected = model(image, mask)
    got = session.run(names, {"image": image.numpy(), "mask": mask.numpy()})
    np.testing.assert_allclose(got[0], expected[names[0]].numpy(), rtol=1e-3, atol=1e-4)


def test_coverage_study_runs_every_variant_on_frozen_features(synthetic, capsys):
    from fusion.coverage_study import VARIANTS, main

    assert main([str(synthetic.root), "--imgsz", "64", "--steps", "3"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0].startswith("variant") and len(rows) == 2 + len(VARIANTS)
    for row in rows[1:]:
        scores = [float(v) for v in row.split()[-6:]]
        assert all(0.0 <= v <= 1.0 for v in scores)


def test_contrast_study_scores_every_variant_on_frozen_features(synthetic, capsys):
    from fusion.contrast_study import VARIANTS, main

    assert main([str(synthetic.root), "--imgsz", "64"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0].startswith("hair-loss grade") and len(rows) == 1 + len(VARIANTS)
    for row, label in zip(rows[1:], VARIANTS):
        assert row.strip().startswith(label) and 0.0 <= float(row.split()[-1]) <= 1.0
