"""The segmenter's defaults, in one place and light to import (no torch), so the CLI's
``--help`` stays fast and the model, the trainer and the command line agree.
"""
from __future__ import annotations

from dataclasses import dataclass

#: Crop side by default. Lesion boxes in 640 px close-ups are mostly 15-180 px, so 128 px loses
#: nothing: ground-truth masks cropped to 128 and pasted back score Dice 0.998 (synthetic) and
#: 0.9998 (scalp-data) against themselves, and a 128 px crop costs a quarter of a 256 px one.
DEFAULT_CROP_SIZE = 128

#: Where training masks come from: ``auto`` outlines where drawn and weak masks from boxes
#: elsewhere; ``exact`` outlined regions only; ``weak`` ignores outlines (to measure weak labels).
SUPERVISION = ("auto", "exact", "weak")


@dataclass
class TrainOptions:
    """Everything a training run depends on; stored in the weights' config."""

    epochs: int = 30
    batch_size: int = 16
    lr: float = 5e-4
    weight_decay: float = 1e-4
    patience: int = 5  # epochs without a better validation Dice before stopping
    crop_size: int = DEFAULT_CROP_SIZE
    margin: float = 0.25
    supervision: str = "auto"  # one of SUPERVISION
    regions_per_epoch: int | None = None  # random subset per epoch (CPU budget); None = all
    box_jitter: float = 0.1
    kinds: list[str] | None = None
    workers: int = 0
    device: str = "cpu"
    seed: int = 0
    init: str | None = None  # start from these segmenter weights (fine-tuning)
