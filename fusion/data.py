"""Training examples for the classifier, from one or more dataset folders.

Each sample becomes an :class:`Example`: its image, a class index per head (absent = unknown)
and whether its dataset outlines lesions (then a sample without regions has an empty mask; a
dataset that outlines nothing gives no mask at all).

Sets that outline lesions but grade nothing (Roboflow scalp-data) get **derived** 0-3 grades
from the ground-truth affected-area fraction (:func:`derive_area_grades`): 0 when the kind is
absent, else 1-3 by the terciles of the positive fractions on the train split. They are
labels of our making, not clinical grades, and every config and report says so.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from core.images import keep_channels, letterbox, load_image
from core.taxonomy import HAIR_LOSS_GRADES, INDICATORS
from datasets.folder import DatasetFolder
from datasets.records import Sample
from fusion.heads import HeadSpec
from fusion.inputs import image_tensor, letterbox_mask, mask_tensor

log = logging.getLogger(__name__)

DERIVED_NOTE = (
    "derived grades: 0 = no outlined region of the kind, 1-3 = terciles of the ground-truth "
    "affected-area fraction (union of that kind's polygons / image area) among train images that "
    "have the kind; made by scalpscope from lesion outlines, not clinical grades"
)


# ----------------------------------------------------------------------------- derived grades
def annotated_kinds(folder: DatasetFolder) -> list[str]:
    """Indicator kinds this dataset outlines (polygons or masks) anywhere, in indicator order."""
    kinds = {r.kind for s in folder.samples for r in s.regions if r.polygon or r.mask}
    return [k for k in INDICATORS if k in kinds]


def grades_anything(folder: DatasetFolder) -> bool:
    return any(g is not None for s in folder.samples for g in s.indicators.values())


def area_fractions(folder: DatasetFolder, sample: Sample, kinds: list[str]) -> dict[str, float]:
    """Share of the image covered by the union of each kind's regions (0.0 when none)."""
    height, width = sample.height, sample.width
    if not height or not width:
        height, width = load_image(folder.image_path(sample)).rgb.shape[:2]
    out = {}
    for kind in kinds:
        union = np.zeros((height, width), dtype=bool)
        for region in sample.regions:
            if region.kind == kind:
                union |= folder.region_mask(sample, region, (height, width))
        out[kind] = float(union.mean())
    return out


def fit_area_cuts(fractions: list[dict[str, float]], kinds: list[str]) -> dict[str, tuple[float, float]]:
    """Per kind, the area fractions where derived grades 2 and 3 begin (terciles of the positives)."""
    cuts = {}
    for kind in kinds:
        positive = np.array([f[kind] for f in fractions if f.get(kind, 0.0) > 0])
        if positive.size < 3:
            log.warning("derived grades: only %d train images with %s; its grades 2-3 stay unused", positive.size, kind)
            cuts[kind] = (float("inf"), float("inf"))
            continue
        low, high = np.quantile(positive, [1 / 3, 2 / 3])
        cuts[kind] = (float(low), float(high))
    return cuts


def derive_area_grades(fractions: dict[str, float], cuts: dict[str, tuple[float, float]]) -> dict[str, int]:
    """Derived 0-3 grade per kind from its affected-area fraction.

    >>> derive_area_grades({"dandruff": 0.0, "sebum": 0.05}, {"dandruff": (0.01, 0.03), "sebum": (0.02, 0.04)})
    {'dandruff': 0, 'sebum': 3}
    """
    out = {}
    for kind, (grade2, grade3) in cuts.items():
        fraction = fractions.get(kind, 0.0)
        out[kind] = 0 if fraction <= 0 else 1 + int(fraction >= grade2) + int(fraction >= grade3)
    return out


