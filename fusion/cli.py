"""``python pipeline.py train classifier DATASET [--also DATASET ...] --out DIR``.

``pipeline.py`` adds the common arguments (``dataset``, ``--out``, ``--device``, ``--seed``)
and calls :func:`add_train_arguments` and :func:`train`. Several dataset folders train one
model together (e.g. hair-loss-levels head photos and scalp-data close-ups): name the first
as ``DATASET`` and the others with ``--also``.
"""
from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    from core.backbones import backbone_names
    from fusion.data import GEOMETRIES
    from fusion.heads import HEAD_LOSSES
    from fusion.losses import ALPHA_MODES
    from fusion.model import COVERAGE_ENCODINGS
    from fusion.train import TrainSettings

    defaults = TrainSettings()
    parser.add_argument("--also", type=Path, action="append", default=[], metavar="DATASET",
                        help="another dataset folder to train on together (repeatable)")
    parser.add_argument("--backbone", default=defaults.backbone, choices=backbone_names(), help="backbone from the registry")
    parser.add_argument("--imgsz", type=int, default=defaults.imgsz, help="letterbox side in pixels (multiple of 32)")
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help="most epochs (early stopping may end sooner)")
    parser.add_argument("--batch", type=int, default=defaults.batch)
    parser.add_argument("--lr", type=float, default=defaults.lr, help="AdamW learning rate")
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    parser.add_argument("--patience", type=int, default=defaults.patience, help="epochs without a better val score before stopping")
    parser.add_argument("--loss", default=defaults.loss, choices=HEAD_LOSSES, help="focal (softmax heads) or corn (ordinal heads)")
    parser.add_argument("--gamma", type=float, default=defaults.gamma, help="focal loss gamma")
    parser.add_argument("--alpha", default=defaults.alpha, choices=ALPHA_MODES, help="per-class loss weights from train label counts")
    parser.add_argument("--dropout", type=float, default=defaults.dropout)
    parser.add_argument("--freeze-blocks", type=int, default=defaults.freeze_blocks,
                        help="keep the stem and this many early backbone stages fixed (faster on CPU)")
    parser.add_argument("--mask-dropout", type=float, default=defaults.mask_dropout,
                        help="share of training images whose mask is hidden, so grading without a mask works too")
    parser.add_argument("--no-masks", action="store_true", help="image-only ablation: never show the model a lesion mask")
    parser.add_argument("--no-derived-grades", action="store_true",
                        help="do not derive 0-3 grades from lesion area for sets that outline but do not grade")
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--geometry", default=defaults.geometry, choices=GEOMETRIES,
                        help="geometric augmentation: free (rotation, zoom, --reframe) or area (flips and quarter "
                             "turns only, which keep every lesion's share of the frame: for area-defined grades)")
    parser.add_argument("--reframe", type=float, default=defaults.reframe,
                        help="share of square pictures shown as letterboxed 4:3 / 3:4 photos (augmentation)")
    parser.add_argument("--mask-channels", default=defaults.mask_channels, choices=("union", "kinds"),
                        help="union: one mask of all lesions; kinds: one mask per outlined lesion kind, each also "
                             "giving its coverage (area-defined grades need it)")
    parser.add_argument("--coverage", default=defaults.coverage, choices=COVERAGE_ENCODINGS,
                        help="with --mask-channels kinds: how each kind's coverage is encoded: log (log10 area share "
                             "with a mask-known flag, on a gained layer) or sqrt (the first design, entered in copies)")
    parser.add_argument("--coverage-gain", type=float, default=defaults.coverage_gain,
                        help="with --coverage log: gain on the heads' coverage layer (its learning rate is gain x lr)")
    parser.add_argument("--coverage-copies", type=int, default=defaults.coverage_copies,
                        help="with --coverage sqrt: times each kind's coverage enters the heads "
                             "(default: the backbone's channel count)")
    parser.add_argument("--contrast-blocks", type=int, nargs="*", default=list(defaults.contrast_blocks), metavar="BLOCK",
                        help="backbone blocks whose average inside each mask minus outside it also feeds the heads "
                             "(Lite0: 2 = stride 8, 4 = stride 16; for grades that compare a region with its "
                             "surroundings, such as hair loss); none by default")
    parser.add_argument("--contrast-heads", nargs="*", default=list(defaults.contrast_heads), metavar="HEAD",
                        help="with --contrast-blocks and --mask-channels kinds: heads (named like a lesion kind, "
                             "e.g. hair_loss) that read only their own kind's contrasts and the coverage")
    parser.add_argument("--ema", type=float, default=defaults.ema, metavar="DECAY",
                        help="validate, select and write an exponential moving average of the weights with this "
                             "decay per step (e.g. 0.995, about 200 steps); 0 (default): the trained weights")
    parser.add_argument("--max-batches", type=int, default=None, help=argparse.SUPPRESS)


