#!/usr/bin/env python
"""scalpscope: find, outline and grade scalp problems in a photo (a screening aid, not a diagnosis).

The command line is the front door; ``python pipeline.py --help`` lists the jobs.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger("scalpscope")

DISCLAIMER = "scalpscope is a screening aid, not a diagnosis: see a dermatologist for medical advice."


class CommandError(RuntimeError):
    """A failure with a message meant for people; the CLI prints it and exits 1."""


# --------------------------------------------------------------------------- data commands
def cmd_data_import(args: argparse.Namespace) -> int:
    from datasets.importer import import_dataset

    folder = import_dataset(args.src, args.out, fmt=args.format, relabel=args.relabel, name=args.name, force=args.force)
    counts = folder.class_histogram()
    print(f"imported {len(folder)} images into {args.out}")
    for label, count in sorted(counts.items()):
        print(f"  {label:<40} {count:>6}")
    return 0


def cmd_data_pull(args: argparse.Namespace) -> int:
    from datasets.pull import pull

    folder = pull(args.workspace, args.project, args.version, args.out, fmt=args.format, relabel=args.relabel)
    print(f"downloaded and imported {len(folder)} images into {args.out}")
    return 0


def cmd_data_split(args: argparse.Namespace) -> int:
    from datasets.folder import DatasetFolder
    from datasets.split import split_report, stratified_split

    folder = DatasetFolder.load(args.dataset)
    if args.keep_existing and all(s.split for s in folder.samples):
        report = split_report(folder.samples)
        print("every image already has a split (--keep-existing); nothing changed")
    else:
        report = stratified_split(folder.samples, tuple(args.ratios), seed=args.seed)
        folder.save()
        print(f"split {len(folder)} images {args.ratios} (seed {args.seed}), grouped by subject / source photo")
    print(report.table())
    return 0


def cmd_data_synth(args: argparse.Namespace) -> int:
    from datasets.synth import generate

    folder = generate(args.n, args.out, seed=args.seed)
    print(f"wrote {len(folder)} synthetic close-ups to {args.out} (test fixture, not real-world data)")
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from datasets.check import check_dataset
    from datasets.folder import DatasetFolder

    report = check_dataset(DatasetFolder.load(args.dataset), decode=not args.fast)
    print(report.table())
    if args.json:
        from core.io import atomic_write_json

        atomic_write_json(args.json, {"n_images": report.n_images, "problems": [asdict(p) for p in report.problems]})
        print(json.dumps({"errors": len(report.errors), "warnings": len(report.warnings), "json": str(args.json)}))
    return 1 if report.errors else 0


def not_built(name: str, issue: int):
    def handler(args: argparse.Namespace) -> int:
        raise CommandError(f"'{name}' is not built yet (tracked in issue {issue})")

    return handler


def _add_stage_cli(parser: argparse.ArgumentParser, package: str, stage: str, issue: int) -> None:
    """Each stage package owns its training options: ``<package>/cli.py`` adds and runs them."""
    import importlib

    try:
        cli = importlib.import_module(f"{package}.cli")
    except ModuleNotFoundError as err:
        if err.name != f"{package}.cli":
            raise
        parser.set_defaults(handler=not_built(f"train {stage}", issue))
        return
    cli.add_train_arguments(parser)
    parser.set_defaults(handler=cli.train)


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipeline.py",
        description="scalpscope: detect, segment and grade scalp problems. " + DISCLAIMER,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    analyze = sub.add_parser("analyze", help="analyze images or folders (resumable batch job)")
    analyze.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    analyze.add_argument("--out", type=Path, required=True)
    analyze.set_defaults(handler=not_built("analyze", 7))

    evaluate = sub.add_parser("evaluate", help="score every stage on a dataset split")
    evaluate.add_argument("dataset", type=Path)
    evaluate.add_argument("--out", type=Path, required=True)
    evaluate.set_defaults(handler=not_built("evaluate", 8))

    train = sub.add_parser("train", help="train a stage on a dataset folder")
    stages = train.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for stage, package, issue in (("detector", "detection", 4), ("segmenter", "segmentation", 5), ("classifier", "fusion", 6)):
        stage_parser = stages.add_parser(stage, help=f"train the {stage}")
        stage_parser.add_argument("dataset", type=Path, help="dataset folder (see 'data import')")
        stage_parser.add_argument("--out", type=Path, required=True, help="folder for the weights, config and logs")
        stage_parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
        stage_parser.add_argument("--seed", type=int, default=0)
        _add_stage_cli(stage_parser, package, stage, issue)

    data = sub.add_parser("data", help="import, pull, split, synthesize and check datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")

    from datasets.importer import FORMATS

    imp = data_sub.add_parser("import", help="import a Roboflow/AI-Hub/folder export into a dataset folder")
    imp.add_argument("src", type=Path)
    imp.add_argument("--out", type=Path, required=True)
    imp.add_argument("--format", default="auto", choices=["auto", *FORMATS])
    imp.add_argument("--relabel", type=Path, help="relabel map YAML (default: the shipped map that knows the classes)")
    imp.add_argument("--name", help="dataset name recorded in the samples (default: the source folder name)")
    imp.add_argument("--force", action="store_true", help="replace an existing --out folder")
    imp.set_defaults(handler=cmd_data_import)

    pull = data_sub.add_parser("pull", help="download a Roboflow Universe export (needs ROBOFLOW_API_KEY and network)")
    pull.add_argument("--workspace", required=True)
    pull.add_argument("--project", required=True)
    pull.add_argument("--version", required=True, type=int)
    pull.add_argument("--out", type=Path, required=True)
    pull.add_argument("--format", default="yolov8", help="Roboflow export format: yolov8 (default), coco, folder")
    pull.add_argument("--relabel", type=Path)
    pull.set_defaults(handler=cmd_data_pull)

    split = data_sub.add_parser("split", help="stratified, grouped train/val/test split")
    split.add_argument("dataset", type=Path)
    split.add_argument("--ratios", nargs=3, type=float, default=[0.7, 0.15, 0.15], metavar=("TRAIN", "VAL", "TEST"))
    split.add_argument("--seed", type=int, default=0)
    split.add_argument("--keep-existing", action="store_true", help="keep the export's own split when every image has one")
    split.set_defaults(handler=cmd_data_split)

    synth = data_sub.add_parser("synth", help="generate synthetic close-ups with exact labels (tests and smoke demo)")
    synth.add_argument("--n", type=int, default=100)
    synth.add_argument("--out", type=Path, required=True)
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(handler=cmd_data_synth)

    check = data_sub.add_parser("check", help="validate a dataset folder (exit 1 on errors)")
    check.add_argument("dataset", type=Path)
    check.add_argument("--fast", action="store_true", help="skip decoding every image")
    check.add_argument("--json", type=Path, help="also write every problem to this JSON file")
    check.set_defaults(handler=cmd_data_check)

    export = sub.add_parser("export", help="export models for fast inference")
    export.add_argument("format", choices=["onnx"])
    export.add_argument("--weights", type=Path)
    export.add_argument("--out", type=Path, required=True)
    export.set_defaults(handler=not_built("export onnx", 10))

    demo = sub.add_parser("demo", help="local web demo (Gradio)")
    demo.add_argument("--port", type=int, default=7860)
    demo.set_defaults(handler=not_built("demo", 9))

    serve = sub.add_parser("serve", help="HTTP API (FastAPI)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(handler=not_built("serve", 9))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(message)s")
    from datasets.folder import DatasetError
    from datasets.relabel import RelabelError

    expected = (CommandError, DatasetError, RelabelError, FileNotFoundError, PermissionError)
    try:
        from datasets.pull import PullError

        expected = (*expected, PullError)
        return args.handler(args)
    except expected as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
