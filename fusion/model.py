"""The severity classifier: a shared backbone, mask-guided pooling and one head per grade.

Composed like segmentation-models-pytorch's models, three named parts built in ``__init__``:
``self.backbone`` (from the :mod:`core.backbones` registry, so a bigger net is one argument),
``self.pooling`` (:class:`MaskGuidedPooling`) and ``self.heads`` (one :class:`~fusion.heads.GradeHead`
per :class:`~fusion.heads.HeadSpec`).

The forward takes and returns plain tensors (ONNX-exportable with a dynamic batch):
``image`` N x 3 x S x S (letterboxed, normalized) and ``mask`` N x 1 x S x S (soft lesion mask
in 0-1; all ones when no mask is known), and returns ``{head name: logits}``.

>>> from fusion.heads import default_heads
>>> model = SeverityClassifier(default_heads(), backbone="efficientnet_lite0")        # doctest: +SKIP
>>> logits = model(torch.zeros(2, 3, 448, 448), torch.ones(2, 1, 448, 448))           # doctest: +SKIP
>>> logits["dandruff"].shape                                                          # doctest: +SKIP
torch.Size([2, 4])
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from core.backbones import create_backbone, get_spec
from fusion.heads import GradeHead, HeadSpec


class MaskGuidedPooling(nn.Module):
    """Concatenate the feature map's plain average and its average weighted by the lesion mask.

    The mask (at input resolution) is averaged down to the feature grid in ``stride`` x ``stride``
    cells (the backbone's reduction; a fixed pooling, unlike adaptive pooling, exports to ONNX
    with dynamic shapes); the weighted average is normalized by the mask's mass, so it describes *what* the lesions look like, not how much of the frame they
    cover. An all-zero mask (nothing found) pools to zeros; an all-ones mask (no mask known)
    repeats the global average.
    """

    def __init__(self, stride: int = 32, eps: float = 1e-6) -> None:
        super().__init__()
        self.stride = stride
        self.eps = eps

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        whole = features.mean(dim=(2, 3))
        weights = F.avg_pool2d(mask, self.stride, self.stride, ceil_mode=True)
        lesion = (features * weights).sum(dim=(2, 3)) / (weights.sum(dim=(2, 3)) + self.eps)
        return torch.cat([whole, lesion], dim=1)

    @staticmethod
    def out_features(channels: int) -> int:
        return 2 * channels


def feature_geometry(backbone: nn.Module, probe: int = 128) -> tuple[int, int]:
    """Channels and stride (input side / feature side) of the backbone's last feature map."""
    was_training = backbone.training
    backbone.eval()
    with torch.no_grad():
        features = backbone(torch.zeros(1, 3, probe, probe))
    backbone.train(was_training)
    return int(features.shape[1]), probe // int(features.shape[-1])


def early_modules(backbone: nn.Module, n_blocks: int) -> list[nn.Module]:
    """The stem and the first ``n_blocks`` stages: the high-resolution layers worth freezing on a CPU."""
    if n_blocks <= 0:
        return []
    if hasattr(backbone, "blocks") and hasattr(backbone, "conv_stem"):  # timm EfficientNet family
        return [backbone.conv_stem, backbone.bn1, *list(backbone.blocks)[:n_blocks]]
    return list(backbone.children())[: n_blocks + 1]  # a plain Sequential (torchvision features)


class SeverityClassifier(nn.Module):
    """Backbone → mask-guided pooling → one linear head per graded output.

    Args:
        heads: what to grade (see :func:`fusion.heads.default_heads`).
        backbone: a :mod:`core.backbones` registry name.
        pretrained: load the backbone's ImageNet weights (strictly).
        dropout: before each head's linear layer.
        freeze_blocks: keep the stem and this many early stages fixed (weights and BatchNorm
            statistics): less backward work on a CPU, less overfitting on small sets.
    """

    def __init__(
        self,
        heads: Sequence[HeadSpec],
        backbone: str = "efficientnet_lite0",
        pretrained: bool = True,
        dropout: float = 0.2,
        freeze_blocks: int = 0,
    ) -> None:
        super().__init__()
        self.head_specs = tuple(heads)
        self.backbone_name = backbone
        spec = get_spec(backbone)
        self.mean, self.std = spec.mean, spec.std
        # Unpooled last feature map: timm nets take num_classes=0, global_pool=""; others already are.
        kwargs = {"num_classes": 0, "global_pool": ""} if spec.timm_name else {}
        self.backbone = create_backbone(backbone, pretrained=pretrained, **kwargs)
        channels, stride = feature_geometry(self.backbone)
        self.pooling = MaskGuidedPooling(stride)
        pooled = MaskGuidedPooling.out_features(channels)
        self.heads = nn.ModuleDict({h.name: GradeHead(pooled, h.n_outputs, dropout) for h in self.head_specs})
        self.freeze_blocks = freeze_blocks
        self._frozen = early_modules(self.backbone, freeze_blocks)
        for module in self._frozen:
            for parameter in module.parameters():
                parameter.requires_grad_(False)
        self.train()

    def train(self, mode: bool = True) -> SeverityClassifier:
        super().train(mode)
        for module in self._frozen:
            module.eval()  # frozen stages keep their ImageNet BatchNorm statistics
        return self

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = self.pooling(self.backbone(image), mask)
        return {name: head(pooled) for name, head in self.heads.items()}
