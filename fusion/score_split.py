"""Score a trained classifier on any split of a dataset, with the ground-truth masks it trained on.

    python -m fusion.score_split WEIGHTS DATASET [--split test] [--out scores.json]

WEIGHTS is a ``train classifier`` output folder (or its ``classifier.safetensors``); DATASET a
split dataset folder. The classifier sees each picture as in training (letterboxed, with the
soft masks drawn from the dataset's own outlines) and its stored temperatures; derived grades
use the cuts stored with it. ``train classifier`` selects its epoch and fits its temperatures
on ``val``, so its val scores lean optimistic; a split it never saw (``test``) gives the
held-out figure. ``python pipeline.py evaluate`` scores the whole pipeline instead (detected
boxes, segmented masks).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from core.io import atomic_write_json
from datasets.folder import DatasetFolder
from evaluation.run import fit_derived_grades
from fusion.data import FusionDataset, LetterboxCache, collect_examples
from fusion.heads import HeadSpec
from fusion.predict import load_classifier
from fusion.scoring import score_heads
from fusion.train import WEIGHTS_NAME, labels_array, predict_logits


def score_split(weights: Path, dataset: Path, split: str = "test", device: str = "cpu") -> dict[str, Any]:
    """Calibrated scores (``score_heads``' shape) of the classifier at ``weights`` on ``split``."""
    weights = Path(weights)
    if weights.is_dir():
        weights = weights / WEIGHTS_NAME
    model, config = load_classifier(weights, device)
    folder = DatasetFolder.load(dataset)
    heads = [HeadSpec.from_dict(h) for h in config["heads"]]
    derived, _ = fit_derived_grades(folder, config)
    examples = collect_examples([folder], split, heads, {folder.name: derived} if derived else {})
    if not examples:
        raise ValueError(f"no labelled images in the {split!r} split of {dataset}")
    channels = (config.get("mask") or {}).get("channels")
    cache = LetterboxCache(examples, int(config["input_size"]), desc=f"cache {split}", channels=channels)
    normalization = config["normalization"]
    use_masks = bool((config.get("mask") or {}).get("trained_with_masks", True))
    data = FusionDataset(examples, cache, heads, tuple(normalization["mean"]), tuple(normalization["std"]),
                         None, 0.0, use_masks)
    logits = predict_logits(model, data, torch.device(device), desc=split)
    scores = score_heads(heads, logits, labels_array(data), config.get("temperatures"))
    return {"weights": str(weights), "dataset": str(dataset), "split": split, "n": len(examples), **scores}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path, help="train classifier output folder or its classifier.safetensors")
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, help="write the scores here as JSON")
    args = parser.parse_args(argv)
    try:
        scores = score_split(args.weights, args.dataset, args.split, args.device)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.out:
        atomic_write_json(args.out, scores)
    print(f"{scores['n']} {args.split} pictures of {args.dataset}")
    if "indicators" in scores:
        ind = scores["indicators"]
        per = ", ".join(f"{k} {v['macro_f1']:.3f}" for k, v in ind.items() if isinstance(v, dict))
        print(f"  indicators: overall macro-F1 {ind['overall_macro_f1']:.3f}, Hamming {ind['hamming']:.3f} ({per})")
    for key, label in (("hair_loss", "Low/Mid/High"), ("stage", "stages")):
        if key in scores:
            s = scores[key]
            extra = f", QWK {s['qwk']:.3f}" if s.get("qwk") is not None else ""
            print(f"  {label}: accuracy {s['accuracy']:.3f}, macro-F1 {s['macro_f1']:.3f}, ECE {s['ece']:.3f}{extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
