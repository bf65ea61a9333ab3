"""Training pairs for the hair network: synthetic scenes on disk, crops, zoom and augmentation.

Scenes are rendered once (:func:`render_scenes`, a few minutes on two cores) and stored as
one ``.npz`` each: the picture, the hair mask and the visible strands' polylines. A training
crop is cut at a random *zoom* (real scopes magnify 20x-200x, so a real shaft is anything
from 2 to 40 px across while the generator draws 3-13 px), and its centre-line target is
redrawn at that zoom, so it stays 3 px wide at every magnification. Photometric
augmentation (:mod:`hair.augment`) then moves the clean synthetic colours towards what real
scopes deliver.

    python -m hair.training_data --out /work/scratch/hair/scenes/train --n 1500 --seed 1000
"""
from __future__ import annotations

import argparse
import itertools
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from hair.synthetic import CENTERLINE_PX, HairScene, draw_centerlines, render_hair_scene

log = logging.getLogger(__name__)


#: Target value meaning "unknown here, leave out of the loss" (outside the picture, unsure pseudo-labels).
IGNORE = -1.0


@dataclass
class Crop:
    """One training example: network input and its two targets (0, 1 or :data:`IGNORE`)."""

    rgb: np.ndarray  # S x S x 3 uint8
    mask: np.ndarray  # S x S float32
    centerline: np.ndarray  # S x S float32


