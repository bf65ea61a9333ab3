"""Do hair measurements help grade hair loss? An ablation on synthetic close-ups.

Small logistic regressions predict the synthetic ``hair_loss`` indicator grade (0-3) and the
Low/Mid/High grade from (a) the meter's hair features [count, median thickness, thin ratio],
(b) frozen EfficientNet-Lite0 ImageNet features pooled over the whole picture, (c) both.
Train and validation pictures come from different synthetic subjects. This says whether the
features carry the signal the generator put in; it says nothing about real scalps.

    python -m hair.ablation --weights W --out /work/scratch/hair/ablation --n 400 --seed 7
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from core.backbones import create_backbone
from core.images import letterbox
from hair.meter import HairMeter
from hair.units import SYNTHETIC_UM_PER_PX

log = logging.getLogger(__name__)

HAIR_FEATURES = ("count", "median_thickness_um", "thin_ratio")
LOW_MID_HIGH = {0: 0, 1: 1, 2: 2, 3: 2}  # the generator's 0-3 grade -> low/mid/high


def extract(meter: HairMeter, dataset_dir: Path, out: Path, image_size: int = 256) -> Path:
    """Hair features, relative thin ratio, pooled Lite0 features, grades and subjects per picture."""
    from datasets.folder import DatasetFolder

    folder = DatasetFolder.load(dataset_dir)
    backbone = create_backbone("efficientnet_lite0", num_classes=0).eval()
    rows = {"hair": [], "thin_relative": [], "image": [], "grade": [], "subject": [], "true_count": []}
    for sample in tqdm(folder.samples, desc="features", unit="img"):
        rgb = cv2.cvtColor(cv2.imread(str(folder.image_path(sample))), cv2.COLOR_BGR2RGB)
        measurement = meter.measure(rgb, um_per_px=SYNTHETIC_UM_PER_PX)
        record = measurement.to_dict()
        median = record["thickness_um"]["median"] or 0.0
        rows["hair"].append([record["count"], median, record["thin_ratio"] or 0.0])
        widths = measurement.widths
        rows["thin_relative"].append(float(np.mean(widths < 0.6 * median)) if len(widths) else 0.0)
        boxed, _, _ = letterbox(rgb, image_size)
        tensor = torch.from_numpy(boxed).permute(2, 0, 1)[None].float().div(255.0).sub(0.5).div(0.5)
        with torch.inference_mode():
            rows["image"].append(backbone(tensor)[0].numpy())
        rows["grade"].append(int(sample.indicators["hair_loss"]))
        rows["subject"].append(str(sample.meta.get("subject")))
        rows["true_count"].append(int(sample.meta["hair"]["count"]))
    path = out / "features.npz"
    np.savez(path, hair=np.array(rows["hair"], np.float64), thin_relative=np.array(rows["thin_relative"]),
             image=np.array(rows["image"], np.float32), grade=np.array(rows["grade"]),
             subject=np.array(rows["subject"]), true_count=np.array(rows["true_count"]))
    return path


def compare(features: Path, val_share: float = 0.3, seed: int = 0) -> dict:
    """Accuracy, macro-F1 and QWK of each feature set, split by subject, plus baselines."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = np.load(features)
    subjects = np.unique(data["subject"])
    rng = np.random.default_rng(seed)
    held_out = set(rng.choice(subjects, size=max(1, round(val_share * len(subjects))), replace=False).tolist())
    val = np.array([s in held_out for s in data["subject"]])
    hair = data["hair"]
    sets = {
        "hair[count,median_um,thin_ratio]": (hair, 1.0),
        "hair+thin_relative": (np.column_stack([hair, data["thin_relative"]]), 1.0),
        "lite0_pooled": (data["image"], 0.05),
        "lite0_pooled+hair": (np.column_stack([data["image"], hair, data["thin_relative"]]), 0.05),
    }
    results: dict = {"n_train": int((~val).sum()), "n_val": int(val.sum()),
                     "thin_ratio_30um_nonzero_share": float(np.mean(hair[:, 2] > 0))}
    for target_name, target in (("grade_0_3", data["grade"]), ("low_mid_high", np.vectorize(LOW_MID_HIGH.get)(data["grade"]))):
        labels = sorted(np.unique(target))
        train_y, val_y = target[~val], target[val]
        majority = np.bincount(train_y).argmax()
        out = {"majority": _scores(val_y, np.full_like(val_y, majority), labels),
               "chance_accuracy": 1.0 / len(labels)}
        for name, (x, c) in sets.items():
            model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
            model.fit(x[~val], train_y)
            out[name] = _scores(val_y, model.predict(x[val]), labels)
        results[target_name] = out
    results["count_vs_true_count_corr"] = float(np.corrcoef(hair[:, 0], data["true_count"])[0, 1])
    results["count_vs_grade_spearman"] = float(_spearman(hair[:, 0], data["grade"]))
    return results


def _scores(truth: np.ndarray, predicted: np.ndarray, labels: list[int]) -> dict:
    from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score

    return {
        "accuracy": round(float(accuracy_score(truth, predicted)), 3),
        "macro_f1": round(float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)), 3),
        "qwk": round(float(cohen_kappa_score(truth, predicted, weights="quadratic")), 3),
    }


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ranks = lambda v: np.argsort(np.argsort(v))
    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_num_threads(2)
    from datasets.synth import generate

    args.out.mkdir(parents=True, exist_ok=True)
    features = args.out / "features.npz"
    if not features.exists():
        dataset = args.out / "synth"
        if not (dataset / "dataset.jsonl").exists():
            generate(args.n, dataset, seed=args.seed)
        extract(HairMeter.load(args.weights), dataset, args.out)
    results = compare(features)
    (args.out / "ablation.json").write_text(json.dumps(results, indent=2))
    log.info("%s", json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
