"""The dataset folder: ``dataset.jsonl`` + ``images/`` + optional ``masks/`` + ``relabel.yaml``.

Every import writes one; every training, evaluation and export command reads one, so a
Roboflow export, an AI-Hub download and the synthetic generator all look alike afterwards.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.io import atomic_write_text
from core.taxonomy import canonical_split
from datasets.records import Region, Sample

JSONL_NAME = "dataset.jsonl"


class DatasetError(ValueError):
    """A dataset folder or source that cannot be read; the message names the file and what to do."""


@dataclass
class DatasetFolder:
    """A dataset folder on disk and its samples.

    >>> ds = DatasetFolder.load("runs/scalp-data")          # doctest: +SKIP
    >>> [s.image for s in ds.split("val")][:1]               # doctest: +SKIP
    ['images/valid/D_1_jpg.rf.0a1b.jpg']
    """

    root: Path
    samples: list[Sample] = field(default_factory=list)
    name: str = ""

    @classmethod
    def load(cls, root: str | Path) -> DatasetFolder:
        root = Path(root)
        jsonl = root / JSONL_NAME
        if not jsonl.is_file():
            raise DatasetError(
                f"{root} is not a dataset folder (no {JSONL_NAME}); create one with "
                f"'python pipeline.py data import SRC --out {root}' or 'data synth'"
            )
        samples = []
        with open(jsonl, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    samples.append(Sample.from_dict(json.loads(line)))
                except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
                    raise DatasetError(f"{jsonl}:{number}: invalid sample record ({err})") from err
        return cls(root=root, samples=samples, name=cls._read_name(root))

    @staticmethod
    def _read_name(root: Path) -> str:
        info = root / "dataset.json"
        if info.is_file():
            return json.loads(info.read_text(encoding="utf-8")).get("name", root.name)
        return root.name

    def save(self) -> None:
        """Write ``dataset.jsonl`` atomically (a crash leaves the previous file intact)."""
        lines = (json.dumps(s.to_dict(), ensure_ascii=False) for s in self.samples)
        atomic_write_text(self.root / JSONL_NAME, "\n".join(lines) + "\n")

    def split(self, name: str | None) -> list[Sample]:
        """Samples of one split (``"valid"`` and ``"val"`` are the same); None gives all."""
        if name is None:
            return list(self.samples)
        wanted = canonical_split(name)
        return [s for s in self.samples if s.split == wanted]

    def image_path(self, sample: Sample) -> Path:
        return self.root / sample.image

    def region_mask(self, sample: Sample, region: Region, shape: tuple[int, int] | None = None) -> np.ndarray:
        """Binary mask (H x W, bool) of a region: its mask PNG, else its polygon, else its box."""
        import cv2

        height, width = shape or (sample.height, sample.width)
        if region.mask is not None:
            mask = cv2.imread(str(self.root / region.mask), cv2.IMREAD_GRAYSCALE)
            if mask is None:
                raise DatasetError(f"{self.root / region.mask}: mask PNG missing or unreadable")
            if mask.shape != (height, width):
                mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
            return mask > 0
        return rasterize_region(region, (height, width))

    def class_histogram(self, samples: Iterable[Sample] | None = None) -> Counter:
        counts: Counter = Counter()
        for sample in self.samples if samples is None else samples:
            counts.update(sample.label_keys())
        return counts

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __len__(self) -> int:
        return len(self.samples)


def rasterize_region(region: Region, shape: tuple[int, int]) -> np.ndarray:
    """Polygon (or box when there is none) filled into a bool mask of ``shape`` (H, W)."""
    import cv2

    mask = np.zeros(shape, dtype=np.uint8)
    if region.polygon and len(region.polygon) >= 3:
        points = np.round(np.asarray(region.polygon, dtype=np.float64)).astype(np.int32)
        cv2.fillPoly(mask, [points], 1)
    else:
        x1, y1, x2, y2 = (round(v) for v in region.box)
        mask[max(0, y1) : max(0, y2), max(0, x1) : max(0, x2)] = 1
    return mask.astype(bool)
