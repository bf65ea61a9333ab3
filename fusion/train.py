"""Train the severity classifier on one or more dataset folders.

AdamW (lr 1e-4 by default, short linear warm-up, cosine decay), focal loss (or CORN) with
unknown labels masked, augmentation, early stopping on the validation selection score (mean
macro-F1 over the heads that have validation labels; with only indicator labels that is the
overall macro-F1), then one temperature per head fit on validation. Writes
``classifier.safetensors`` + ``classifier.json`` (everything needed to use and judge the
weights), ``history.json`` and one confusion-matrix PNG per head into ``out``.

>>> config = train_classifier([Path("runs/data/hair-loss-levels")], Path("runs/classifier"), TrainSettings(epochs=1))  # doctest: +SKIP
"""
from __future__ import annotations

import copy
import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from core.io import atomic_write_json
from core.taxonomy import HAIR_LOSS_GRADES, INDICATOR_GRADE_NAMES, INDICATORS
from core.weights import save_safetensors
from datasets.folder import DatasetError, DatasetFolder
from fusion.calibration import cross_fitted_ece, fit_temperature, probabilities
from fusion.data import (
    Augment,
    DerivedGrades,
    FusionDataset,
    LetterboxCache,
    annotated_kinds,
    collect_examples,
    label_distribution,
    label_views,
    native_scale,
    needs_derived_grades,
)
from fusion.heads import default_heads
from fusion.inputs import MASK_SIGMA_FRACTION
from fusion.losses import class_alpha, multi_head_loss
from fusion.model import COVERAGE_GAIN, SeverityClassifier
from fusion.scoring import majority_baseline, save_confusion_matrices, score_heads

log = logging.getLogger(__name__)

WEIGHTS_NAME = "classifier.safetensors"
_COVERAGE_TEXT = {"log": "log10(coverage + 1e-4) + 4 and a mask-known flag (gained)", "sqrt": "sqrt(coverage)"}


@dataclass
class TrainSettings:
    """Every training choice, in one place; all of it is written into the config."""

    backbone: str = "efficientnet_lite0"
    imgsz: int = 448
    epochs: int = 30
    batch: int = 16
    lr: float = 1e-4
    weight_decay: float = 1e-2
    warmup_epochs: float = 0.5
    patience: int = 5
    loss: str = "focal"  # focal | corn
    gamma: float = 2.0
    alpha: str = "none"  # none | inverse | sqrt: per-class weights from train label counts
    dropout: float = 0.2
    freeze_blocks: int = 0
    use_masks: bool = True  # False: image-only ablation (every mask treated as unknown)
    mask_dropout: float = 0.2
    derive_grades: bool = True
    augment: bool = True
    geometry: str = "free"  # free: turns, zooms, reframes | area: flips and quarter turns (area shares kept)
    reframe: float = 0.0  # share of pictures shown as letterboxed 4:3 / 3:4 photos (see Augment)
    mask_channels: str = "union"  # union: one mask of all lesions | kinds: one per outlined kind, with coverage
    coverage: str = "log"  # with kinds: log (log10 coverage + known flag, gained) | sqrt (the first design, copied)
    coverage_gain: float = COVERAGE_GAIN  # with kinds and log: gain on the heads' coverage inputs
    coverage_copies: int | None = None  # with kinds and sqrt: times each coverage enters the heads (None: backbone channels)
    contrast_blocks: tuple[int, ...] = ()  # backbone blocks whose inside-minus-outside mask contrast feeds the heads
    contrast_heads: tuple[str, ...] = ()  # heads that read only their own kind's contrasts (and the coverage)
    ema: float = 0.0  # > 0: validate, select and keep an exponential moving average of the weights (this decay per step)
    device: str = "cpu"
    seed: int = 0
    max_batches: int | None = None  # cap per epoch, for smoke tests


def labels_array(dataset: FusionDataset) -> dict[str, np.ndarray]:
    """Each head's class index per picture of ``dataset`` (UNKNOWN where unlabelled)."""
    targets = np.stack([dataset.targets(i).numpy() for i in range(len(dataset))]) if len(dataset) else np.zeros((0, len(dataset.heads)), int)
    return {h.name: targets[:, j] for j, h in enumerate(dataset.heads)}


