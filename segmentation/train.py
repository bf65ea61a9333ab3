"""Training the refiner: Dice + BCE (plus box projection for weak labels), AdamW, early stopping.

One front door, :func:`train_segmenter`; the defaults are sized for a laptop CPU (128 px crops,
batch 16) and the same call runs on a GPU with ``device="cuda"``. The best epoch by validation
Dice is written as ``segmenter.safetensors`` + ``segmenter.json`` as soon as it is reached, so
an interrupted run still leaves usable weights; the final config adds the full evaluation.
"""
from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from core.io import atomic_write_json
from core.weights import STAGE_FILES
from datasets.folder import DatasetError, DatasetFolder
from datasets.records import Sample
from segmentation.data import Augment, RegionCrops, has_outline
from segmentation.evaluate import evaluate_segmenter
from segmentation.losses import refiner_loss
from segmentation.model import MaskRefiner
from segmentation.options import TrainOptions

log = logging.getLogger(__name__)

#: Share of groups held out for validation when a dataset has no ``val`` split.
HOLDOUT_FRACTION = 0.15


@dataclass
class TrainResult:
    weights: Path
    config: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)


def training_split(folder: DatasetFolder, seed: int = 0) -> tuple[list[Sample], list[Sample], str]:
    """Train and validation samples of ``folder``, and how validation was chosen.

    The folder's own ``train``/``val`` splits when it has them; otherwise a grouped hold-out of
    15% (no subject or source photo in both), so augmented copies never leak into validation.
    """
    train, val = folder.split("train"), folder.split("val")
    if train and val:
        return train, val, "val split"
    pool = train or [s for s in folder.samples if s.split is None]
    groups = sorted({s.group for s in pool})
    if len(groups) < 2:
        raise DatasetError(
            f"{folder.root}: needs a train and a val split, or at least two subjects/photos to hold some out; "
            f"run 'python pipeline.py data split {folder.root}'"
        )
    rng = np.random.default_rng(seed)
    held = set(rng.choice(groups, size=max(1, round(HOLDOUT_FRACTION * len(groups))), replace=False).tolist())
    how = f"{HOLDOUT_FRACTION:.0%} of {'train' if train else 'unsplit'} groups held out (seed {seed})"
    return [s for s in pool if s.group not in held], [s for s in pool if s.group in held], how


def _crop_dice(model: MaskRefiner, loader: torch.utils.data.DataLoader, device: torch.device) -> float:
    """Mean hard Dice per region in crop coordinates (fast; the full evaluation pastes back)."""
    model.eval()
    scores = []
    with torch.inference_mode():
        for batch in loader:
            probs = torch.sigmoid(model(batch["inputs"].to(device))) > model.threshold
            target = batch["target"].to(device) > 0.5
            inter = (probs & target).flatten(1).sum(1).float()
            total = (probs.flatten(1).sum(1) + target.flatten(1).sum(1)).float()
            dice = torch.where(total > 0, 2 * inter / total.clamp(min=1), torch.ones_like(total))
            scores.extend(dice.cpu().tolist())
    return float(np.mean(scores)) if scores else 0.0


def _data_summary(folder: DatasetFolder, samples: list[Sample], items: RegionCrops | None, split: str) -> dict:
    summary = {"dataset": folder.name, "root": str(folder.root), "split": split, "n_images": len(samples)}
    if items is not None:
        summary["n_regions"] = len(items)
        summary["n_exact"] = sum(ref.exact for ref in items.refs)
        summary["n_weak"] = len(items) - summary["n_exact"]
    return summary


