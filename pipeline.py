#!/usr/bin/env python
"""scalpscope: find, outline and grade scalp problems in a photo (a screening aid, not a diagnosis).

The command line is the front door; ``python pipeline.py --help`` lists the jobs.
"""
from __future__ import annotations

import argparse
import functools
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from core.analysis import Analysis
    from core.images import LoadedImage
    from detection import Detector
    from fusion.gate import ScalpGate
    from fusion.predict import SeverityGrader
    from hair import HairMeter
    from segmentation import MaskRefiner

log = logging.getLogger("scalpscope")

VIEW_NAMES = {"closeup": "trichoscope close-ups", "head": "photos of the head"}
DISCLAIMER = "scalpscope is a screening aid, not a diagnosis: see a dermatologist for medical advice."
__version__ = "0.1.0"


class CommandError(RuntimeError):
    """A failure with a message meant for people; the CLI prints it and exits 1."""


# --------------------------------------------------------------------------- the Pipeline
@dataclass
class Stages:
    """The loaded models of one weights folder (the hair meter is optional)."""

    gate: ScalpGate
    detector: Detector
    refiner: MaskRefiner
    grader: SeverityGrader
    hair: HairMeter | None
    files: list[Path]

    def sha256s(self) -> dict[str, str]:
        """The sha256 of each network's weight file, by stage (the ONNX export is tied to these)."""
        return {
            "gate": self.gate.config["sha256"],
            "detector": self.detector.config["sha256"],
            "segmenter": self.refiner.weights_config.get("sha256", ""),
            "classifier": self.grader.config["sha256"],
        }

    def hashes(self) -> dict[str, str]:
        """``sha256:<hex>`` per stage, hair meter included: what every Analysis records."""
        out = {stage: f"sha256:{sha}" for stage, sha in self.sha256s().items()}
        if self.hair is not None:
            out["hair"] = self.hair.sha256
        return out


def load_stages(weights_dir: Path, device: str = "cpu", hair: str | Path | bool | None = None) -> Stages:
    """Load every stage from ``weights_dir``; a missing or mismatched file stops with its name.

    ``hair`` switches the hair meter on: True takes ``hair.safetensors`` from ``weights_dir``,
    a path takes that file; None or False (the default) runs without it. It is opt-in because
    its counts on strongly magnified real close-ups are still far off (weights/MODEL_CARD.md).
    """
    from core.weights import WeightsError
    from detection import Detector
    from fusion.gate import ScalpGate
    from fusion.predict import SeverityGrader
    from segmentation import MaskRefiner

    if not weights_dir.is_dir():
        raise WeightsError(f"weights folder {weights_dir} not found; pass --weights DIR (see weights/MODEL_CARD.md)")
    files = [weights_dir / name for name in WEIGHT_FILES]
    gate = ScalpGate.load(files[0], device=device)
    detector = Detector.load(files[1], device=device)
    refiner = MaskRefiner.load(files[2], device=device)
    grader = SeverityGrader.load(files[3], device=device)
    meter = None
    hair_file = weights_dir / HAIR_WEIGHTS if hair is True else (Path(hair) if hair else None)
    if hair_file is not None:
        from hair import HairMeter

        meter = HairMeter.load(hair_file, device=device)
        files.append(hair_file)
    stages = Stages(gate, detector, refiner, grader, meter, files)
    check_stages(stages, weights_dir)
    return stages


