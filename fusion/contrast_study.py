"""Which pooled features let a linear head read the hair-loss grade? A frozen-backbone probe.

    python -m fusion.contrast_study SYNTH [--imgsz 256]

SYNTH is a split synthetic dataset folder (``data synth --n 900 --seed 0``, ``data split``).
Its hair-loss grade is the share of follicles missing inside the thinning patch, so reading it
means comparing the patch with the hair around it. The backbone (ImageNet EfficientNet-Lite0,
not trained) turns every train and val picture into features once, with the per-kind
ground-truth masks; then one multinomial logistic regression per variant (features
standardized on train, C = 0.01) learns the 0-3 grade on train and is scored on val. C was
picked by a first look at val (the best of 0.01, 0.1 and 1 for most variants), so the scores
lean a little optimistic, all alike:

- ``last map``: the global and per-kind mask-weighted averages of the last feature map, what
  the heads get without ``--contrast-blocks``;
- ``+ every kind's contrasts``: beside them, :class:`fusion.model.MaskContrast` of blocks 2 and
  4 (Lite0's stride 8 and 16), each kind's average inside its mask minus outside it: what
  every head gets with ``--contrast-blocks 2 4``;
- ``patch contrasts``: the thinning patch's own contrasts alone: what the hair-loss head gets
  with ``--contrast-heads hair_loss``; also per block, and beside the global average.

Every variant also gets the kinds' log coverage and known flags. It prints the val macro-F1
of the hair-loss head per variant; a minute or two on one CPU core.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from datasets.folder import DatasetFolder
from evaluation.classification import macro_f1
from fusion.data import FusionDataset, LetterboxCache, collect_examples
from fusion.heads import default_heads
from fusion.model import MaskContrast, MaskGuidedPooling, SeverityClassifier, staged_features, tapped_geometry
from fusion.train import mask_channels

TAPS = (2, 4)
VARIANTS = {
    "last map": ("last",),
    "+ every kind's contrasts": ("last", "block 2", "block 4"),
    "patch contrasts": ("patch 2", "patch 4"),
    "patch contrast, block 2": ("patch 2",),
    "patch contrast, block 4": ("patch 4",),
    "global + patch contrasts": ("global", "patch 2", "patch 4"),
}


def frozen_features(model: SeverityClassifier, folder: DatasetFolder, split: str, size: int, channels: list[str]):
    """Per picture: each feature group of VARIANTS (plus coverage) and the hair-loss label (-1 unknown);
    ``block B`` holds every kind's contrasts of block B, ``patch B`` the thinning patch's."""
    heads = list(model.head_specs)
    examples = collect_examples([folder], split, heads, {})
    dataset = FusionDataset(examples, LetterboxCache(examples, size, desc=f"cache {split}", channels=channels),
                            heads, model.mean, model.std)
    pooling = MaskGuidedPooling(model.pooling.stride, coverage_copies=1)
    n_coverage = MaskGuidedPooling.n_coverage(len(channels), 1, "log")
    # Fresh statistics (mean 0, variance 1): the raw contrasts; the probe standardizes them itself.
    geometry = tapped_geometry(model.backbone, TAPS)
    contrasts = [MaskContrast(stride, width, len(channels)).eval() for width, stride in geometry]
    column, patch = [h.name for h in heads].index("hair_loss"), channels.index("hair_loss")
    groups: dict[str, list[torch.Tensor]] = {"last": [], "global": [], "coverage": [],
                                             **{f"{g} {b}": [] for b in TAPS for g in ("block", "patch")}}
    labels = []
    with torch.no_grad():
        for index in tqdm(range(len(dataset)), desc=f"features {split}", leave=False):
            rgb, mask, target = dataset[index]
            last, tapped = staged_features(model.backbone, rgb[None], TAPS)
            pooled = pooling(last, mask[None])
            groups["last"].append(pooled[:, :-n_coverage])
            groups["global"].append(pooled[:, :last.shape[1]])
            groups["coverage"].append(pooled[:, -n_coverage:])
            for block, module, features, (width, _) in zip(TAPS, contrasts, tapped, geometry):
                contrast = module(features, mask[None])
                groups[f"block {block}"].append(contrast)
                groups[f"patch {block}"].append(contrast[:, patch * width:(patch + 1) * width])
            labels.append(int(target[column]))
    return {k: torch.cat(v).numpy() for k, v in groups.items()}, np.array(labels)


def probe(train: tuple[dict, np.ndarray], val: tuple[dict, np.ndarray], groups: tuple[str, ...]) -> float:
    """Val macro-F1 of a logistic regression on ``groups`` (+ coverage), fit on the labelled train pictures."""
    (train_x, train_y), (val_x, val_y) = train, val

    def stack(x: dict) -> np.ndarray:
        return np.concatenate([x[g] for g in (*groups, "coverage")], axis=1)

    keep_train, keep_val = train_y >= 0, val_y >= 0
    scaler = StandardScaler().fit(stack(train_x)[keep_train])
    classifier = LogisticRegression(C=0.01, max_iter=5000).fit(scaler.transform(stack(train_x)[keep_train]),
                                                               train_y[keep_train])
    return macro_f1(val_y[keep_val], classifier.predict(scaler.transform(stack(val_x)[keep_val])))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--imgsz", type=int, default=256)
    args = parser.parse_args(argv)
    folder = DatasetFolder.load(args.dataset)
    channels = mask_channels([folder], "kinds")
    if "hair_loss" not in channels:
        parser.error(f"{args.dataset} outlines no thinning patches (hair_loss regions); use a synthetic set")
    model = SeverityClassifier(default_heads({}), mask_channels=channels).eval()
    train = frozen_features(model, folder, "train", args.imgsz, channels)
    val = frozen_features(model, folder, "val", args.imgsz, channels)
    print(f"hair-loss grade, val macro-F1 ({int((val[1] >= 0).sum())} pictures, {args.imgsz} px, backbone frozen)")
    for label, groups in VARIANTS.items():
        print(f"  {label:24s} {probe(train, val, groups):.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
