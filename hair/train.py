"""Train the hair network without hand labels: synthetic truth, then self-training on real frames.

Three steps, each resumable from the files the previous one wrote:

1. ``synthetic``: crops of pre-rendered synthetic scenes (:mod:`hair.training_data`) at random
   zoom, with photometric augmentation (:mod:`hair.augment`) for the domain gap.
2. ``pseudo``: the network labels real close-ups (scalp-data *train* split only); its
   probabilities are stored per picture.
3. ``selftrain``: training goes on with half of each batch from real crops, whose targets
   are the confident pseudo-labels (unsure pixels are left out), the other half synthetic.

    python -m hair.train synthetic --scenes S/train --val-scenes S/val --out RUN --steps 1500
    python -m hair.train pseudo --checkpoint RUN/synthetic.pt --dataset DATA/scalp-data --out RUN/pseudo
    python -m hair.train selftrain --checkpoint RUN/synthetic.pt --scenes S/train --val-scenes S/val \\
        --pseudo RUN/pseudo --out RUN --steps 600
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from hair.augment import photometric
from hair.meter import FRAME_WIDTH, HairMeter
from hair.model import HairNet
from hair.training_data import IGNORE, Crop, load_scene, pseudo_crop, sample_zoom, zoomed_crop

log = logging.getLogger(__name__)

#: Encoder parts kept frozen: the full-resolution stem and first two stages are generic edge
#: detectors, and their backward pass is most of a CPU step.
FROZEN_BLOCKS = 2
#: The scalp-data export stretches 640 x 480 scope frames to 640 x 640.
SCALP_DATA_ASPECT = 4 / 3


# ----------------------------------------------------------------------------- pieces
def freeze_early_encoder(net: HairNet, blocks: int = FROZEN_BLOCKS) -> list[torch.nn.Module]:
    """Freeze the stem and the first ``blocks`` encoder stages; returns them (kept in eval mode)."""
    encoder = net.encoder
    frozen = [encoder.conv_stem, encoder.bn1, *[encoder.blocks[i] for i in range(blocks)]]
    for module in frozen:
        for parameter in module.parameters():
            parameter.requires_grad_(False)
    return frozen


def masked_loss(logits: torch.Tensor, target: torch.Tensor, pos_weight: float = 1.0) -> torch.Tensor:
    """BCE + soft Dice over the pixels whose target is not IGNORE."""
    known = (target != IGNORE).float()
    target = target.clamp(min=0.0)
    bce = F.binary_cross_entropy_with_logits(
        logits, target, weight=known * (1.0 + (pos_weight - 1.0) * target), reduction="sum"
    ) / known.sum().clamp(min=1.0)
    probability = torch.sigmoid(logits) * known
    intersection = (probability * target).sum()
    dice = 1.0 - (2.0 * intersection + 1.0) / (probability.sum() + (target * known).sum() + 1.0)
    return bce + dice


def to_batch(crops: list[Crop]) -> tuple[torch.Tensor, torch.Tensor]:
    rgb = torch.from_numpy(np.stack([c.rgb for c in crops])).permute(0, 3, 1, 2).float().div_(255.0)
    targets = torch.from_numpy(np.stack([np.stack([c.mask, c.centerline]) for c in crops]))
    return rgb, targets


def dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    total = prediction.sum() + truth.sum()
    return 1.0 if total == 0 else float(2.0 * (prediction & truth).sum() / total)


def validate(net: HairNet, scenes: list) -> dict[str, float]:
    """Hair and centre-line Dice on whole synthetic frames at native scale."""
    hair_dice, line_dice = [], []
    for scene in scenes:
        hair, centerline = net.probabilities(scene.rgb)
        hair_dice.append(dice(hair > net.threshold, scene.mask))
        line_dice.append(dice(centerline > net.centerline_threshold, scene.centerline))
    net.train()
    return {"hair_dice": float(np.mean(hair_dice)), "centerline_dice": float(np.mean(line_dice))}


class SceneBank:
    """Synthetic scenes held in memory (about 1.3 MB each) for random crops."""

    def __init__(self, folder: Path, limit: int | None = None, zoom: tuple[float, float] = (0.6, 3.0),
                 native_share: float = 0.35) -> None:
        self.zoom, self.native_share = zoom, native_share
        paths = sorted(folder.glob("scene_*.npz"))[:limit]
        if not paths:
            raise FileNotFoundError(f"no scene_*.npz in {folder}; render them with 'python -m hair.training_data'")
        self.scenes = [self._slim(load_scene(p)) for p in tqdm(paths, desc=f"loading {folder.name}", unit="scene")]

    @staticmethod
    def _slim(scene):  # the id map is not needed for training
        scene.ids = np.zeros((1, 1), np.int32)
        return scene

    def crops(self, rng: np.random.Generator, n: int, size: int) -> list[Crop]:
        out = []
        for index in rng.integers(0, len(self.scenes), n):
            crop = zoomed_crop(self.scenes[index], rng, size, sample_zoom(rng, *self.zoom, self.native_share))
            crop.rgb = photometric(crop.rgb, rng)
            out.append(crop)
        return out


class PseudoBank:
    """Real frames and the network's stored probabilities on them."""

    def __init__(self, folder: Path) -> None:
        paths = sorted(folder.glob("*.npz"))
        if not paths:
            raise FileNotFoundError(f"no pseudo-labels in {folder}; make them with 'python -m hair.train pseudo'")
        self.items = []
        for path in tqdm(paths, desc="loading pseudo-labels", unit="img"):
            with np.load(path) as data:
                self.items.append((data["rgb"], data["hair"], data["centerline"]))

    def crops(self, rng: np.random.Generator, n: int, size: int) -> list[Crop]:
        out = []
        for index in rng.integers(0, len(self.items), n):
            rgb, hair, centerline = self.items[index]
            crop = pseudo_crop(rgb, hair.astype(np.float32) / 255.0, centerline.astype(np.float32) / 255.0, rng, size)
            crop.rgb = photometric(crop.rgb, rng, strength=0.6)
            out.append(crop)
        return out


