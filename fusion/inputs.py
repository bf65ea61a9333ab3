"""What the classifier sees: a letterboxed, normalized image and a soft lesion mask.

One place for the preprocessing, used by training and by :class:`fusion.predict.SeverityGrader`,
so a checkpoint never depends on a caller remembering it. The mask treatment is the same for
ground-truth polygons (training) and the segmenter's refined masks (inference): put into the
letterbox geometry, then blurred (sigma = ``MASK_SIGMA_FRACTION`` of the input side) so a thin
outline and a soft probability map look alike and lesion borders carry some context.
A missing mask (None) becomes all ones, which makes the mask-weighted pooling a second global
average: "no mask information", as opposed to an all-zero mask, "no lesion found".

A mask is H x W (one channel: the union of all lesions) or H x W x K (one channel per lesion
kind, in the order of the classifier's ``mask_channels``); tensors are K x S x S.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from core.images import keep_channels, letterbox

#: Gaussian sigma of the soft-mask treatment, as a fraction of the input side.
MASK_SIGMA_FRACTION = 0.01


def letterbox_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A mask (H x W or H x W x K, bool or 0-1 float) in the letterbox geometry of its image, float32 0-1."""
    boxed, _, _ = letterbox(np.asarray(mask, dtype=np.float32), size, fill=0)
    return boxed


def soften_mask(mask: np.ndarray, size: int | None = None) -> np.ndarray:
    """The soft-mask treatment: Gaussian blur (sigma = MASK_SIGMA_FRACTION x side), clipped to 0-1."""
    mask = np.asarray(mask, dtype=np.float32)
    sigma = MASK_SIGMA_FRACTION * (size or max(mask.shape[:2]))
    if sigma >= 0.3:
        blurred = cv2.GaussianBlur(mask, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_CONSTANT)
        mask = keep_channels(blurred, mask)
    return np.clip(mask, 0.0, 1.0)


def image_tensor(rgb_boxed: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """Letterboxed RGB uint8 (S x S x 3) → normalized float tensor 3 x S x S."""
    x = torch.from_numpy(np.ascontiguousarray(rgb_boxed)).permute(2, 0, 1).float().div_(255.0)
    return (x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)


def mask_tensor(mask_boxed: np.ndarray | None, size: int, channels: int = 1) -> torch.Tensor:
    """Letterboxed mask (S x S or S x S x K, 0-1) → softened tensor K x S x S; None → all ones (mask unknown)."""
    if mask_boxed is None:
        return torch.ones(channels, size, size)
    soft = soften_mask(mask_boxed, size)
    soft = soft[:, :, None] if soft.ndim == 2 else soft
    if soft.shape[2] != channels:
        raise ValueError(f"mask has {soft.shape[2]} channel(s), the classifier takes {channels}")
    return torch.from_numpy(np.ascontiguousarray(soft.transpose(2, 0, 1)))


def prepare(rgb: np.ndarray, mask: np.ndarray | None, size: int, mean: tuple[float, ...],
            std: tuple[float, ...], channels: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """An original image (H x W x 3 uint8) and its mask (H x W, H x W x K or None) → model inputs."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB image H x W x 3, got shape {rgb.shape}")
    boxed, _, _ = letterbox(rgb, size, fill=0)
    mask_boxed = None
    if mask is not None:
        if mask.shape[:2] != rgb.shape[:2]:
            raise ValueError(f"mask shape {mask.shape[:2]} differs from the image's {rgb.shape[:2]}; pass a mask per image pixel")
        mask_boxed = letterbox_mask(mask, size)
    return image_tensor(boxed, mean, std), mask_tensor(mask_boxed, size, channels)