def settings_from_args(args: argparse.Namespace):
    from fusion.train import TrainSettings

    if args.imgsz % 32:
        raise ValueError(f"--imgsz {args.imgsz}: use a multiple of 32 (the backbone's stride)")
    if not 0.0 <= args.ema < 1.0:
        raise ValueError(f"--ema {args.ema}: use a decay in [0, 1), e.g. 0.995 (0 turns the average off)")
    return TrainSettings(
        backbone=args.backbone, imgsz=args.imgsz, epochs=args.epochs, batch=args.batch, lr=args.lr,
        weight_decay=args.weight_decay, patience=args.patience, loss=args.loss, gamma=args.gamma, alpha=args.alpha,
        dropout=args.dropout, freeze_blocks=args.freeze_blocks, use_masks=not args.no_masks,
        mask_dropout=args.mask_dropout, derive_grades=not args.no_derived_grades, augment=not args.no_augment,
        geometry=args.geometry, reframe=args.reframe, mask_channels=args.mask_channels, coverage_copies=args.coverage_copies,
        coverage=args.coverage, coverage_gain=args.coverage_gain, contrast_blocks=tuple(args.contrast_blocks),
        contrast_heads=tuple(args.contrast_heads), ema=args.ema,
        device=args.device, seed=args.seed, max_batches=args.max_batches,
    )


def train(args: argparse.Namespace) -> int:
    from core.backbones import BackboneError
    from core.weights import WeightsError
    from fusion.train import WEIGHTS_NAME, train_classifier

    try:
        settings = settings_from_args(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    command = "python pipeline.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[0].endswith("pipeline.py") else None
    try:
        config = train_classifier([args.dataset, *args.also], args.out, settings, command=command)
    except (BackboneError, WeightsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    scores = config["val_scores"]
    print(f"classifier written to {Path(args.out) / WEIGHTS_NAME} (best epoch {config['epoch']}, "
          f"{config['training']['seconds_total'] / 60:.1f} min)")
    if "hair_loss" in scores:
        h = scores["hair_loss"]
        print(f"  val Low/Mid/High: accuracy {h['accuracy']:.3f}, macro-F1 {h['macro_f1']:.3f}, ECE {h['ece']:.3f}")
    if "stage" in scores:
        s = scores["stage"]
        print(f"  val {s['scale']} stages: accuracy {s['accuracy']:.3f}, MAE {s['mae']:.3f}, QWK {s['qwk']:.3f}")
    if "indicators" in scores:
        ind = scores["indicators"]
        per = ", ".join(f"{k} {v['macro_f1']:.3f}" for k, v in ind.items() if isinstance(v, dict))
        print(f"  val indicators: overall macro-F1 {ind['overall_macro_f1']:.3f}, Hamming {ind['hamming']:.3f} ({per})")
    if config["untrained_heads"]:
        print(f"  heads without training labels (their grades mean nothing): {', '.join(config['untrained_heads'])}")
    return 0
