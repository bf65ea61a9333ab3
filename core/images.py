"""Reading pictures people actually have: phone JPEGs with EXIF rotation, 16-bit PNGs,
grayscale, RGBA, huge scans, and files that only pretend to be images.

Every failure becomes an :class:`ImageError` whose message is one sentence a person can act on.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: Longest side kept after decoding; bigger pictures are downscaled (a trichoscope frame is 640 px).
MAX_SIDE = 4096
#: Smallest side we can grade: below this there is nothing to see.
MIN_SIDE = 32
# Refuse decompression bombs well above any camera (12000x9000 = 108 MP is fine).
Image.MAX_IMAGE_PIXELS = 400_000_000


class ImageError(ValueError):
    """An input that cannot be analysed; ``str(err)`` is the reason for people."""


@dataclass(frozen=True)
class LoadedImage:
    """An RGB uint8 array plus how it relates to the file it came from."""

    rgb: np.ndarray  # H x W x 3, uint8
    original_size: tuple[int, int]  # (width, height) after EXIF rotation, before any downscale

    @property
    def scale(self) -> float:
        """Factor from working pixels back to original pixels (1.0 when not downscaled)."""
        return self.original_size[0] / self.rgb.shape[1]


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit or float single channel: stretch the used range into 8 bits.
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = np.zeros_like(arr) if hi <= lo else (arr - lo) * (255.0 / (hi - lo))
        gray = arr.clip(0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent pixels carry no scalp; put them on black rather than undefined colour.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(background, rgba)
    arr = np.asarray(img.convert("RGB"))
    if arr.dtype != np.uint8:
        arr = arr.astype(np.uint8)
    return np.ascontiguousarray(arr)


def _identify(handle, name: str) -> Image.Image:
    try:
        return Image.open(handle)
    except UnidentifiedImageError as err:
        raise ImageError(f"{name}: not an image (format not recognised)") from err
    except (OSError, ValueError, ImportError) as err:
        # ultralytics patches Image.open to retry unknown files as HEIF; its failures land here.
        raise ImageError(f"{name}: not an image ({type(err).__name__}: {err})") from err


def _open(source: Image.Image, name: str, max_side: int) -> LoadedImage:
    full_width = source.size[0]
    try:
        if source.format == "JPEG" and max(source.size) > 2 * max_side:
            # Let libjpeg decode at a reduced scale: a 108 MP photo decodes in a fraction of the time.
            source.draft("RGB", (max_side, max_side))
        draft_factor = full_width / source.size[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            source.load()
            img = ImageOps.exif_transpose(source)
    except Image.DecompressionBombError as err:
        raise ImageError(f"{name}: image too large to decode safely ({err})") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{name}: truncated or corrupt image data ({err})") from err
    width, height = round(img.size[0] * draft_factor), round(img.size[1] * draft_factor)
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"{name}: image too small ({width}x{height} px); at least {MIN_SIDE} px per side is needed")
    if max(img.size) > max_side:
        img = img.copy()
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return LoadedImage(_to_rgb_array(img), (width, height))


def load_image(path: str | Path, max_side: int = MAX_SIDE) -> LoadedImage:
    """Read an image file as RGB uint8, EXIF orientation applied.

    >>> load_image("samples/closeup_01.jpg").rgb.shape  # doctest: +SKIP
    (640, 640, 3)
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError as err:
        raise ImageError(f"{path}: file not found") from err
    except PermissionError as err:
        raise ImageError(f"{path}: permission denied") from err
    if size == 0:
        raise ImageError(f"{path}: empty file (0 bytes)")
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the `with` below; opened here to name a PermissionError
    except PermissionError as err:
        raise ImageError(f"{path}: permission denied, cannot read the file") from err
    with handle:
        return _open(_identify(handle, str(path)), str(path), max_side)


def decode_image(data: bytes, name: str = "upload", max_side: int = MAX_SIDE) -> LoadedImage:
    """Decode image bytes (an HTTP upload, a webcam frame) like :func:`load_image`."""
    if not data:
        raise ImageError(f"{name}: empty file (0 bytes)")
    return _open(_identify(io.BytesIO(data), name), name, max_side)


def keep_channels(result: np.ndarray, like: np.ndarray) -> np.ndarray:
    """OpenCV returns H x W for an H x W x 1 input; give ``result`` ``like``'s channel axis back."""
    return result.reshape(result.shape[:2] + like.shape[2:])


def letterbox(rgb: np.ndarray, size: int, fill: int = 0) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Resize keeping aspect ratio and pad to ``size`` x ``size``.

    Any number of channels (an image, a mask, one mask layer per lesion kind). Returns the
    padded image, the scale applied and the (left, top) padding, so that
    ``original = (letterboxed - pad) / scale``.
    """
    import cv2

    height, width = rgb.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    if rgb.ndim == 3 and rgb.shape[2] > 4:  # OpenCV's area resize takes at most 4 channels
        resized = np.stack([cv2.resize(rgb[:, :, k], (new_w, new_h), interpolation=interpolation)
                            for k in range(rgb.shape[2])], axis=2)
    else:
        resized = keep_channels(cv2.resize(rgb, (new_w, new_h), interpolation=interpolation), rgb)
    out = np.full((size, size) + rgb.shape[2:], fill, dtype=rgb.dtype)
    left, top = (size - new_w) // 2, (size - new_h) // 2
    out[top : top + new_h, left : left + new_w] = resized
    return out, scale, (left, top)