def check_stages(stages: Stages, weights_dir: Path) -> None:
    """Refuse a weights folder whose parts do not speak the same vocabulary."""
    from core.taxonomy import HAIR_LOSS_GRADES, INDICATORS
    from core.weights import WeightsError

    for label in stages.detector.classes:
        kind, _, grade = label.partition("/")
        if kind not in INDICATORS or (grade and grade not in HAIR_LOSS_GRADES):
            raise WeightsError(f"{weights_dir}/detector.pt: class {label!r} is not an indicator kind (with an optional low/mid/high grade)")
    heads = stages.grader.heads
    unknown = [h.source for h in heads if h.kind == "indicator" and h.source not in INDICATORS]
    if unknown:
        raise WeightsError(f"{weights_dir}/classifier.json: indicator heads {unknown} are not scalpscope indicators {list(INDICATORS)}")
    hair_heads = [h for h in heads if h.kind == "hair_loss"]
    if not hair_heads or list(hair_heads[0].classes) != list(HAIR_LOSS_GRADES):
        raise WeightsError(f"{weights_dir}/classifier.json: needs a hair_loss head with classes {list(HAIR_LOSS_GRADES)}")
    for name, config in (("gate", stages.gate.config), ("classifier", stages.grader.config)):
        if "normalization" not in config:
            raise WeightsError(f"{weights_dir}/{name}.json has no 'normalization'; retrain or restore the file")


#: The optional hair meter's weight file in a weights folder.
HAIR_WEIGHTS = "hair.safetensors"
WEIGHT_FILES = ("gate.safetensors", "detector.pt", "segmenter.safetensors", "classifier.safetensors")


