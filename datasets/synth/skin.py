"""Bare scalp skin as a trichoscope sees it, and the scope's own optics.

Skin is a flat tone with slow shading, a faint network of skin creases and fine grain; the
scope adds a colour cast, vignetting, a little defocus and sensor noise.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from datasets.synth.fields import Shape, grain_noise, smooth_noise

#: Scalp skin under a scope's white LEDs, light to dark (RGB in 0-1). Trichoscope lighting
#: washes skin towards grey-pink, so even dark tones read lighter than in daylight photos.
SKIN_TONES: tuple[tuple[float, float, float], ...] = (
    (0.87, 0.83, 0.81),
    (0.85, 0.78, 0.74),
    (0.81, 0.72, 0.67),
    (0.74, 0.63, 0.56),
    (0.61, 0.50, 0.43),
    (0.47, 0.38, 0.32),
)


def sample_skin_tone(rng: np.random.Generator) -> tuple[float, float, float]:
    """A tone between two neighbouring palette entries (light and medium tones more often)."""
    weights = np.array([3, 3, 3, 2, 1.5, 1.0])
    index = int(rng.choice(len(SKIN_TONES) - 1, p=weights[:-1] / weights[:-1].sum()))
    mix = float(rng.uniform())
    low, high = np.array(SKIN_TONES[index]), np.array(SKIN_TONES[index + 1])
    return tuple(float(v) for v in low * (1 - mix) + high * mix)  # type: ignore[return-value]


def render_skin(rng: np.random.Generator, shape: Shape, tone: tuple[float, float, float], scale: float) -> np.ndarray:
    """Skin canvas, H x W x 3 float32 in 0-1.

    >>> render_skin(np.random.default_rng(0), (48, 64), SKIN_TONES[1], 0.1).shape
    (48, 64, 3)
    """
    height, width = shape
    # Slow fields are made at 1/8 size and upsampled once: same look, a fraction of the cost.
    small = (max(2, height // 8), max(2, width // 8))
    # Slow shading: the scalp is curved and pressed unevenly against the scope window.
    shading = 1.0 + 0.06 * smooth_noise(rng, small, (3, 4)) + 0.03 * smooth_noise(rng, small, (7, 9))
    # Blotchy redness (never greener than the base tone), independent of brightness.
    mottle = 0.02 * np.maximum(smooth_noise(rng, small, (10, 13)), 0.0)
    shading, mottle = (cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR) for f in (shading, mottle))
    # Skin creases: the zero crossings of smooth noise form a net of thin curved lines.
    crease_px = 14.0 * scale + 2.0
    relief = smooth_noise(rng, shape, (int(height / crease_px), int(width / crease_px)))
    creases = np.clip(1.0 - (relief / 0.3) ** 2, 0.0, 1.0) ** 2
    lum = shading * (1.0 - 0.035 * creases) + 0.015 * grain_noise(rng, shape)
    canvas = np.empty((height, width, 3), np.float32)
    for channel, (base, redness) in enumerate(zip(tone, (0.3, -1.0, -0.6))):
        canvas[:, :, channel] = lum * np.float32(base) + np.float32(redness) * mottle
    # Moist skin under the scope window glitters with tiny specular points.
    glitter = np.zeros(shape, np.float32)
    count = int(height * width * 0.002)
    glitter[rng.integers(0, height, count), rng.integers(0, width, count)] = rng.uniform(0.5, 3.0, count)
    glitter = cv2.GaussianBlur(glitter, (0, 0), 0.6 + 0.4 * scale)
    canvas += (0.08 * glitter)[:, :, None]
    return np.clip(canvas, 0.0, 1.0, out=canvas)


@dataclass(frozen=True)
class Optics:
    """What the scope does to every picture it takes."""

    vignette: float  # darkening at the corners, 0-1
    cast: tuple[float, float, float]  # white-balance gains per RGB channel
    blur_sigma: float  # defocus in pixels
    noise: float  # sensor noise spread, 0-1 units

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Optics:
        cast = tuple(float(g) for g in 1.0 + rng.normal(0.0, 0.025, 3))
        return cls(
            vignette=float(rng.uniform(0.12, 0.45)),
            cast=cast,  # type: ignore[arg-type]
            blur_sigma=float(rng.uniform(0.35, 0.9)),
            noise=float(rng.uniform(0.006, 0.018)),
        )

    def apply(self, rng: np.random.Generator, canvas: np.ndarray) -> np.ndarray:
        """Finish a float canvas (used up: changed in place) into the uint8 RGB picture the scope saves."""
        height, width = canvas.shape[:2]
        xs = np.linspace(-1.0, 1.0, width, dtype=np.float32) ** 2
        ys = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None] ** 2
        corner = (xs + ys) / 2.0  # 0 at the centre, 1 in the corners
        # Scope optics fall off faster than cos^4 towards the rim: mostly quartic.
        falloff = 1.0 - self.vignette * (0.4 * corner + 0.6 * corner * corner)
        canvas *= falloff[:, :, None]
        canvas *= np.asarray(self.cast, np.float32)
        # Luminance noise only: chroma noise is faint on these sensors and costs 3x the draws.
        canvas += (self.noise * grain_noise(rng, (height, width)))[:, :, None]
        np.clip(canvas, 0.0, 1.0, out=canvas)
        picture = cv2.convertScaleAbs(canvas, alpha=255.0)  # rounds and saturates to uint8
        # Defocus last, on 8-bit data (faster); it softens the grain a little, as a lens would.
        return cv2.GaussianBlur(picture, (0, 0), self.blur_sigma)
