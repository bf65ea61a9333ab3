"""``python pipeline.py train gate DATASET [--also DATASET...] --out DIR``: fit the scalp gate."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    from fusion.gate import DEFAULT_K, DEFAULT_QUANTILE  # the classifier's arguments import torch too

    parser.add_argument("--also", type=Path, nargs="*", default=[], metavar="DATASET",
                        help="more dataset folders (the gate should see every view it will meet)")
    parser.add_argument("--quantile", type=float, default=DEFAULT_QUANTILE,
                        help="share of training pictures (cross-fitted) the threshold keeps (default %(default)s)")
    parser.add_argument("--k", type=int, default=DEFAULT_K,
                        help="distance to the k-th nearest training picture is the score (default %(default)s)")


def train(args: argparse.Namespace) -> int:
    from datasets.folder import DatasetFolder
    from fusion.gate import fit_gate

    folders = [DatasetFolder.load(p) for p in [args.dataset, *args.also]]
    config = fit_gate(folders, args.out, device=args.device, seed=args.seed, quantile=args.quantile, k=args.k)
    print(json.dumps(config["scores"], indent=2))
    print(f"wrote {Path(args.out) / 'gate.safetensors'} (sha256 {config['sha256'][:12]}...) and gate.json")
    return 0