@torch.no_grad()
def predict_logits(model: SeverityClassifier, dataset: FusionDataset, device: torch.device, batch: int = 32,
                   desc: str = "val") -> dict[str, np.ndarray]:
    model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=False, num_workers=0)
    chunks: dict[str, list[np.ndarray]] = {h.name: [] for h in model.head_specs}
    for image, mask, _ in tqdm(loader, desc=desc, leave=False, unit="batch"):
        out = model(image.to(device, memory_format=torch.channels_last), mask.to(device))
        for name, value in out.items():
            chunks[name].append(value.float().cpu().numpy())
    return {name: np.concatenate(parts) if parts else np.zeros((0, 1)) for name, parts in chunks.items()}


def _lr_lambda(total_steps: int, warmup_steps: int):
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _summary(scores: dict[str, Any]) -> str:
    parts = [f"select {scores['selection_score']:.3f}"]
    if "indicators" in scores:
        parts.append(f"ind F1 {scores['indicators']['overall_macro_f1']:.3f} ham {scores['indicators']['hamming']:.3f}")
    if "hair_loss" in scores:
        parts.append(f"LMH acc {scores['hair_loss']['accuracy']:.3f} F1 {scores['hair_loss']['macro_f1']:.3f}")
    if "stage" in scores:
        s = scores["stage"]
        parts.append(f"stage acc {s['accuracy']:.3f} qwk {s['qwk']:.3f} mae {s['mae']:.3f}")
    return ", ".join(parts)


def mask_channels(folders: list[DatasetFolder], mode: str) -> list[str] | None:
    """The lesion kinds that get a mask channel each (``kinds``), or None for one union channel."""
    if mode == "union":
        return None
    if mode != "kinds":
        raise ValueError(f"mask channels {mode!r}: use 'union' or 'kinds'")
    outlined = {kind for folder in folders for kind in annotated_kinds(folder)}
    if not outlined:
        raise DatasetError("--mask-channels kinds needs a dataset that outlines lesions (polygons or masks)")
    return [kind for kind in INDICATORS if kind in outlined]


