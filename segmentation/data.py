"""Training pairs for the refiner: one item per region, cut around its (jittered) box.

Each item is the network input (RGB crop and box prior), the target mask in the crop, the
hard box in the crop (for the box-projection term) and whether the target is *exact* (a
polygon or mask the dataset drew) or *weak* (derived from the box by :mod:`segmentation.weak`).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from core.images import load_image
from datasets.folder import DatasetFolder
from datasets.records import Region, Sample
from segmentation.crops import CropGeometry, box_in_window, box_mask, box_prior, crop_mask, crop_rgb
from segmentation.options import SUPERVISION
from segmentation.weak import weak_mask

log = logging.getLogger(__name__)



def has_outline(region: Region) -> bool:
    """Whether the dataset drew this region's shape (mask PNG or polygon), not only its box."""
    return region.mask is not None or (region.polygon is not None and len(region.polygon) >= 3)


@dataclass(frozen=True)
class RegionRef:
    folder: int  # index into the item set's folders
    sample: int
    region: int
    exact: bool


@dataclass(frozen=True)
class Augment:
    """Training-time changes: a jittered box (a detector is never exact), flips and 90° turns
    (a close-up has no up), and mild brightness/contrast changes (scopes differ)."""

    box_jitter: float = 0.1  # std of each box edge's shift, as a fraction of the box side
    brightness: float = 0.1
    contrast: float = 0.1


