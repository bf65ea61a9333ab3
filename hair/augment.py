"""Photometric augmentation that moves clean synthetic close-ups towards real scope pictures.

Real trichoscope frames differ from the generator's in colour cast (grey-blue to warm
beige), contrast, defocus (parts of a frame out of focus, hairs lifted towards the lens),
sensor noise and JPEG blocking. Each effect is drawn independently; geometry is never
changed here, so the targets stay valid.

>>> rgb = np.full((64, 64, 3), 128, np.uint8)
>>> photometric(rgb, np.random.default_rng(0)).shape
(64, 64, 3)
"""
from __future__ import annotations

import cv2
import numpy as np


def photometric(rgb: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """A randomly recoloured, blurred, noised and JPEG-compressed copy of ``rgb`` (uint8)."""
    image = rgb.astype(np.float32) / 255.0
    if rng.uniform() < 0.8 * strength:
        image = _colour(image, rng)
    if rng.uniform() < 0.35 * strength:
        image = _uneven_light(image, rng)
    if rng.uniform() < 0.5 * strength:
        image = _defocus(image, rng)
    if rng.uniform() < 0.5 * strength:
        image = image + rng.normal(0.0, rng.uniform(0.005, 0.04), image.shape[:2])[:, :, None].astype(np.float32)
    out = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if rng.uniform() < 0.6 * strength:
        quality = int(rng.integers(30, 96))
        ok, data = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            out = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    return out


def _colour(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Contrast, gamma, white balance, saturation and hue: the scope's and the skin's colour."""
    mean = image.mean(axis=(0, 1), keepdims=True)
    image = (image - mean) * np.float32(rng.uniform(0.55, 1.4)) + mean + np.float32(rng.uniform(-0.12, 0.12))
    image = np.clip(image, 0.0, 1.0) ** np.float32(rng.uniform(0.65, 1.5))
    image = image * rng.uniform(0.8, 1.2, 3).astype(np.float32)
    grey = image.mean(axis=2, keepdims=True)
    image = grey + (image - grey) * np.float32(rng.uniform(0.0, 1.6))
    if rng.uniform() < 0.5:
        hsv = cv2.cvtColor(np.clip(image, 0.0, 1.0), cv2.COLOR_RGB2HSV)
        hsv[:, :, 0] = (hsv[:, :, 0] + rng.uniform(-60, 60)) % 360.0
        image = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return image


def _uneven_light(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A smooth brightness ramp or hot spot, as from a ring light held at an angle."""
    height, width = image.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = rng.uniform(-0.3, 1.3) * width, rng.uniform(-0.3, 1.3) * height
    radius = rng.uniform(0.5, 1.5) * max(height, width)
    light = 1.0 + np.float32(rng.uniform(-0.35, 0.35)) * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (radius * radius))
    return image * light[:, :, None]


def _defocus(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blur all of the picture, or a smooth part of it (depth of field)."""
    sigma = float(rng.uniform(0.6, 3.5))
    blurred = cv2.GaussianBlur(image, (0, 0), sigma)
    if rng.uniform() < 0.5:
        return blurred
    height, width = image.shape[:2]
    coarse = rng.uniform(0.0, 1.0, (3, 3)).astype(np.float32)
    weight = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).clip(0.0, 1.0)
    return image * (1.0 - weight[:, :, None]) + blurred * weight[:, :, None]