# ----------------------------------------------------------------------------- storage
def save_scene(scene: HairScene, path: Path) -> None:
    lengths = np.array([len(p) for p in scene.polylines], np.int64)
    points = np.concatenate(scene.polylines) if scene.polylines else np.zeros((0, 2), np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.partial.npz")
    np.savez_compressed(
        partial, rgb=scene.rgb, mask=np.packbits(scene.mask), shape=np.array(scene.mask.shape),
        widths=scene.widths_px, points=points, lengths=lengths,
        centerline=np.packbits(scene.centerline), ids=scene.ids.astype(np.uint16),
    )
    partial.replace(path)


def load_scene(path: Path) -> HairScene:
    with np.load(path) as data:
        shape = tuple(int(v) for v in data["shape"])
        size = shape[0] * shape[1]
        mask = np.unpackbits(data["mask"])[:size].reshape(shape).astype(bool)
        centerline = np.unpackbits(data["centerline"])[:size].reshape(shape).astype(bool)
        bounds = np.concatenate([[0], np.cumsum(data["lengths"])])
        points = data["points"]
        polylines = [points[a:b] for a, b in itertools.pairwise(bounds)]
        return HairScene(data["rgb"], mask, centerline, data["ids"].astype(np.int32),
                         data["widths"].astype(np.float64), polylines, None)


def render_scenes(out: Path, n: int, seed: int, size: tuple[int, int] = (640, 480)) -> list[Path]:
    """Render ``n`` scenes into ``out`` (``scene_00000.npz`` ...); existing files are kept.

    Scene ``i`` depends only on (``seed``, ``i``), so an interrupted run resumes exactly.
    """
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in tqdm(range(n), desc=f"scenes seed {seed}", unit="scene"):
        path = out / f"scene_{index:05d}.npz"
        if not path.exists():
            save_scene(render_hair_scene(np.random.default_rng([seed, index]), size), path)
        paths.append(path)
    return paths


# ----------------------------------------------------------------------------- crops
def zoomed_crop(scene: HairScene, rng: np.random.Generator, size: int, zoom: float) -> Crop:
    """A ``size`` square crop of ``scene`` magnified ``zoom`` times (< 1 shrinks), flipped at random.

    The crop window is ``size / zoom`` scene pixels; where it runs past the picture (zoom < 1
    on a small frame) the outside is reflected and its targets ignored.
    """
    height, width = scene.mask.shape
    window = size / zoom
    x0 = rng.uniform(0, max(0.0, width - window)) if window < width else (width - window) / 2
    y0 = rng.uniform(0, max(0.0, height - window)) if window < height else (height - window) / 2
    # Affine map scene -> crop: scale by zoom, shift the window's corner to 0.
    matrix = np.array([[zoom, 0.0, -x0 * zoom], [0.0, zoom, -y0 * zoom]], np.float32)
    interpolation = cv2.INTER_AREA if zoom < 1 else cv2.INTER_LINEAR
    rgb = cv2.warpAffine(scene.rgb, matrix, (size, size), flags=interpolation, borderMode=cv2.BORDER_REFLECT_101)
    mask = cv2.warpAffine(scene.mask.astype(np.float32), matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    known = cv2.warpAffine(np.ones((height, width), np.float32), matrix, (size, size), flags=cv2.INTER_NEAREST,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    reach = cv2.dilate((mask > 0.25).astype(np.uint8), np.ones((3, 3), np.uint8))
    lines = draw_centerlines(np.zeros((size, size), np.uint8),
                             [p * zoom - np.array([x0 * zoom, y0 * zoom], np.float32) for p in scene.polylines],
                             CENTERLINE_PX)
    centerline = (lines & reach).astype(np.float32)
    outside = known < 0.5
    mask = (mask >= 0.5).astype(np.float32)
    mask[outside] = IGNORE
    centerline[outside] = IGNORE
    return flip(Crop(rgb, mask, centerline), rng)


def pseudo_crop(
    rgb: np.ndarray, hair: np.ndarray, centerline: np.ndarray, rng: np.random.Generator, size: int,
    zoom_range: tuple[float, float] = (0.7, 1.4), confident: tuple[float, float] = (0.25, 0.75),
    centerline_confident: tuple[float, float] = (0.15, 0.6),
) -> Crop:
    """A crop of a real picture with targets from the network's own confident predictions.

    ``hair`` and ``centerline`` are probability maps (0-1) of the picture; pixels between the
    two ``confident`` levels are left out of the loss, the rest become 0 or 1.
    """
    height, width = hair.shape
    zoom = float(np.exp(rng.uniform(np.log(zoom_range[0]), np.log(zoom_range[1]))))
    window = size / zoom
    x0 = rng.uniform(0, max(0.0, width - window))
    y0 = rng.uniform(0, max(0.0, height - window))
    matrix = np.array([[zoom, 0.0, -x0 * zoom], [0.0, zoom, -y0 * zoom]], np.float32)
    warp = lambda a, flags: cv2.warpAffine(a, matrix, (size, size), flags=flags, borderMode=cv2.BORDER_REFLECT_101)
    crop_rgb = warp(rgb, cv2.INTER_LINEAR)
    targets = []
    for probability, (low, high) in ((hair, confident), (centerline, centerline_confident)):
        p = warp(probability.astype(np.float32), cv2.INTER_LINEAR)
        target = np.full(p.shape, IGNORE, np.float32)
        target[p <= low] = 0.0
        target[p >= high] = 1.0
        targets.append(target)
    return flip(Crop(crop_rgb, targets[0], targets[1]), rng)


def flip(crop: Crop, rng: np.random.Generator) -> Crop:
    """Random horizontal/vertical flip and 90-degree turn (hairs have no preferred direction)."""
    arrays = [crop.rgb, crop.mask, crop.centerline]
    if rng.uniform() < 0.5:
        arrays = [a[:, ::-1] for a in arrays]
    if rng.uniform() < 0.5:
        arrays = [a[::-1] for a in arrays]
    if rng.uniform() < 0.5:
        arrays = [np.swapaxes(a, 0, 1) for a in arrays]
    return Crop(*(np.ascontiguousarray(a) for a in arrays))


def sample_zoom(rng: np.random.Generator, low: float = 0.6, high: float = 3.0, native_share: float = 0.35) -> float:
    """Magnification for a crop: native (1.0) a fixed share of the time, else log-uniform."""
    if rng.uniform() < native_share:
        return 1.0
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def main() -> None:
    parser = argparse.ArgumentParser(description="Render synthetic hair scenes for training the hair network.")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    render_scenes(args.out, args.n, args.seed)


if __name__ == "__main__":
    main()