class RegionCrops(torch.utils.data.Dataset):
    """Crops around every region of ``samples`` (from one or more dataset folders).

    ``supervision``: ``auto`` uses a region's outline when it has one and a weak mask otherwise;
    ``exact`` skips regions without an outline; ``weak`` ignores outlines (to measure weak
    supervision where outlines exist). Weak masks are computed once, up front.
    """

    def __init__(
        self,
        parts: Iterable[tuple[DatasetFolder, list[Sample]]],
        geometry: CropGeometry,
        supervision: str = "auto",
        augment: Augment | None = None,
        kinds: Iterable[str] | None = None,
        seed: int = 0,
        cache_images: bool = True,
        progress: bool = True,
    ) -> None:
        if supervision not in SUPERVISION:
            raise ValueError(f"supervision must be one of {', '.join(SUPERVISION)}, got {supervision!r}")
        self.parts = [(folder, list(samples)) for folder, samples in parts]
        self.geometry = geometry
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        wanted = set(kinds) if kinds is not None else None
        self.refs: list[RegionRef] = []
        for f, (_, samples) in enumerate(self.parts):
            for s, sample in enumerate(samples):
                for r, region in enumerate(sample.regions):
                    if wanted is not None and region.kind not in wanted:
                        continue
                    x1, y1, x2, y2 = region.box
                    if x2 - x1 < 1 or y2 - y1 < 1:
                        continue
                    exact = has_outline(region) and supervision != "weak"
                    if supervision == "exact" and not exact:
                        continue
                    self.refs.append(RegionRef(f, s, r, exact))
        self._images: dict[tuple[int, int], np.ndarray] = {}
        self._cache_images = cache_images
        self._masks: dict[RegionRef, tuple[int, int, np.ndarray]] = {}
        weak = [ref for ref in self.refs if not ref.exact]
        for ref in tqdm(weak, desc="weak masks", unit="box", disable=not progress or not weak):
            self._masks[ref] = self._tight(weak_mask(self._image(ref), self._region(ref).box))

    def __len__(self) -> int:
        return len(self.refs)

    @property
    def kinds(self) -> list[str]:
        return sorted({self._region(ref).kind for ref in self.refs})

    def set_epoch(self, epoch: int) -> None:
        """Augmentations depend on (seed, epoch, index), so a run is repeatable."""
        self.epoch = epoch

    def _sample(self, ref: RegionRef) -> Sample:
        return self.parts[ref.folder][1][ref.sample]

    def _region(self, ref: RegionRef) -> Region:
        return self._sample(ref).regions[ref.region]

    def _image(self, ref: RegionRef) -> np.ndarray:
        key = (ref.folder, ref.sample)
        if key in self._images:
            return self._images[key]
        folder = self.parts[ref.folder][0]
        rgb = load_image(folder.image_path(self._sample(ref))).rgb
        if self._cache_images:
            self._images[key] = rgb
        return rgb

    @staticmethod
    def _tight(mask: np.ndarray) -> tuple[int, int, np.ndarray]:
        """A full-picture mask stored as its bounding rectangle (masks are mostly empty)."""
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if rows.size == 0:
            return 0, 0, np.zeros((0, 0), dtype=bool)
        return int(rows[0]), int(cols[0]), mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].copy()

    def target_mask(self, ref: RegionRef, shape: tuple[int, int]) -> np.ndarray:
        """The full-picture target of a region: its outline, or its weak mask."""
        if ref not in self._masks:
            folder = self.parts[ref.folder][0]
            self._masks[ref] = self._tight(folder.region_mask(self._sample(ref), self._region(ref), shape))
        top, left, patch = self._masks[ref]
        full = np.zeros(shape, dtype=bool)
        full[top : top + patch.shape[0], left : left + patch.shape[1]] = patch
        return full

    def _jitter(self, box: tuple[float, ...], rng: np.random.Generator, shape: tuple[int, int]) -> tuple[float, ...]:
        x1, y1, x2, y2 = box
        w, h = x2 - x1, y2 - y1
        sx, sy = self.augment.box_jitter * w, self.augment.box_jitter * h
        dx1, dy1, dx2, dy2 = rng.normal(0.0, 1.0, 4) * (sx, sy, sx, sy)
        nx1, nx2 = x1 + dx1, x2 + dx2
        ny1, ny2 = y1 + dy1, y2 + dy2
        # Keep at least half the box, inside the picture.
        nx1, nx2 = min(nx1, x1 + w / 4), max(nx2, x2 - w / 4)
        ny1, ny2 = min(ny1, y1 + h / 4), max(ny2, y2 - h / 4)
        height, width = shape
        return (max(nx1, 0.0), max(ny1, 0.0), min(nx2, float(width)), min(ny2, float(height)))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        ref = self.refs[index]
        rgb = self._image(ref)
        labelled = box = self._region(ref).box
        rng = np.random.default_rng((self.seed, self.epoch, index))
        if self.augment is not None and self.augment.box_jitter > 0:
            box = self._jitter(box, rng, rgb.shape[:2])
        size = self.geometry.crop_size
        crop, window = crop_rgb(rgb, box, self.geometry)
        local_box = box_in_window(box, window, size)
        target = crop_mask(self.target_mask(ref, rgb.shape[:2]), window, size)
        image = crop.astype(np.float32) / 255.0
        planes = np.stack([image[:, :, 0], image[:, :, 1], image[:, :, 2],
                           box_prior(local_box, size, self.geometry.prior_softness),
                           target, box_mask(box_in_window(labelled, window, size), size)])
        if self.augment is not None:
            planes = np.rot90(planes, k=int(rng.integers(4)), axes=(1, 2))
            if rng.random() < 0.5:
                planes = planes[:, :, ::-1]
            gain = 1.0 + rng.uniform(-self.augment.contrast, self.augment.contrast)
            shift = rng.uniform(-self.augment.brightness, self.augment.brightness)
            planes = planes.copy()
            planes[:3] = np.clip((planes[:3] - 0.5) * gain + 0.5 + shift, 0.0, 1.0)
        planes = torch.from_numpy(np.ascontiguousarray(planes, dtype=np.float32))
        return {
            "inputs": planes[:4],
            "target": (planes[4:5] >= 0.5).float(),
            "box": planes[5:6],  # the labelled box (not the jittered prompt): the weak label
            "exact": torch.tensor(float(ref.exact)),
        }


__all__ = ["SUPERVISION", "Augment", "RegionCrops", "RegionRef", "has_outline"]