@dataclass
class DerivedGrades:
    """Derived grades of one dataset: the cuts (fit on its train split) and each image's grades."""

    dataset: str
    cuts: dict[str, tuple[float, float]]
    grades: dict[str, dict[str, int]] = field(default_factory=dict)  # sample.image -> kind -> grade

    def to_config(self) -> dict:
        return {"kinds": list(self.cuts), "cuts": {k: list(v) for k, v in self.cuts.items()},
                "fit_on": "train", "note": DERIVED_NOTE}

    @classmethod
    def fit(cls, folder: DatasetFolder, cuts: dict[str, tuple[float, float]] | None = None) -> DerivedGrades:
        kinds = annotated_kinds(folder)
        fractions = {s.image: area_fractions(folder, s, kinds) for s in tqdm(folder.samples, desc=f"areas {folder.name}", leave=False)}
        if cuts is None:
            cuts = fit_area_cuts([fractions[s.image] for s in folder.split("train")], kinds)
        grades = {image: derive_area_grades(f, cuts) for image, f in fractions.items()}
        return cls(folder.name, cuts, grades)


def needs_derived_grades(folder: DatasetFolder) -> bool:
    """Outlines lesions but grades none of the six indicators."""
    return bool(annotated_kinds(folder)) and not grades_anything(folder)


# ----------------------------------------------------------------------------- examples
def native_scale(folder: DatasetFolder) -> list[str]:
    """The dataset's own ordinal scale (``dataset.json``'s ``native_scale``), [] when it has none."""
    info = folder.root / "dataset.json"
    if not info.is_file():
        return []
    return list(json.loads(info.read_text(encoding="utf-8")).get("native_scale") or [])


@dataclass
class Example:
    folder: DatasetFolder
    sample: Sample
    targets: dict[str, int]  # head name -> class index (absent: unknown)
    outlines_lesions: bool

    @property
    def image_path(self) -> Path:
        return self.folder.image_path(self.sample)

    def lesion_mask(self, channels: Sequence[str] | None = None) -> np.ndarray | None:
        """Ground-truth regions as a mask: the union of all (H x W bool) or, with ``channels``,
        one layer per kind (H x W x K bool); None when the dataset outlines nothing."""
        if not self.outlines_lesions:
            return None
        shape = (self.sample.height, self.sample.width)
        layers = {kind: i for i, kind in enumerate(channels)} if channels else None
        mask = np.zeros((*shape, len(layers)) if layers else shape, dtype=bool)
        for region in self.sample.regions:
            if layers is None:
                mask |= self.folder.region_mask(self.sample, region, shape)
            elif region.kind in layers:
                mask[:, :, layers[region.kind]] |= self.folder.region_mask(self.sample, region, shape)
        return mask


def sample_targets(sample: Sample, folder: DatasetFolder, heads: list[HeadSpec],
                   derived: DerivedGrades | None) -> dict[str, int]:
    """Class index per head for which this sample has a label."""
    targets = {}
    for head in heads:
        value = None
        if head.kind == "indicator":
            value = sample.indicators.get(head.source)
            if value is None and derived is not None:
                value = derived.grades.get(sample.image, {}).get(head.source)
            value = None if value is None else head.classes.index(str(value))
        elif head.kind == "hair_loss" and sample.hair_loss is not None:
            value = HAIR_LOSS_GRADES.index(sample.hair_loss)
        elif head.kind == "native" and head.source == folder.name:
            native = sample.source.get("class")
            value = head.classes.index(native) if isinstance(native, str) and native in head.classes else None
        if value is not None:
            targets[head.name] = value
    return targets


def collect_examples(folders: list[DatasetFolder], split: str, heads: list[HeadSpec],
                     derived: dict[str, DerivedGrades]) -> list[Example]:
    examples = []
    for folder in folders:
        outlines = bool(annotated_kinds(folder)) or any(s.regions for s in folder.samples)
        for sample in folder.split(split):
            targets = sample_targets(sample, folder, heads, derived.get(folder.name))
            if targets:
                examples.append(Example(folder, sample, targets, outlines))
    return examples


def label_distribution(examples: list[Example], heads: list[HeadSpec]) -> dict[str, dict[str, int]]:
    """Per head, how many examples carry each class (heads without labels map to zeros)."""
    out = {h.name: {c: 0 for c in h.classes} for h in heads}
    by_name = {h.name: h for h in heads}
    for example in examples:
        for name, index in example.targets.items():
            out[name][by_name[name].classes[index]] += 1
    return out