# ----------------------------------------------------------------------------- loops
def train_loop(
    net: HairNet,
    sources: list[tuple[object, float]],
    val_scenes: list,
    out: Path,
    name: str,
    steps: int,
    batch: int,
    crop: int,
    lr: float,
    seed: int,
) -> dict[str, float]:
    """AdamW with warm-up and cosine decay; validates every 250 steps, keeps the best."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    frozen = freeze_early_encoder(net)
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    warmup = max(1, min(100, steps // 10))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1.0 + math.cos(math.pi * min(s, steps) / steps))
    )
    net.train()
    for module in frozen:
        module.eval()
    best, history = -1.0, []
    started = time.time()
    running = []
    for step in range(1, steps + 1):
        crops: list[Crop] = []
        for source, share in sources:
            crops += source.crops(rng, max(1, round(batch * share)), crop)
        rgb, targets = to_batch(crops)
        logits = net(rgb)
        loss = masked_loss(logits[:, 0], targets[:, 0]) + masked_loss(logits[:, 1], targets[:, 1], pos_weight=2.0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        running.append(float(loss.detach()))
        if step % 25 == 0:
            log.info("%s step %d/%d loss %.4f (%.2f s/step)", name, step, steps, np.mean(running),
                     (time.time() - started) / step)
            running = []
        if step % 250 == 0 or step == steps:
            scores = validate(net, val_scenes)
            for module in frozen:
                module.eval()
            history.append({"step": step, **scores})
            log.info("%s step %d val %s", name, step, json.dumps(scores))
            torch.save(net.state_dict(), out / f"{name}_last.pt")
            if scores["hair_dice"] + scores["centerline_dice"] > best:
                best = scores["hair_dice"] + scores["centerline_dice"]
                torch.save(net.state_dict(), out / f"{name}.pt")
    (out / f"{name}_history.json").write_text(json.dumps(history, indent=2))
    return history[-1] if history else {}


def make_pseudo_labels(net: HairNet, dataset: Path, out: Path, split: str = "train") -> int:
    """Store the network's probabilities on every real picture of ``split`` (never val/test)."""
    from datasets.folder import DatasetFolder

    if split != "train":
        raise ValueError("self-training may only use the train split; val and test stay unseen")
    folder = DatasetFolder.load(dataset)
    samples = folder.split("train")
    meter = HairMeter(net, native_aspect=SCALP_DATA_ASPECT)
    out.mkdir(parents=True, exist_ok=True)
    for sample in tqdm(samples, desc="pseudo-labels", unit="img"):
        target = out / (Path(sample.image).stem + ".npz")
        if target.exists():
            continue
        bgr = cv2.imread(str(folder.image_path(sample)), cv2.IMREAD_COLOR)
        if bgr is None:
            log.warning("cannot read %s; skipped", folder.image_path(sample))
            continue
        # The frame the meter will work in (its per-picture working width), so the real crops
        # are learned at the scale they are measured at.
        frame, hair, centerline = meter.probabilities(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        np.savez_compressed(target, rgb=frame.rgb, hair=np.round(hair * 255).astype(np.uint8),
                            centerline=np.round(centerline * 255).astype(np.uint8))
    return len(samples)


def _load_net(checkpoint: Path | None) -> HairNet:
    net = HairNet(pretrained=checkpoint is None)
    if checkpoint is not None:
        net.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True), strict=True)
    return net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for command in ("synthetic", "selftrain"):
        p = sub.add_parser(command)
        p.add_argument("--scenes", type=Path, required=True)
        p.add_argument("--val-scenes", type=Path, required=True)
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--steps", type=int, default=1500)
        p.add_argument("--batch", type=int, default=12)
        p.add_argument("--crop", type=int, default=192)
        p.add_argument("--lr", type=float, default=2e-3 if command == "synthetic" else 5e-4)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--checkpoint", type=Path, default=None)
        p.add_argument("--zoom", type=float, nargs=2, default=(0.6, 3.0), metavar=("LOW", "HIGH"),
                       help="crop magnification range (log-uniform): real scopes magnify 20x-200x")
        p.add_argument("--native-share", type=float, default=0.35, help="share of crops at the scenes' own scale")
        if command == "selftrain":
            p.add_argument("--pseudo", type=Path, required=True)
            p.add_argument("--real-share", type=float, default=0.5)
    p = sub.add_parser("export", help="write hair.safetensors + config from a checkpoint")
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--info", type=Path, nargs="*", default=[], help="JSON files merged into the config")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--centerline-threshold", type=float, default=0.5)
    p.add_argument("--width-threshold", type=float, default=0.5,
                   help="hair probability at which shaft edges are drawn for widths (tune on synthetic val scenes)")
    p = sub.add_parser("pseudo")
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_num_threads(2)

    if args.command == "export":
        net = _load_net(args.checkpoint)
        net.threshold, net.centerline_threshold = args.threshold, args.centerline_threshold
        net.width_threshold = args.width_threshold
        extra: dict = {}
        for path in args.info:
            extra.update(json.loads(path.read_text()))
        config = net.save(args.out / "hair.safetensors", frame={"width": FRAME_WIDTH, "note": (
            "pictures are resized to 640 px wide before the network; un-stretch Roboflow 640x640 exports "
            "of 640x480 frames with HairMeter(native_aspect=4/3)")}, checkpoint=str(args.checkpoint), **extra)
        log.info("wrote %s (sha256 %s)", args.out / "hair.safetensors", config["sha256"])
        return
    if args.command == "pseudo":
        net = _load_net(args.checkpoint).eval()
        n = make_pseudo_labels(net, args.dataset, args.out)
        log.info("pseudo-labelled %d train pictures into %s", n, args.out)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    net = _load_net(args.checkpoint)
    scenes = SceneBank(args.scenes, zoom=tuple(args.zoom), native_share=args.native_share)
    val = SceneBank(args.val_scenes, limit=12).scenes
    if args.command == "synthetic":
        sources = [(scenes, 1.0)]
    else:
        sources = [(scenes, 1.0 - args.real_share), (PseudoBank(args.pseudo), args.real_share)]
    scores = train_loop(net, sources, val, args.out, args.command, args.steps, args.batch, args.crop, args.lr, args.seed)
    log.info("%s done: %s", args.command, json.dumps(scores))


if __name__ == "__main__":
    main()
