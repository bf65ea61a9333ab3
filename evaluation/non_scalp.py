"""Pictures that are not scalps, for measuring how often the scalp check lets one through.

Two honest sources, neither used to fit the check:

- real photographs that ship inside installed packages (scikit-image, matplotlib,
  scikit-learn, ultralytics sample images): people, animals, objects, textures, text;
- synthetic non-scalp pictures: flat colours, noise, gradients, printed text, stripes.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.images import ImageError, load_image

# (package, folder inside it, files); missing ones are skipped so a version bump cannot break runs.
PACKAGE_IMAGES = [
    ("skimage.data", ".", ["astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "chessboard_RGB.png",
                           "clock_motion.png", "coffee.png", "coins.png", "color.png", "grass.png", "gravel.png", "horse.png",
                           "hubble_deep_field.jpg", "ihc.png", "logo.png", "microaneurysms.png", "moon.png",
                           "motorcycle_left.png", "page.png", "phantom.png", "retina.jpg", "rocket.jpg", "text.png"]),
    ("matplotlib", "mpl-data/sample_data", ["grace_hopper.jpg", "Minduka_Present_Blue_Pack.png", "logo2.png"]),
    ("sklearn.datasets", "images", ["china.jpg", "flower.jpg"]),
    ("ultralytics", "assets", ["bus.jpg", "zidane.jpg"]),
]


@dataclass(frozen=True)
class NonScalp:
    name: str
    source: str  # "package" | "synthetic"
    rgb: np.ndarray


def package_images() -> list[NonScalp]:
    out = []
    for module_name, folder, files in PACKAGE_IMAGES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        base = Path(module.__file__).parent / folder
        for name in files:
            try:
                out.append(NonScalp(f"{module_name.split('.')[0]}:{name}", "package", load_image(base / name).rgb))
            except ImageError:
                continue
    return out


def synthetic_non_scalp(n: int = 24, seed: int = 0, size: tuple[int, int] = (640, 480)) -> list[NonScalp]:
    """Flat colours, noise, gradients, text and stripes: things a camera app may send by mistake."""
    import cv2

    rng = np.random.default_rng(seed)
    width, height = size
    out = []
    for i in range(n):
        kind = ["flat", "noise", "gradient", "text", "stripes", "blocks"][i % 6]
        if kind == "flat":
            image = np.full((height, width, 3), rng.integers(0, 256, 3), dtype=np.uint8)
        elif kind == "noise":
            image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        elif kind == "gradient":
            ramp = np.linspace(0, 1, width)[None, :, None]
            a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
            image = np.broadcast_to(a + (b - a) * ramp, (height, width, 3)).astype(np.uint8)
        elif kind == "text":
            image = np.full((height, width, 3), 245, np.uint8)
            for line in range(12):
                words = " ".join("".join(chr(c) for c in rng.integers(97, 123, rng.integers(2, 9))) for _ in range(6))
                cv2.putText(image, words, (20, 40 + 36 * line), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (20, 20, 20), 2)
        elif kind == "stripes":
            period = int(rng.integers(8, 60))
            stripes = ((np.arange(width) // period) % 2).astype(np.uint8)[None, :, None]
            image = np.broadcast_to(stripes * rng.integers(0, 256, 3), (height, width, 3)).astype(np.uint8)
        else:
            cells = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
            image = cv2.resize(cells, (width, height), interpolation=cv2.INTER_NEAREST)
        out.append(NonScalp(f"synthetic:{kind}_{i}", "synthetic", np.ascontiguousarray(image)))
    return out