def train_segmenter(
    folder: DatasetFolder,
    out: Path,
    options: TrainOptions | None = None,
    extra: list[DatasetFolder] | None = None,
    command: str | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train a :class:`MaskRefiner` on ``folder`` (plus ``extra`` folders' samples, train only).

    Validates every epoch on ``folder``'s validation samples (ground-truth boxes), keeps the best
    epoch, stops after ``patience`` epochs without improvement, writes ``out/segmenter.safetensors``
    with its config, ``out/history.json`` and ``out/metrics.json`` (Dice/IoU against baselines).

    >>> result = train_segmenter(DatasetFolder.load("data/scalp"), Path("runs/seg"))  # doctest: +SKIP
    >>> result.config["scores"]["dice"]                                              # doctest: +SKIP
    0.87
    """
    options = options or TrainOptions()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(options.device)
    torch.manual_seed(options.seed)
    np.random.seed(options.seed)

    train_samples, val_samples, validation = training_split(folder, options.seed)
    parts = [(folder, train_samples)]
    extra_parts = []
    for other in extra or []:
        other_train = other.split("train") or [s for s in other.samples if s.split is None]
        extra_parts.append((other, other_train))
    if options.init:
        model = MaskRefiner.load(options.init, device="cpu")
        if model.geometry.crop_size != options.crop_size or model.geometry.margin != options.margin:
            log.info("--init weights use crop %d, margin %.2f: keeping theirs",
                     model.geometry.crop_size, model.geometry.margin)
    else:
        model = MaskRefiner(crop_size=options.crop_size, margin=options.margin)
    model.to(device)
    geometry = model.geometry

    augment = Augment(box_jitter=options.box_jitter)
    train_items = RegionCrops(parts + extra_parts, geometry, options.supervision, augment, options.kinds, options.seed,
                              progress=progress)
    outlined = any(has_outline(r) for s in val_samples for r in s.regions)
    if options.supervision == "weak" or not outlined:
        # Box-only data validates against weak masks: early stopping then trusts them too.
        val_supervision = "weak"
    else:
        val_supervision = "exact"
    val_items = RegionCrops([(folder, val_samples)], geometry, val_supervision, None, options.kinds, options.seed,
                            progress=progress)
    if len(train_items) == 0:
        raise DatasetError(
            f"{folder.root}: no regions to train on (supervision {options.supervision!r}, kinds {options.kinds})"
        )
    if len(val_items) == 0:
        raise DatasetError(
            f"{folder.root}: no regions in the validation samples ({validation}) to score the segmenter on"
        )
    log.info("training on %d regions (%d outlined), validating on %d (%s, %s masks)", len(train_items),
             sum(r.exact for r in train_items.refs), len(val_items), validation, val_supervision)

    pin = device.type == "cuda"
    generator = torch.Generator().manual_seed(options.seed)
    per_epoch = min(options.regions_per_epoch or len(train_items), len(train_items))
    sampler = torch.utils.data.RandomSampler(train_items, num_samples=per_epoch, generator=generator)
    train_loader = torch.utils.data.DataLoader(train_items, batch_size=options.batch_size, sampler=sampler,
                                               num_workers=options.workers, pin_memory=pin,
                                               drop_last=per_epoch > options.batch_size)
    val_loader = torch.utils.data.DataLoader(val_items, batch_size=options.batch_size * 2, num_workers=options.workers,
                                             pin_memory=pin)

    optimizer = torch.optim.AdamW(model.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    steps = max(1, options.epochs * len(train_loader))
    warmup = max(1, min(len(train_loader), steps // 10))

    def warm_cosine(step: int) -> float:
        # Linear warm-up (fresh decoder, pretrained encoder), then cosine down to 1% of the peak.
        cosine = 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps))
        return min(1.0, (step + 1) / warmup) * (0.01 + 0.99 * cosine)

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warm_cosine)

    weights = out / STAGE_FILES["segmenter"]
    kinds = options.kinds or train_items.kinds
    base_config = {
        "kinds": kinds,
        "training_data": [_data_summary(folder, train_samples, train_items, "train")]
        + [_data_summary(f, s, None, "train (extra)") for f, s in extra_parts],
        "validation": {**_data_summary(folder, val_samples, val_items, validation),
                       "early_stopping_masks": val_supervision},
        "training": {**asdict(options), "loss": "Dice + BCE (weak labels: 0.5 x Dice+BCE + box projection)",
                     "optimizer": "AdamW, warm-up then cosine"},
        "command": command,
    }
    history: list[dict[str, Any]] = []
    best_dice, best_epoch, best_state = -1.0, -1, None
    for epoch in range(options.epochs):
        model.train()
        train_items.set_epoch(epoch)
        started = time.time()
        losses = []
        bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{options.epochs}", unit="batch", disable=not progress,
                   leave=False)
        for batch in bar:
            logits = model(batch["inputs"].to(device, non_blocking=pin))
            loss = refiner_loss(logits, batch["target"].to(device), batch["box"].to(device), batch["exact"].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        val_dice = _crop_dice(model, val_loader, device)
        record = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "val_crop_dice": val_dice,
                  "seconds": round(time.time() - started, 1), "lr": optimizer.param_groups[0]["lr"]}
        history.append(record)
        log.info("epoch %d: loss %.4f, val Dice (crops) %.4f, %.0f s",
                 epoch + 1, record["loss"], val_dice, record["seconds"])
        atomic_write_json(out / "history.json", history)
        if val_dice > best_dice:
            best_dice, best_epoch = val_dice, epoch + 1
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
            model.save(weights, **base_config, scores={"val_crop_dice": best_dice, "epoch": best_epoch}, complete=False)
        elif epoch + 1 - best_epoch >= options.patience:
            log.info("no better validation Dice for %d epochs: stopping at epoch %d", options.patience, epoch + 1)
            break

    model.load_state_dict(best_state)
    model.to(device).eval()
    metrics = evaluate_segmenter(model, folder, None, progress=progress, samples=val_samples, kinds=options.kinds)
    metrics["split"] = validation
    unet, box, threshold = (metrics["methods"][m] for m in ("unet", "box", "threshold"))
    scores = {
        "split": validation,
        "dice": unet["dice"], "iou": unet["iou"],
        "dice_box_baseline": box["dice"], "iou_box_baseline": box["iou"],
        "dice_threshold_baseline": threshold["dice"], "iou_threshold_baseline": threshold["iou"],
        "per_kind": {k: {"dice": v["dice"], "iou": v["iou"], "n": v["n"]} for k, v in unet["per_kind"].items()},
        "n_regions": metrics["n_regions"],
        "val_crop_dice": best_dice, "epoch": best_epoch, "epochs_run": len(history),
    }
    config = model.save(weights, **base_config, scores=scores, complete=True)
    atomic_write_json(out / "metrics.json", metrics)
    if unet["dice"] is None:
        log.warning("no outlined validation regions: Dice/IoU against outlines cannot be measured (scores are None)")
    else:
        log.info("best epoch %d: val Dice %.4f (box %.4f, threshold %.4f) -> %s", best_epoch, unet["dice"], box["dice"],
                 threshold["dice"], weights)
    return TrainResult(weights, config, history)


__all__ = ["HOLDOUT_FRACTION", "TrainOptions", "TrainResult", "train_segmenter", "training_split"]
