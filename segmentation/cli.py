"""``python pipeline.py train segmenter DATASET --out DIR``: the segmentation stage's training options.

``pipeline.py`` adds the common arguments (dataset, ``--out``, ``--device``, ``--seed``) and calls
:func:`add_train_arguments` and :func:`train` here.
"""
from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    from segmentation.options import SUPERVISION, TrainOptions

    defaults = TrainOptions()
    parser.add_argument("--epochs", type=int, default=defaults.epochs,
                        help="most epochs (early stopping may end sooner)")
    parser.add_argument("--batch", type=int, default=defaults.batch_size, help="boxes per training step")
    parser.add_argument("--crop-size", "--imgsz", dest="crop_size", type=int, default=defaults.crop_size,
                        help="side of the square crop around each box (multiple of 32)")
    parser.add_argument("--margin", type=float, default=defaults.margin,
                        help="context around each box per side, as a fraction of its longer side")
    parser.add_argument("--lr", type=float, default=defaults.lr, help="AdamW peak learning rate")
    parser.add_argument("--patience", type=int, default=defaults.patience,
                        help="stop after this many epochs without a better validation Dice")
    parser.add_argument("--supervision", choices=SUPERVISION, default=defaults.supervision,
                        help="auto: outlines where drawn, weak masks from boxes elsewhere; exact: outlines only; "
                             "weak: ignore outlines")
    parser.add_argument("--regions-per-epoch", type=int,
                        help="train on a random subset of regions each epoch (CPU budget)")
    parser.add_argument("--kinds", nargs="+", metavar="KIND", help="only these region kinds (default: all)")
    parser.add_argument("--extra", type=Path, action="append", default=[], metavar="DATASET",
                        help="another dataset folder whose samples join training only (e.g. synthetic); repeatable")
    parser.add_argument("--init", type=Path, help="start from these segmenter weights (fine-tune)")
    parser.add_argument("--workers", type=int, default=defaults.workers, help="data-loading processes")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")


def train(args: argparse.Namespace) -> int:
    import torch

    from core.weights import WeightsError
    from datasets.folder import DatasetFolder
    from segmentation.options import TrainOptions
    from segmentation.train import train_segmenter

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"error: --device {args.device} asked for, but torch sees no CUDA GPU; use --device cpu", file=sys.stderr)
        return 1
    if args.crop_size % 32:
        print(f"error: --crop-size must be a multiple of 32, got {args.crop_size}", file=sys.stderr)
        return 1
    if args.threads:
        torch.set_num_threads(args.threads)
    folder = DatasetFolder.load(args.dataset)
    extra = [DatasetFolder.load(path) for path in args.extra]
    options = TrainOptions(
        epochs=args.epochs, batch_size=args.batch, lr=args.lr, patience=args.patience, crop_size=args.crop_size,
        margin=args.margin, supervision=args.supervision, regions_per_epoch=args.regions_per_epoch, kinds=args.kinds,
        workers=args.workers, device=args.device, seed=args.seed, init=str(args.init) if args.init else None,
    )
    command = "python pipeline.py " + shlex.join(sys.argv[1:])
    try:
        result = train_segmenter(folder, args.out, options, extra=extra, command=command)
    except WeightsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    scores = result.config["scores"]
    print(f"segmenter written to {result.weights} (+ {result.weights.with_suffix('.json').name})")
    if scores["dice"] is None:
        print(f"  {scores['split']}: no outlined regions, so no Dice/IoU (validation Dice against weak masks "
              f"{scores['val_crop_dice']:.4f})")
    else:
        print(f"  {scores['split']}: {scores['n_regions']} regions, "
              f"Dice {scores['dice']:.4f} / IoU {scores['iou']:.4f}; "
              f"box baseline Dice {scores['dice_box_baseline']:.4f}, "
              f"threshold baseline Dice {scores['dice_threshold_baseline']:.4f}")
    return 0