class Pipeline:
    """Load the models once and turn pictures into :class:`~core.analysis.Analysis` records.

    Stages, in order: the scalp gate (is it a scalp photo, which view), the detector and the
    box-prompted segmenter (close-ups only), the severity classifier (each grade reported only
    on the views its training labels came from: for the bundled weights the six indicators on
    close-ups, Low/Mid/High and the LEVEL stage on head photos) and, when ``hair`` asks for it
    (see :func:`load_stages`), the hair meter (hair count, shaft thickness, thin-hair share and
    density on close-ups). ``um_per_px`` or ``magnification`` give the hair
    meter the scale of the pictures; without either it reports widths in pixels only.

    >>> pipeline = Pipeline()                                 # bundled weights/, CPU
    >>> analysis = pipeline.analyze("samples/closeup_01.jpg")  # doctest: +SKIP
    >>> print(analysis.summary())                             # doctest: +SKIP
    """

    def __init__(self, weights: str | Path | None = None, device: str = "cpu", conf: float | None = None,
                 hair: str | Path | bool | None = None, backend: str = "auto", um_per_px: float | None = None,
                 magnification: float | None = None) -> None:
        from core.weights import DEFAULT_WEIGHTS_DIR
        from hair.units import um_per_px_for

        um_per_px_for(um_per_px, magnification)  # a bad scale stops here, with its reason
        self.hair_scale = {"um_per_px": um_per_px, "magnification": magnification}
        self.weights_dir = Path(weights) if weights else DEFAULT_WEIGHTS_DIR
        self.device = device
        self.stages = load_stages(self.weights_dir, device=device, hair=hair)
        self.backend = self._choose_backend(backend)
        if conf is not None:
            self.stages.detector.conf = conf

    def _choose_backend(self, backend: str) -> str:
        """``onnx`` when an export of these exact weights sits in ``<weights>/onnx`` (``auto``: if so)."""
        from core.onnx import attach_onnx, matching_export, onnx_dir_for
        from core.weights import WeightsError

        if backend not in ("auto", "torch", "onnx"):
            raise ValueError(f"unknown backend {backend!r}; use auto, torch or onnx")
        if backend == "torch" or (backend == "auto" and not self.device.startswith("cpu")):
            return "torch"
        folder = onnx_dir_for(self.weights_dir)
        if matching_export(self.stages, folder) is None:
            if backend == "onnx":
                raise WeightsError(f"no ONNX export of these weights in {folder}; run "
                                   f"'python pipeline.py export onnx --weights {self.weights_dir}' first")
            return "torch"
        attach_onnx(self.stages, folder)
        return "onnx"

    @functools.cached_property
    def views(self) -> dict[str, list[str]]:
        """Per reported grade, the views whose training pictures carried its labels.

        Older classifier configs without ``label_views`` grade every view.
        """
        from fusion.heads import HAIR_LOSS_HEAD

        grader = self.stages.grader
        known = grader.config.get("label_views") or {}
        native = next((h.name for h in grader.heads if h.kind == "native"), None)
        out = {name: known[name] for name in known}
        if HAIR_LOSS_HEAD in known:
            out["overall_hair_loss"] = known[HAIR_LOSS_HEAD]  # Low/Mid/High ("hair_loss" is the 0-3 indicator)
        if native in known:
            out["native_stage"] = known[native]
        return out

    def graded_on(self, grade: str, view: str | None) -> bool:
        views = self.views.get(grade)
        return views is None or view in views

    @property
    def weights_mtime(self) -> float:
        """Newest weight file time: outputs older than this are stale."""
        return max(p.stat().st_mtime for p in self.stages.files)

    @property
    def models(self) -> dict[str, str]:
        """``sha256:<hex>`` of every model that runs (the hair meter's too, when on)."""
        return self.stages.hashes()

    def version(self) -> dict[str, object]:
        return {"scalpscope": __version__, "device": self.device, "backend": self.backend, "models": self.stages.hashes()}

    def analyze(self, image: str | Path | np.ndarray | LoadedImage) -> Analysis:
        """Analyze one picture given as a path, an RGB array or a decoded image."""
        import numpy as np

        from core.images import LoadedImage, load_image

        if isinstance(image, (str, Path)):
            return self.analyze_image(load_image(image), str(image))
        if isinstance(image, np.ndarray):
            rgb = np.ascontiguousarray(image[..., :3])
            return self.analyze_image(LoadedImage(rgb, (rgb.shape[1], rgb.shape[0])), "array")
        return self.analyze_image(image, "image")

    def analyze_image(self, image: LoadedImage, name: str) -> Analysis:
        return self.analyze_batch([image], [name])[0]

    def analyze_batch(self, images: list[LoadedImage], names: list[str]) -> list[Analysis]:
        """Analyze several decoded pictures, each stage batched across them."""
        import time

        import numpy as np

        from core.analysis import Analysis, GradeResult, RegionResult, mask_to_rle

        stages, n = self.stages, len(images)
        rgbs = [image.rgb for image in images]
        timing: dict[str, float] = {}

        def timed(stage: str, start: float) -> None:
            timing[stage] = round(1000 * (time.perf_counter() - start) / max(n, 1), 2)

        start = time.perf_counter()
        gates = stages.gate.predict(rgbs)
        timed("gate", start)
        scalp = [i for i in range(n) if gates[i].is_scalp]
        closeups = [i for i in scalp if gates[i].view == "closeup"]

        start = time.perf_counter()
        detections = dict(zip(closeups, stages.detector.predict([rgbs[i] for i in closeups]))) if closeups else {}
        timed("detect", start)

        start = time.perf_counter()
        masks: dict[int, np.ndarray] = {}
        for i, found in detections.items():
            masks[i] = stages.refiner.refine(rgbs[i], found.boxes) if len(found) else np.zeros((0, *rgbs[i].shape[:2]), np.float32)
        timed("segment", start)

        start = time.perf_counter()
        lesion_maps = [stages.grader.lesion_map(masks[i], detections[i].kinds) if i in masks else None for i in scalp]
        graded = dict(zip(scalp, stages.grader.predict([rgbs[i] for i in scalp], lesion_maps))) if scalp else {}
        timed("classify", start)

        hair: dict[int, dict] = {}
        if stages.hair is not None and closeups:
            start = time.perf_counter()
            hair = {i: stages.hair.measure(rgbs[i], **self.hair_scale).to_dict() for i in closeups}
            timed("hair", start)

        hashes = stages.hashes()
        untrained = set(stages.grader.untrained)
        results = []
        for i, (image, name) in enumerate(zip(images, names)):
            gate = gates[i]
            analysis = Analysis(image=name, size=image.original_size, is_scalp=gate.is_scalp,
                                scalp_score=round(gate.scalp_score, 4), view=gate.view if gate.is_scalp else None,
                                view_confidence=round(gate.view_confidence, 4) if gate.is_scalp else None, models=hashes, timing_ms=dict(timing))
            if i in graded:
                result, view = graded[i], gate.view
                if self.graded_on("overall_hair_loss", view):
                    analysis.hair_loss = GradeResult(**result["hair_loss"])
                else:
                    learned = " and ".join(VIEW_NAMES.get(v, v) for v in self.views["overall_hair_loss"])
                    analysis.notes.append(f"no overall hair-loss grade: it is learned from {learned}, "
                                          f"not from {VIEW_NAMES.get(view, view)}")
                if result.get("native_stage") and self.graded_on("native_stage", view):
                    analysis.native_stage = GradeResult(**result["native_stage"])
                if i in detections:  # indicators are graded on close-ups only
                    analysis.indicators = {k: GradeResult(**v) for k, v in result["indicators"].items()
                                           if k not in untrained and self.graded_on(k, view)}
            if i in detections:
                found, probs = detections[i], masks[i]
                for j in range(len(found)):
                    binary = probs[j] > stages.refiner.threshold
                    kind, _, grade = found.labels[j].partition("/")
                    box = [round(float(v) * image.scale, 1) for v in found.boxes[j]]
                    analysis.regions.append(RegionResult(box=box, kind=kind, grade=grade or None,
                                                         confidence=round(float(found.scores[j]), 4),
                                                         area_px=int(binary.sum() * image.scale ** 2),
                                                         mask_rle=mask_to_rle(binary)))
            if i in hair:
                analysis.hair = hair[i]
            if not gate.is_scalp:
                analysis.notes.append("declined: the picture does not look like a scalp photo, so nothing was graded")
            results.append(analysis)
        return results


