"""Can the heads learn area-defined grades from the coverage? A frozen-backbone study.

    python -m fusion.coverage_study SYNTH [--imgsz 256] [--steps 1100]

SYNTH is a split synthetic dataset folder (``data synth --n 900 --seed 0``, ``data split``),
whose five lesion grades are exact functions of each kind's share of the frame. The backbone
(ImageNet EfficientNet-Lite0, not trained) turns every train and val picture into features once;
then only the heads train, with AdamW at 3e-4, batch 16, cosine decay, focal loss, image-feature
dropout 0.2, for about as many steps as 30 epochs of ``train classifier`` take, for each way the
coverage can reach the heads:

- ``sqrt x N``: sqrt(coverage) entered N times beside the image features (the first design);
- ``log gain G``: log coverage and the mask-known flag through :class:`fusion.heads.GradeHead`'s
  own layer, gain G.

It prints the val macro-F1 of each indicator head, and first, as the ceiling, a depth-3 decision
tree on the six coverages alone. Each variant takes about a minute on one CPU core.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from sklearn.tree import DecisionTreeClassifier
from tqdm import tqdm

from core.taxonomy import INDICATORS
from datasets.folder import DatasetFolder
from evaluation.classification import macro_f1
from fusion.data import FusionDataset, LetterboxCache, collect_examples
from fusion.heads import GradeHead, default_heads
from fusion.losses import multi_head_loss
from fusion.model import MaskGuidedPooling, SeverityClassifier
from fusion.train import _lr_lambda, mask_channels

VARIANTS = (("sqrt", 1, 1.0), ("sqrt", 1280, 1.0), ("log", 1, 1.0), ("log", 1, 1280.0), ("log", 1, 4096.0),
            ("log", 1, 16384.0))


def frozen_features(model: SeverityClassifier, folder: DatasetFolder, split: str, size: int, channels: list[str]):
    """Per picture: pooled image features, coverage inputs of both encodings, labels (-1 unknown)."""
    heads = list(model.head_specs)
    examples = collect_examples([folder], split, heads, {})
    dataset = FusionDataset(examples, LetterboxCache(examples, size, desc=f"cache {split}", channels=channels),
                            heads, model.mean, model.std)
    image, cover, labels = [], {"sqrt": [], "log": []}, []
    image_pool = MaskGuidedPooling(model.pooling.stride)  # no coverage: the image part of every variant
    pools = {c: MaskGuidedPooling(model.pooling.stride, coverage=c) for c in cover}
    with torch.no_grad():
        for index in tqdm(range(len(dataset)), desc=f"features {split}", leave=False):
            rgb, mask, target = dataset[index]
            image.append(image_pool(model.backbone(rgb[None]), mask[None]))
            for name, pool in pools.items():
                cover[name].append(torch.cat(pool.coverage_features(mask[None]), dim=1))
            labels.append(target)
    return torch.cat(image), {k: torch.cat(v) for k, v in cover.items()}, torch.stack(labels)


def train_heads(heads, image, cover, labels, coverage: str, copies: int, gain: float, steps: int,
                lr: float = 3e-4, seed: int = 0):
    """Heads as the classifier builds them: sqrt copies are plain inputs, log goes through the gained layer."""
    cover = cover.repeat_interleave(copies, dim=1)
    n_coverage = cover.shape[1] if coverage == "log" else 0
    torch.manual_seed(seed)
    layers = torch.nn.ModuleList(GradeHead(image.shape[1] + cover.shape[1], h.n_outputs, 0.2, n_coverage, gain)
                                 for h in heads)
    optimizer = torch.optim.AdamW(layers.parameters(), lr=lr, weight_decay=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(steps, 19))
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.cat([image, cover], dim=1)
    layers.train()
    for _ in range(steps):
        rows = torch.randint(0, len(inputs), (16,), generator=generator)
        logits = {h.name: layer(inputs[rows]) for h, layer in zip(heads, layers)}
        loss, _ = multi_head_loss(logits, {h.name: labels[rows, j] for j, h in enumerate(heads)},
                                  {h.name: h.loss for h in heads})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    return layers.eval()


def macro_f1s(predict, labels, heads) -> list[float]:
    """Each indicator head's val macro-F1, as ``train classifier`` scores it."""
    return [macro_f1(labels[:, j].numpy(), predict(j)) for j, head in enumerate(heads) if head.name in INDICATORS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--imgsz", type=int, default=256)
    parser.add_argument("--steps", type=int, default=1100)
    args = parser.parse_args(argv)
    folder = DatasetFolder.load(args.dataset)
    channels = mask_channels([folder], "kinds")
    heads = default_heads({})
    model = SeverityClassifier(heads, mask_channels=channels).eval()
    train = frozen_features(model, folder, "train", args.imgsz, channels)
    val = frozen_features(model, folder, "val", args.imgsz, channels)
    names = [h.name for h in heads if h.name in INDICATORS]
    print(f"{'variant':18s} " + " ".join(f"{n[:10]:>10s}" for n in names) + "       mean")

    def report(label: str, scores: list[float]) -> None:
        print(f"{label:18s} " + " ".join(f"{v:10.3f}" for v in scores) + f" {np.mean(scores):10.3f}", flush=True)

    trees = [DecisionTreeClassifier(max_depth=3, random_state=0).fit(train[1]["sqrt"], train[2][:, j])
             for j in range(len(heads))]
    report("tree on coverage", macro_f1s(lambda j: trees[j].predict(val[1]["sqrt"]), val[2], heads))
    for coverage, copies, gain in VARIANTS:
        layers = train_heads(heads, train[0], train[1][coverage], train[2], coverage, copies, gain, args.steps)
        inputs = torch.cat([val[0], val[1][coverage].repeat_interleave(copies, dim=1)], dim=1)
        with torch.no_grad():
            predictions = [layer(inputs).argmax(1).numpy() for layer in layers]
        label = f"{coverage} x {copies}" if coverage == "sqrt" else f"log gain {gain:g}"
        report(label, macro_f1s(lambda j, p=predictions: p[j], val[2], heads))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
