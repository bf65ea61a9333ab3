"""``python pipeline.py train detector DATASET --out DIR``: options and entry point."""
from __future__ import annotations

import argparse
from pathlib import Path

from detection.settings import TRAIN_DEFAULTS as DEFAULTS


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=DEFAULTS["model"], help="YOLO model yaml to train from (default %(default)s); "
                        "mobilenet_v2-yolo.yaml puts the neck on a frozen ImageNet MobileNetV2")
    parser.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    parser.add_argument("--imgsz", type=int, default=DEFAULTS["imgsz"], help="training and inference size (default %(default)s)")
    parser.add_argument("--batch", type=int, default=DEFAULTS["batch"])
    parser.add_argument("--workers", type=int, default=DEFAULTS["workers"], help="data loader processes (0-2 on a laptop)")
    parser.add_argument("--patience", type=int, default=DEFAULTS["patience"], help="epochs without val improvement before stopping")
    parser.add_argument("--time", type=float, help="train for this many hours instead of --epochs (ultralytics fits the "
                        "learning-rate schedule to it, so the epoch count depends on the machine)")
    parser.add_argument("--init", type=Path, help="start from your own YOLO checkpoint (.pt)")
    parser.add_argument("--init-sha256", help="sha256 the --init file must have")


def train(args: argparse.Namespace) -> int:
    from datasets.folder import DatasetFolder
    from detection.model import table
    from detection.train import train_detector

    config = train_detector(
        DatasetFolder.load(args.dataset), args.out, model=args.model, epochs=args.epochs, imgsz=args.imgsz,
        batch=args.batch, workers=args.workers, patience=args.patience, device=args.device, seed=args.seed,
        init=args.init, init_sha256=args.init_sha256, **({"time": args.time} if args.time else {}),
    )
    print(table(config["scores"]))
    print(f"wrote {args.out / 'detector.pt'} (sha256 {config['sha256'][:12]}...) and detector.json")
    return 0