def train_classifier(
    datasets: list[Path | DatasetFolder],
    out: Path,
    settings: TrainSettings | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Train on the train splits of ``datasets``, select and calibrate on their val splits.

    Returns the written config (also at ``out/classifier.json``).
    """
    settings = settings or TrainSettings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(settings.seed)
    device = torch.device(settings.device)
    folders = [d if isinstance(d, DatasetFolder) else DatasetFolder.load(d) for d in datasets]
    names = [f.name for f in folders]
    if len(set(names)) != len(names):
        raise DatasetError(f"two dataset folders share a name ({names}); give each a distinct name in dataset.json")

    derived = {f.name: DerivedGrades.fit(f) for f in folders if settings.derive_grades and needs_derived_grades(f)}
    scales = {f.name: native_scale(f) for f in folders if native_scale(f)}
    heads = default_heads(scales, settings.loss)
    train_examples = collect_examples(folders, "train", heads, derived)
    val_examples = collect_examples(folders, "val", heads, derived)
    for split, examples in (("train", train_examples), ("val", val_examples)):
        if not examples:
            raise DatasetError(
                f"no labelled images in the {split} split of {', '.join(str(f.root) for f in folders)}; "
                "run 'python pipeline.py data split DATASET' or check the labels with 'data check'"
            )
    distribution = {"train": label_distribution(train_examples, heads), "val": label_distribution(val_examples, heads)}
    log.info("classifier: %d train / %d val images from %s", len(train_examples), len(val_examples), ", ".join(names))

    channels = mask_channels(folders, settings.mask_channels)
    started = time.time()
    model = SeverityClassifier(heads, settings.backbone, pretrained=True, dropout=settings.dropout,
                               freeze_blocks=settings.freeze_blocks, mask_channels=channels,
                               coverage=settings.coverage, coverage_gain=settings.coverage_gain,
                               coverage_copies=settings.coverage_copies,
                               contrast_blocks=settings.contrast_blocks,
                               contrast_heads=settings.contrast_heads).to(device, memory_format=torch.channels_last)
    train_cache = LetterboxCache(train_examples, settings.imgsz, desc="cache train", channels=channels)
    val_cache = LetterboxCache(val_examples, settings.imgsz, desc="cache val", channels=channels)
    cache_seconds = time.time() - started
    mean, std = model.mean, model.std
    augment = Augment(reframe=settings.reframe, geometry=settings.geometry) if settings.augment else None
    train_set = FusionDataset(train_examples, train_cache, heads, mean, std, augment, settings.mask_dropout,
                              settings.use_masks, settings.seed)
    val_set = FusionDataset(val_examples, val_cache, heads, mean, std, None, 0.0, settings.use_masks)
    val_labels = labels_array(val_set)
    alphas = {h.name: class_alpha([distribution["train"][h.name][c] for c in h.classes], settings.alpha) for h in heads}
    losses = {h.name: h.loss for h in heads}

    generator = torch.Generator().manual_seed(settings.seed)
    loader = torch.utils.data.DataLoader(train_set, batch_size=settings.batch, shuffle=True, num_workers=0,
                                         generator=generator, drop_last=len(train_set) > settings.batch)
    steps_per_epoch = min(len(loader), settings.max_batches or len(loader))
    trainable = [p for p in model.parameters() if p.requires_grad]
    # With ``ema`` the weights validated, selected and written are a moving average of the trained ones
    # (BatchNorm statistics averaged alike); ``model`` keeps taking the optimizer's steps.
    ema = None
    if settings.ema:
        ema = torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(settings.ema), use_buffers=True)
        ema.update_parameters(model)  # the average starts from the weights training starts from
    scored = model if ema is None else ema.module
    optimizer = torch.optim.AdamW(trainable, lr=settings.lr, weight_decay=settings.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_lambda(settings.epochs * steps_per_epoch, max(1, int(settings.warmup_epochs * steps_per_epoch))))

    base_config = {
        "stage": "classifier",
        "architecture": "SeverityClassifier",
        "backbone": settings.backbone,
        "input_size": settings.imgsz,
        "normalization": {"mean": list(mean), "std": list(std), "scale": "rgb/255"},
        "letterbox": {"fill": 0, "keep_aspect": True},
        "pooling": (f"concat(global average, soft-mask-weighted average per kind, {_COVERAGE_TEXT[settings.coverage]} per kind)"
                    if channels else "concat(global average, soft-mask-weighted average)")
                   + (f" + standardized inside-minus-outside averages of blocks {list(settings.contrast_blocks)} per mask"
                      if settings.contrast_blocks else ""),
        "mask": {"sigma_fraction": MASK_SIGMA_FRACTION, "missing": "all ones (mask unknown)",
                 "empty": "all zeros (no lesion found)", "trained_with_masks": settings.use_masks,
                 "channels": channels, "coverage": settings.coverage if channels else None,
                 "coverage_copies": model.coverage_copies, "coverage_gain": model.coverage_gain,
                 "contrast_blocks": list(model.contrast_blocks), "contrast_heads": list(model.contrast_heads)},
        "dropout": settings.dropout,
        "freeze_blocks": settings.freeze_blocks,
        "indicators": list(INDICATORS),
        "indicator_grades": list(INDICATOR_GRADE_NAMES),
        "hair_loss_grades": list(HAIR_LOSS_GRADES),
        "heads": [h.to_dict() for h in heads],
        "label_distribution": distribution,
        "label_views": label_views(train_examples, heads),
        "untrained_heads": [h.name for h in heads if not sum(distribution["train"][h.name].values())],
        "derived_grades": {name: d.to_config() for name, d in derived.items()},
        "training": {
            "datasets": [{"name": f.name, "root": str(f.root), "train": sum(e.folder is f for e in train_examples),
                          "val": sum(e.folder is f for e in val_examples)} for f in folders],
            "settings": asdict(settings),
            "augmentation": asdict(augment) if augment is not None else None,
            "command": command,
            "optimizer": "AdamW, linear warm-up then cosine decay to 1% of lr"
                         + (f"; weights kept as their moving average (decay {settings.ema} per step)" if settings.ema else ""),
            "selection": "validation mean macro-F1 over heads with val labels (overall macro-F1 when only indicators)",
        },
    }
    weights = out / WEIGHTS_NAME
    history: list[dict[str, Any]] = []
    best_score, best_epoch, best_state = -1.0, -1, None
    stale = 0
    for epoch in range(1, settings.epochs + 1):
        model.train()
        epoch_start = time.time()
        totals: dict[str, float] = {}
        seen = 0
        bar = tqdm(loader, total=steps_per_epoch, desc=f"epoch {epoch}/{settings.epochs}", unit="batch", leave=False)
        for step, (image, mask, targets) in enumerate(bar):
            if step >= steps_per_epoch:
                break
            image = image.to(device, memory_format=torch.channels_last)
            logits = model(image, mask.to(device))
            target_map = {h.name: targets[:, j].to(device) for j, h in enumerate(heads)}
            loss, parts = multi_head_loss(logits, target_map, losses, settings.gamma, alphas)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if ema is not None:
                ema.update_parameters(model)
            seen += 1
            for name, value in parts.items():
                totals[name] = totals.get(name, 0.0) + value
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        train_seconds = time.time() - epoch_start
        scores = score_heads(heads, predict_logits(scored, val_set, device), val_labels)
        record = {"epoch": epoch, "train_seconds": round(train_seconds, 1), "val_seconds": round(time.time() - epoch_start - train_seconds, 1),
                  "lr": optimizer.param_groups[0]["lr"], "train_loss": {k: v / max(1, seen) for k, v in totals.items()},
                  "selection_score": scores["selection_score"],
                  **{k: scores[k] for k in ("indicators", "hair_loss", "stage") if k in scores}}
        history.append(record)
        improved = scores["selection_score"] > best_score
        log.info("epoch %d/%d (%.0f s train): %s%s", epoch, settings.epochs, train_seconds, _summary(scores), " *" if improved else "")
        if improved:
            best_score, best_epoch, stale = scores["selection_score"], epoch, 0
            best_state = copy.deepcopy(scored.state_dict())
            save_safetensors(best_state, weights, {**base_config, "val_scores": scores, "epoch": epoch})
        else:
            stale += 1
        atomic_write_json(out / "history.json", history)
        if stale >= settings.patience:
            log.info("early stop: no better selection score for %d epochs (best %.3f at epoch %d)", stale, best_score, best_epoch)
            break

    if best_state is not None:
        model.load_state_dict(best_state)
    val_logits = predict_logits(model, val_set, device)
    temperatures = {h.name: fit_temperature(h, val_logits[h.name], val_labels[h.name]) for h in heads}
    raw = score_heads(heads, val_logits, val_labels)
    calibrated = score_heads(heads, val_logits, val_labels, temperatures)
    calibration = {
        h.name: {"temperature": temperatures[h.name], "ece_raw": raw["heads"][h.name]["ece"],
                 "ece_calibrated": calibrated["heads"][h.name]["ece"],
                 "ece_calibrated_cross_fitted": cross_fitted_ece(h, val_logits[h.name], val_labels[h.name], settings.seed)}
        for h in heads if h.name in raw["heads"]
    }
    extra: dict[str, Any] = {"majority_baseline": _brief(majority_baseline(heads, distribution["train"], val_labels))}
    if settings.use_masks and any(m is not None for m in val_cache.masks):
        unmasked = FusionDataset(val_examples, val_cache, heads, mean, std, None, 0.0, use_masks=False)
        extra["masks_withheld"] = _brief(score_heads(heads, predict_logits(model, unmasked, device, desc="val, no masks"),
                                                     val_labels, temperatures))
    save_confusion_matrices(heads, calibrated, out)
    total_seconds = time.time() - started
    config = {
        **base_config,
        "epoch": best_epoch,
        "temperatures": temperatures,
        "calibration": calibration,
        "val_scores": calibrated,
        "val_scores_variants": extra,
        "training": {**base_config["training"], "epochs_run": len(history), "best_epoch": best_epoch,
                     "seconds_total": round(total_seconds, 1), "seconds_caching": round(cache_seconds, 1),
                     "seconds_per_epoch": round(float(np.mean([h["train_seconds"] + h["val_seconds"] for h in history])), 1),
                     "threads": torch.get_num_threads()},
    }
    config = save_safetensors(model.state_dict(), weights, config)
    atomic_write_json(out / "val_predictions.json", {
        "images": [f"{e.folder.name}/{e.sample.image}" for e in val_examples],
        "labels": {k: v.tolist() for k, v in val_labels.items()},
        "probs": {h.name: probabilities(h, val_logits[h.name], temperatures[h.name]).round(5).tolist() for h in heads},
    })
    log.info("classifier written to %s (best epoch %d, %s)", weights, best_epoch, _summary(calibrated))
    return config


def _brief(scores: dict[str, Any]) -> dict[str, Any]:
    """Scores without the bulky per-head details."""
    out = {k: v for k, v in scores.items() if k != "heads"}
    out["macro_f1"] = {name: s["macro_f1"] for name, s in scores["heads"].items()}
    return out


def read_history(out: Path) -> list[dict[str, Any]]:
    return json.loads((Path(out) / "history.json").read_text(encoding="utf-8"))
