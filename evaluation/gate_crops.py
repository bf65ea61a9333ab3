"""Does the scalp check still accept scalp photos that are not square?

The training pictures of both Roboflow exports are square; phone photos are 4:3. This crops
every valid picture to 4:3 (the middle three quarters of its height, no distortion) and
counts how many the gate declines when it sees them letterboxed (black bars, how the gate
first worked) and as their central square (how it works now).

    python -m evaluation.gate_crops runs/data/scalp-data runs/data/hair-loss-levels
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import fusion.gate as gate_module
from core.images import letterbox, load_image
from datasets.folder import DatasetFolder


def letterboxed_batch(rgbs: list[np.ndarray], size: int = gate_module.GATE_INPUT) -> torch.Tensor:
    return torch.from_numpy(np.stack([letterbox(rgb, size)[0] for rgb in rgbs])).permute(0, 3, 1, 2).float()


def four_by_three(rgb: np.ndarray) -> np.ndarray:
    trim = rgb.shape[0] // 8
    return rgb[trim : rgb.shape[0] - trim]


def declined_share(gate: gate_module.ScalpGate, rgbs: list[np.ndarray], batch) -> float:
    original = gate_module.to_batch
    gate_module.to_batch = batch
    try:
        return float(np.mean([not r.is_scalp for r in gate.predict(rgbs)]))
    finally:
        gate_module.to_batch = original


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("datasets", nargs="+", type=Path)
    parser.add_argument("--weights", type=Path, default=Path("weights/gate.safetensors"))
    parser.add_argument("--split", default="val")
    args = parser.parse_args(argv)
    gate = gate_module.ScalpGate.load(args.weights)
    print("| data (pictures) | declined, whole picture | 4:3 crop, letterboxed | 4:3 crop, central square |")
    print("|---|---|---|---|")
    for path in args.datasets:
        folder = DatasetFolder.load(path)
        rgbs = [load_image(folder.image_path(s)).rgb for s in folder.split(args.split)]
        crops = [four_by_three(rgb) for rgb in rgbs]
        whole = declined_share(gate, rgbs, gate_module.to_batch)
        boxed = declined_share(gate, crops, letterboxed_batch)
        square = declined_share(gate, crops, gate_module.to_batch)
        print(f"| {folder.name} `{args.split}` ({len(rgbs)}) | {whole:.3f} | {boxed:.3f} | {square:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