# --------------------------------------------------------------------------- analyze
def cmd_analyze(args: argparse.Namespace) -> int:
    import functools

    from batch.job import analyze_paths
    from tracking.cli import recorder_from_args

    make = functools.partial(pipeline_from_args, args, conf=args.conf)
    with recorder_from_args(args) as record:
        on_done = (lambda item, analysis, rgb: record(analysis, item.path, rgb)) if args.subject else None
        try:
            outcome = analyze_paths(make, args.paths, args.out, batch_size=args.batch, force=args.force,
                                    overlay=not args.no_overlay, executor=args.executor, shards=args.shards,
                                    on_done=on_done, run_info={"weights": str(args.weights or "weights/ (bundled)")})
        except FileNotFoundError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    result = outcome.result
    print(f"{outcome.n_analyzed} analyzed ({len(result.done)} now, {len(result.skipped)} up to date), "
          f"{outcome.n_failed} failed; {result.images_per_s:.2f} images/s")
    if args.subject:
        print(record.summary())
    print(f"report: {outcome.report}")
    if outcome.n_failed:
        print(f"{outcome.n_failed} images failed: see {args.out / 'errors.csv'}", file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------- evaluate
def cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    from evaluation.report import compare_table, sections
    from evaluation.run import evaluate

    metrics = evaluate(args.dataset, args.out, split=args.split, weights=args.weights, device=args.device, seed=args.seed,
                       n_bootstrap=args.bootstrap, batch_size=args.batch, backend=args.backend)
    for title, header, rows, notes in sections(metrics):
        print(f"\n{title}")
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
        for note in notes:
            print(f"  ({note})")
    print(f"\nwrote {args.out / 'metrics.json'}, report.md, report.html")
    if args.compare:
        other = json.loads(Path(args.compare).read_text(encoding="utf-8"))
        table = compare_table(metrics, other)
        print(f"\ncompared with {args.compare}:\n{table}")
        (args.out / "compare.txt").write_text(table + "\n", encoding="utf-8")
    return 0


# --------------------------------------------------------------------------- train all
#: The recipe of the bundled weights/ (each weight file's config records the command too).
#: Stage -> (dataset, extra datasets, options, files it writes).
RECIPE = {
    "gate": ("scalp-data", ["hair-loss-levels"], [], ["gate.safetensors", "gate.json"]),
    # The bundled detector ran on a GPU with --time 0.125 (7.5 min), which came to 157 epochs; the
    # recipe fixes those epochs, so every machine trains the same schedule (weights/MODEL_CARD.md).
    "detector": ("scalp-data", [], ["--model", "yolo11n.yaml", "--epochs", "157", "--imgsz", "640", "--batch", "16",
                                    "--workers", "3", "--patience", "300"],
                 ["detector.pt", "detector.json"]),
    "segmenter": ("scalp-data", [], ["--epochs", "25", "--patience", "5"], ["segmenter.safetensors", "segmenter.json"]),
    "classifier": ("scalp-data", ["hair-loss-levels"], ["--imgsz", "384", "--freeze-blocks", "3", "--epochs", "12",
                                                        "--mask-channels", "kinds"],
                   ["classifier.safetensors", "classifier.json"]),
}
SOURCES = ("scalp-data", "hair-loss-levels")


def recipe_argv(stage: str, data_dir: Path, run_dir: Path, device: str = "cpu", seed: int = 0) -> list[str]:
    """The ``train <stage>`` command line the bundled recipe runs, datasets taken from ``data_dir``."""
    dataset, also, options, _ = RECIPE[stage]
    argv = ["train", stage, str(data_dir / dataset), "--out", str(run_dir), "--device", device, "--seed", str(seed), *options]
    for extra in also:
        argv += ["--also", str(data_dir / extra)]
    return argv


def cmd_train_all(args: argparse.Namespace) -> int:
    """Import both Roboflow exports and train every stage with the bundled recipe, resumably."""
    import shutil

    out: Path = args.out
    data_dir, runs = out / "runs" / "data", out / "runs"
    for name in SOURCES:
        if not (args.data / name).is_dir():
            raise CommandError(f"{args.data / name} not found; pass --data with the folder holding {' and '.join(SOURCES)}")
        if not (data_dir / name / "dataset.json").is_file():
            cmd_data_import(argparse.Namespace(src=args.data / name, out=data_dir / name, format="auto", relabel=None,
                                               name=name, force=True))
    stages = args.stages or list(RECIPE)
    for stage in stages:
        files = RECIPE[stage][3]
        run_dir = runs / stage
        if all((run_dir / f).is_file() for f in files) and not args.force:
            print(f"{stage}: already trained in {run_dir} (--force retrains)")
        else:
            argv = recipe_argv(stage, data_dir, run_dir, args.device, args.seed)
            print(f"{stage}: python pipeline.py {' '.join(argv)}")
            stage_args = build_parser().parse_args(argv)
            if stage_args.handler(stage_args):
                raise CommandError(f"training the {stage} failed; see the output above")
        for f in files:
            shutil.copyfile(run_dir / f, out / f)
    print(f"weights written to {out}; score them with 'python pipeline.py evaluate DATASET --split val --weights {out}'")
    return 0


# --------------------------------------------------------------------------- export
def cmd_export(args: argparse.Namespace) -> int:
    from core.onnx import export_pipeline, onnx_dir_for
    from core.weights import DEFAULT_WEIGHTS_DIR

    weights = args.weights or DEFAULT_WEIGHTS_DIR
    out = args.out or onnx_dir_for(weights)
    manifest = export_pipeline(weights, out)
    for stage, info in manifest["files"].items():
        diff = f"max |ONNX - PyTorch| {info['max_abs_diff']:.1e}" if "max_abs_diff" in info else info.get("checked", "")
        print(f"  {stage:<11} {out / info['file']}  {diff}")
    print(f"wrote {out / 'onnx.json'}; 'analyze' uses these when they sit in <weights>/onnx (--backend torch to opt out)")
    return 0


# --------------------------------------------------------------------------- demo and API
def cmd_demo(args: argparse.Namespace) -> int:
    from demo.app import launch

    print(f"scalpscope demo on http://{args.host}:{args.port} ({DISCLAIMER})")
    launch(pipeline_from_args(args), host=args.host, port=args.port)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from demo.api import create_app

    app = create_app(pipeline_from_args(args), max_upload_bytes=args.max_mb * 1024 * 1024)
    print(f"scalpscope API on http://{args.host}:{args.port} (OpenAPI docs at /docs)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


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

    folder = generate(args.n, args.out, seed=args.seed, clear=args.clear)
    layout = " in the clear layout" if args.clear else ""
    print(f"wrote {len(folder)} synthetic close-ups{layout} to {args.out} (test fixture, not real-world data)")
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


def _add_stage_cli(parser: argparse.ArgumentParser, module: str) -> None:
    """Each stage package owns its training options: its ``cli`` module adds and runs them."""
    import importlib

    cli = importlib.import_module(module)
    cli.add_train_arguments(parser)
    parser.set_defaults(handler=cli.train)


# --------------------------------------------------------------------------- parser
def add_model_options(parser: argparse.ArgumentParser, hair: bool = True) -> None:
    """Which models run, where, on which engine, and (``hair``) the hair meter's weights and scale."""
    parser.add_argument("--weights", type=Path, help="weights folder (default: the bundled weights/)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--backend", choices=["auto", "torch", "onnx"], default="auto",
                        help="auto: ONNX Runtime when <weights>/onnx holds an export of these weights, else PyTorch")
    if not hair:
        return
    parser.add_argument("--hair", nargs="?", const=True, default=None, type=Path, metavar="HAIR.safetensors",
                        help="also count hairs and measure their thickness on close-ups (experimental: far off on "
                             "strongly magnified frames, see weights/MODEL_CARD.md); with a file, that hair-meter "
                             "weight file instead of the weights folder's hair.safetensors")
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--um-per-px", type=float, metavar="UM",
                       help="micrometres per pixel of your close-ups (calibrate once per scope); gives hair widths "
                            "in um, density per cm2 and the thin-hair share")
    scale.add_argument("--magnification", type=float, metavar="X",
                       help="your trichoscope's nominal magnification (e.g. 50): an approximate scale preset "
                            "(hair/units.py) when you have no calibration")


def pipeline_from_args(args: argparse.Namespace, **options: object) -> Pipeline:
    """The Pipeline the model options of :func:`add_model_options` describe."""
    return Pipeline(args.weights, args.device, hair=args.hair, backend=args.backend,
                    um_per_px=args.um_per_px, magnification=args.magnification, **options)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipeline.py",
        description="scalpscope: detect, segment and grade scalp problems. " + DISCLAIMER,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    analyze = sub.add_parser("analyze", help="analyze images or folders (resumable batch job)")
    analyze.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files and folders (walked recursively)")
    analyze.add_argument("--out", type=Path, required=True, help="output folder: <image>.json, <image>.png, summary.csv, report.html")
    analyze.add_argument("--batch", type=int, default=8, help="images per batch (default %(default)s)")
    analyze.add_argument("--conf", type=float, help="detector confidence threshold (default: the detector's)")
    analyze.add_argument("--force", action="store_true", help="redo images whose outputs are up to date")
    analyze.add_argument("--no-overlay", action="store_true", help="skip the overlay PNGs (faster)")
    analyze.add_argument("--executor", choices=["local", "ray"], default="local", help="ray shards the work over a Ray cluster")
    analyze.add_argument("--shards", type=int, help="number of Ray tasks (default: the cluster's CPUs)")
    add_model_options(analyze)
    analyze.set_defaults(handler=cmd_analyze)
    from tracking.cli import add_tracking_commands

    add_tracking_commands(sub, analyze)

    evaluate = sub.add_parser("evaluate", help="score every stage on a dataset split (mAP, Dice, macro-F1...)")
    evaluate.add_argument("dataset", type=Path, help="dataset folder (see 'data import')")
    evaluate.add_argument("--out", type=Path, required=True, help="folder for metrics.json, report.md, report.html, plots/")
    evaluate.add_argument("--split", default="test", help="split to score: test (default), val (or valid), train")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling")
    evaluate.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% intervals")
    evaluate.add_argument("--batch", type=int, default=8)
    evaluate.add_argument("--compare", type=Path, metavar="OTHER_METRICS.json", help="print a delta table against another run")
    add_model_options(evaluate, hair=False)
    evaluate.set_defaults(handler=cmd_evaluate)

    train = sub.add_parser("train", help="train a stage on a dataset folder, or every stage ('train all')")
    stages = train.add_subparsers(dest="stage", required=True, metavar="STAGE")
    everything = stages.add_parser("all", help="import both Roboflow exports and train every stage (the bundled recipe)")
    everything.add_argument("--data", type=Path, required=True, help=f"folder holding {' and '.join(SOURCES)} exports")
    everything.add_argument("--out", type=Path, required=True, help="weights folder to write (runs/ inside keeps each stage's run)")
    everything.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    everything.add_argument("--seed", type=int, default=0)
    everything.add_argument("--stages", nargs="+", choices=list(RECIPE), help="only these stages (default: all, in order)")
    everything.add_argument("--force", action="store_true", help="retrain stages whose run folder is complete")
    everything.set_defaults(handler=cmd_train_all)
    for stage, module in (("detector", "detection.cli"), ("segmenter", "segmentation.cli"),
                          ("classifier", "fusion.cli"), ("gate", "fusion.gate_cli")):
        stage_parser = stages.add_parser(stage, help=f"train the {stage}")
        stage_parser.add_argument("dataset", type=Path, help="dataset folder (see 'data import')")
        stage_parser.add_argument("--out", type=Path, required=True, help="folder for the weights, config and logs")
        stage_parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
        stage_parser.add_argument("--seed", type=int, default=0)
        _add_stage_cli(stage_parser, module)

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
    synth.add_argument("--clear", action="store_true", help="the detector's sanity set: 2-3 kinds per picture, each "
                       "one clear region in a quadrant of its own")
    synth.set_defaults(handler=cmd_data_synth)

    check = data_sub.add_parser("check", help="validate a dataset folder (exit 1 on errors)")
    check.add_argument("dataset", type=Path)
    check.add_argument("--fast", action="store_true", help="skip decoding every image")
    check.add_argument("--json", type=Path, help="also write every problem to this JSON file")
    check.set_defaults(handler=cmd_data_check)

    export = sub.add_parser("export", help="export models for fast inference")
    export.add_argument("format", choices=["onnx"])
    export.add_argument("--weights", type=Path, help="weights folder (default: the bundled weights/)")
    export.add_argument("--out", type=Path, help="output folder (default: <weights>/onnx, where Pipeline looks)")
    export.set_defaults(handler=cmd_export)

    demo = sub.add_parser("demo", help="local web demo (Gradio): photo in, overlay, grades and advice out")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=7860)
    add_model_options(demo)
    demo.set_defaults(handler=cmd_demo)

    serve = sub.add_parser("serve", help="HTTP API (FastAPI): POST /analyze, GET /health, GET /version, docs at /docs")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--max-mb", type=int, default=20, help="largest upload accepted, in MB (default %(default)s)")
    add_model_options(serve)
    serve.set_defaults(handler=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(message)s")
    from core.backbones import BackboneError
    from core.weights import WeightsError
    from datasets.folder import DatasetError
    from datasets.pull import PullError
    from datasets.relabel import RelabelError

    expected = (CommandError, DatasetError, RelabelError, PullError, WeightsError, BackboneError, FileNotFoundError,
                PermissionError, ValueError)
    try:
        return args.handler(args)
    except expected as err:
        if args.verbose:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
