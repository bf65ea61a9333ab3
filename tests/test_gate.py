"""The scalp gate: knows a scalp photo from anything else, and a close-up from a head photo."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.images import load_image
from core.weights import WeightsError
from datasets.importer import import_dataset
from datasets.split import stratified_split
from evaluation.non_scalp import package_images, synthetic_non_scalp
from fusion.gate import ScalpGate

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "weights" / "gate.safetensors"


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, scalp_mini, hair_loss_mini):
    """A gate fitted by the CLI on the two small real fixtures (train splits only)."""
    from pipeline import main

    root = tmp_path_factory.mktemp("gate")
    closeups = import_dataset(scalp_mini, root / "scalp")
    heads = import_dataset(hair_loss_mini, root / "hair")
    for folder in (closeups, heads):  # the fixtures are tiny: half of each to fit, half to score
        stratified_split(folder.samples, (0.5, 0.5, 0.0), seed=0)
        folder.save()
    assert main(["-q", "train", "gate", str(closeups.root), "--also", str(heads.root), "--out", str(root / "out")]) == 0
    return root / "out" / "gate.safetensors", closeups, heads


def test_fitted_gate_saves_scores_and_reloads_identically(fitted):
    path, closeups, heads = fitted
    gate = ScalpGate.load(path)
    assert gate.config["training"]["split"] == "train" and gate.config["scores"]["split"] == "val"
    assert set(gate.config["scores"]["false_reject"]) == {closeups.name, heads.name}
    pictures = [load_image(closeups.image_path(s)).rgb for s in closeups.split("val")]
    again = ScalpGate.load(path).predict(pictures)
    assert [r.distance for r in gate.predict(pictures)] == pytest.approx([r.distance for r in again], abs=1e-5)


def test_threshold_is_cross_fitted_so_copies_in_one_group_do_not_shrink_it():
    """Five copies of each picture, one group each: measured against its own group, every
    distance would be 0 and so would the threshold. Cross-fitted, no picture sees its copies."""
    rng = np.random.default_rng(0)
    originals = [rng.integers(0, 256, (96, 96, 3), dtype=np.uint8) for _ in range(6)]
    images = [picture for picture in originals for _ in range(5)]
    groups = [f"photo{i}" for i in range(6) for _ in range(5)]
    views = ["closeup" if i % 2 else "head" for i in range(6) for _ in range(5)]
    gate = ScalpGate.fit(images, views, groups, k=1, quantile=0.5)
    assert gate.bank.shape[0] == len(images)  # every training picture is in the bank
    assert gate.threshold > 0.02  # noise pictures lie close together, but not as close as copies (< 1e-3)
    assert all(r.is_scalp and r.distance < 1e-3 for r in gate.predict(originals))
    with pytest.raises(ValueError, match="at least two subjects"):
        ScalpGate.fit(images[:5], views[:5], groups[:5])  # one photo's copies: nothing to cross-fit against


def test_bundled_gate_accepts_held_out_scalps_and_tells_their_view(scalp_mini, hair_loss_mini, tmp_path):
    """The fixtures' pictures come from the exports' valid splits, which the bundled gate never saw."""
    gate = ScalpGate.load(BUNDLED)
    for source, view in ((scalp_mini, "closeup"), (hair_loss_mini, "head")):
        folder = import_dataset(source, tmp_path / view)
        results = gate.predict([load_image(folder.image_path(s)).rgb for s in folder.samples])
        assert sum(r.is_scalp for r in results) >= len(results) - 1, [r.distance for r in results]
        assert [r.view for r in results] == [view] * len(results)


def test_bundled_gate_rejects_every_non_scalp_picture():
    gate = ScalpGate.load(BUNDLED)
    pictures = package_images() + synthetic_non_scalp()
    assert len(pictures) >= 30
    accepted = [p.name for p, r in zip(pictures, gate.predict([p.rgb for p in pictures])) if r.is_scalp]
    assert accepted == []


def test_bundled_gate_accepts_non_square_photos_of_scalps():
    """Phone photos are 4:3 or 3:4; the training pictures were square. Letterbox bars once made
    the gate decline such crops of the bundled close-ups (closeup_04 and _05 among them)."""
    from fusion.gate import center_square

    gate = ScalpGate.load(BUNDLED)
    crops = []
    for name in ("closeup_04.jpg", "closeup_05.jpg", "head_03_level4.jpg"):
        rgb = load_image(REPO / "samples" / name).rgb
        crops += [rgb[80:560], rgb[:, 80:560]]  # landscape and portrait, no distortion
    results = gate.predict(crops)
    assert all(r.is_scalp for r in results), [round(r.distance, 3) for r in results]
    assert center_square(crops[0]).shape == (224, 224, 3)


def test_scores_are_ordered_by_distance():
    gate = ScalpGate.load(BUNDLED)
    closeup = load_image(REPO / "samples" / "closeup_03.jpg").rgb
    noise = np.random.default_rng(0).integers(0, 255, closeup.shape, dtype=np.uint8)
    near, far = gate.predict([closeup, noise])
    assert near.distance < gate.threshold < far.distance and near.scalp_score > 0.5 > far.scalp_score


def test_tampered_gate_is_refused(tmp_path):
    data = bytearray(BUNDLED.read_bytes())
    data[-100] ^= 0xFF
    copy = tmp_path / "gate.safetensors"
    copy.write_bytes(bytes(data))
    (tmp_path / "gate.json").write_text(BUNDLED.with_suffix(".json").read_text())
    with pytest.raises(WeightsError, match="sha256"):
        ScalpGate.load(copy)