def label_views(examples: list[Example], heads: list[HeadSpec]) -> dict[str, list[str]]:
    """Per head, the views (closeup, head) of the training pictures that carry its labels.

    The pipeline reports a head's grade only on those views: a grade learned from photos of
    heads means nothing on a trichoscope close-up.
    """
    out: dict[str, set[str]] = {h.name: set() for h in heads}
    for example in examples:
        for name in example.targets:
            out[name].add(example.sample.view or "closeup")
    return {name: sorted(views) for name, views in out.items()}


# ----------------------------------------------------------------------------- augmentation
#: ``Augment.geometry`` modes: ``free`` turns, zooms and reframes; ``area`` keeps every region's
#: share of the frame.
GEOMETRIES = ("free", "area")


@dataclass(frozen=True)
class Augment:
    """Random photometric and geometric changes, applied alike to the image and its mask.

    ``geometry="free"`` (the default) rotates by up to ``rotation`` degrees, zooms and, with
    ``reframe``, shows the picture as a letterboxed photo of another shape: each of these changes
    how much of the frame a lesion covers (a 0.85 zoom shrinks it to 0.72), so where a grade *is*
    an area share (the synthetic grades, scalp-data's derived ones), it moves pictures across
    grade boundaries without changing their label. ``geometry="area"`` keeps only changes that
    keep every share: flips and, on close-ups, quarter turns of the square letterbox.
    """

    hflip: float = 0.5
    vflip_closeup: float = 0.5  # a close-up has no up; a head photo has
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.25
    hue: float = 0.02  # fraction of the hue circle
    rotation: float = 15.0  # degrees, either way
    scale: tuple[float, float] = (0.85, 1.15)
    # The training sets are square exports, but phone photos arrive 4:3 or 3:4 and are letterboxed at
    # inference: this share of the time, show a picture as such a photo would look (bars, cut or
    # unstretched). Off by default: at 0.5 it did not help on valid (weights/MODEL_CARD.md).
    reframe: float = 0.0
    reframe_aspect: tuple[float, float] = (0.7, 1.0)  # short side / long side
    geometry: str = "free"  # free | area (see the class doc)

    def __post_init__(self) -> None:
        if self.geometry not in GEOMETRIES:
            raise ValueError(f"augmentation geometry {self.geometry!r} unknown; use one of {', '.join(GEOMETRIES)}")

    def __call__(self, rgb: np.ndarray, mask: np.ndarray | None, rng: np.random.Generator,
                 closeup: bool) -> tuple[np.ndarray, np.ndarray | None]:
        free = self.geometry == "free"
        if free and rng.random() < self.reframe:
            rgb, mask = self._reframe(rgb, mask, rng)
        if rng.random() < self.hflip:
            rgb, mask = rgb[:, ::-1], None if mask is None else mask[:, ::-1]
        if closeup and rng.random() < self.vflip_closeup:
            rgb, mask = rgb[::-1], None if mask is None else mask[::-1]
        if free:
            rgb, mask = self._turn_and_zoom(rgb, mask, rng)
        elif closeup:
            turns = int(rng.integers(4))
            rgb, mask = np.rot90(rgb, turns), None if mask is None else np.rot90(mask, turns)
        rgb = np.ascontiguousarray(rgb)
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-self.hue, self.hue) * 180.0) % 180.0
        hsv[..., 1] *= rng.uniform(1 - self.saturation, 1 + self.saturation)
        rgb = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
        rgb *= rng.uniform(1 - self.brightness, 1 + self.brightness)
        mean = rgb.mean()
        rgb = (rgb - mean) * rng.uniform(1 - self.contrast, 1 + self.contrast) + mean
        return np.clip(rgb, 0, 255).astype(np.uint8), mask

    def _turn_and_zoom(self, rgb: np.ndarray, mask: np.ndarray | None,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        size = rgb.shape[0]
        angle = rng.uniform(-self.rotation, self.rotation)
        zoom = rng.uniform(*self.scale)
        matrix = cv2.getRotationMatrix2D((size / 2, size / 2), angle, zoom)
        rgb = cv2.warpAffine(np.ascontiguousarray(rgb), matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
        if mask is not None:
            warped = cv2.warpAffine(np.ascontiguousarray(mask), matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
            mask = keep_channels(warped, mask)
        return rgb, mask

    def _reframe(self, rgb: np.ndarray, mask: np.ndarray | None,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        """Cut or squash one axis of the square picture to a random aspect and letterbox it back."""
        size = rgb.shape[0]
        short = max(1, round(size * rng.uniform(*self.reframe_aspect)))
        axis = int(rng.integers(2))
        if rng.random() < 0.5:  # a window of a wider photo
            start = int(rng.integers(size - short + 1))
            window = slice(start, start + short)
            cut = (lambda a: a[window]) if axis == 0 else (lambda a: a[:, window])
            rgb, mask = cut(rgb), None if mask is None else cut(mask)
        else:  # the whole photo, without the export's stretch
            shape = (size, short) if axis == 0 else (short, size)  # cv2 wants (width, height)
            rgb = cv2.resize(rgb, shape, interpolation=cv2.INTER_AREA)
            if mask is not None:
                mask = keep_channels(cv2.resize(mask, shape, interpolation=cv2.INTER_LINEAR), mask)
        rgb = letterbox(np.ascontiguousarray(rgb), size, fill=0)[0]
        return rgb, None if mask is None else letterbox(np.ascontiguousarray(mask), size, fill=0)[0]


# ----------------------------------------------------------------------------- torch dataset
class LetterboxCache:
    """Every example's image and ground-truth mask, decoded and letterboxed once, kept in RAM.

    Decoding 640 px JPEGs dominates a CPU epoch otherwise; at 448 px a thousand images take
    about 0.8 GB.
    """

    def __init__(self, examples: list[Example], size: int, desc: str = "cache",
                 channels: Sequence[str] | None = None) -> None:
        self.size = size
        self.n_channels = len(channels) if channels else 1
        self.images: list[np.ndarray] = []
        self.masks: list[np.ndarray | None] = []
        for example in tqdm(examples, desc=desc, unit="img", leave=False):
            rgb = load_image(example.image_path).rgb
            boxed, _, _ = letterbox(rgb, size, fill=0)
            self.images.append(boxed)
            mask = example.lesion_mask(channels)
            if mask is not None and mask.shape[:2] != rgb.shape[:2]:
                resized = cv2.resize(mask.astype(np.uint8), (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_NEAREST)
                mask = keep_channels(resized, mask)
            self.masks.append(None if mask is None else (letterbox_mask(mask, size) * 255).astype(np.uint8))


class FusionDataset(torch.utils.data.Dataset):
    """(image 3 x S x S, mask K x S x S, targets per head with -1 = unknown)."""

    def __init__(self, examples: list[Example], cache: LetterboxCache, heads: list[HeadSpec],
                 mean: tuple[float, ...], std: tuple[float, ...], augment: Augment | None = None,
                 mask_dropout: float = 0.0, use_masks: bool = True, seed: int = 0) -> None:
        self.examples, self.cache, self.heads = examples, cache, heads
        self.mean, self.std = mean, std
        self.augment, self.mask_dropout, self.use_masks = augment, mask_dropout, use_masks
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.examples)

    def targets(self, index: int) -> torch.Tensor:
        labels = self.examples[index].targets
        return torch.tensor([labels.get(h.name, -1) for h in self.heads], dtype=torch.long)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        example = self.examples[index]
        rgb = self.cache.images[index]
        mask = self.cache.masks[index] if self.use_masks else None
        if self.augment is not None:
            rgb, mask = self.augment(rgb, mask, self.rng, closeup=example.sample.view != "head")
            if mask is not None and self.rng.random() < self.mask_dropout:
                mask = None  # learn to grade without a mask too, as when the segmenter is skipped
        mask_float = None if mask is None else mask.astype(np.float32) / 255.0
        return (image_tensor(rgb, self.mean, self.std), mask_tensor(mask_float, self.cache.size, self.cache.n_channels),
                self.targets(index))
