"""The severity classifier: a shared backbone, mask-guided pooling and one head per grade.

Composed like segmentation-models-pytorch's models, three named parts built in ``__init__``:
``self.backbone`` (from the :mod:`core.backbones` registry, so a bigger net is one argument),
``self.pooling`` (:class:`MaskGuidedPooling`) and ``self.heads`` (one :class:`~fusion.heads.GradeHead`
per :class:`~fusion.heads.HeadSpec`).

The forward takes and returns plain tensors (ONNX-exportable with a dynamic batch):
``image`` N x 3 x S x S (letterboxed, normalized) and ``mask`` N x K x S x S (soft lesion masks
in 0-1, one channel per entry of ``mask_channels`` or one union channel; all ones when no mask
is known), and returns ``{head name: logits}``.

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
    """Concatenate the feature map's plain average, its average weighted by each mask channel and,
    with ``coverage_copies``, how much of the frame each channel covers.

    The masks (N x K x S x S, at input resolution) are averaged down to the feature grid in
    ``stride`` x ``stride`` cells (the backbone's reduction; a fixed pooling, unlike adaptive
    pooling, exports to ONNX with dynamic shapes). Each weighted average is normalized by its
    channel's mass, so it describes *what* those lesions look like; the coverage (square root
    of the channel's mean, so small areas are not squeezed near zero) says *how much* there is,
    which is what area-defined grades depend on. An all-zero channel (nothing found) pools to
    zeros; an all-ones channel (no mask known) repeats the global average, coverage 1.

    Each coverage enters ``coverage_copies`` times (by default as many times as the backbone
    has channels). A linear head at AdamW's small learning rates moves each weight by about the
    learning rate per step, so a single 0-1 input cannot grow the weight a sharp grade boundary
    needs (measured: after 22 epochs on synthetic close-ups its weights stayed under 0.04, and
    the coverage changed the logits by hundredths), and dropout would hide it whole a fifth of
    the time; the image features get there because they are many. Copies give the coverage the
    same footing (for the optimizer, a larger gain; under dropout, steadier).
    """

    def __init__(self, stride: int = 32, eps: float = 1e-6, coverage_copies: int = 0) -> None:
        super().__init__()
        self.stride = stride
        self.eps = eps
        self.coverage_copies = coverage_copies

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        whole = features.mean(dim=(2, 3))
        weights = F.avg_pool2d(mask, self.stride, self.stride, ceil_mode=True)[:, :, None]  # N x K x 1 x h x w
        lesion = (features[:, None] * weights).sum(dim=(3, 4)) / (weights.sum(dim=(3, 4)) + self.eps)  # N x K x C
        parts = [whole, lesion.flatten(1)]
        if self.coverage_copies:
            coverage = mask.mean(dim=(2, 3)).clamp_min(0).sqrt()
            parts.append(coverage.repeat_interleave(self.coverage_copies, dim=1))
        return torch.cat(parts, dim=1)

    @staticmethod
    def out_features(channels: int, n_masks: int = 1, coverage_copies: int = 0) -> int:
        return (1 + n_masks) * channels + n_masks * coverage_copies


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
        mask_channels: lesion kinds, one mask channel each, pooled separately and with their
            coverage; None: one channel, the union of all lesions, no coverage (the first
            design, which the bundled classifier still uses).
        coverage_copies: how many times each kind's coverage enters the heads (see
            :class:`MaskGuidedPooling`; None: the backbone's channel count); only with
            ``mask_channels``.
    """

    def __init__(
        self,
        heads: Sequence[HeadSpec],
        backbone: str = "efficientnet_lite0",
        pretrained: bool = True,
        dropout: float = 0.2,
        freeze_blocks: int = 0,
        mask_channels: Sequence[str] | None = None,
        coverage_copies: int | None = None,
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
        self.mask_channels = tuple(mask_channels) if mask_channels else None
        copies = channels if coverage_copies is None else coverage_copies
        n_masks, copies = (len(self.mask_channels), copies) if self.mask_channels else (1, 0)
        self.coverage_copies = copies
        self.pooling = MaskGuidedPooling(stride, coverage_copies=copies)
        pooled = MaskGuidedPooling.out_features(channels, n_masks, copies)
        self.heads = nn.ModuleDict({h.name: GradeHead(pooled, h.n_outputs, dropout) for h in self.head_specs})
        self.freeze_blocks = freeze_blocks
        self._frozen = early_modules(self.backbone, freeze_blocks)
        for module in self._frozen:
            for parameter in module.parameters():
                parameter.requires_grad_(False)
        self.train()

    @property
    def n_mask_channels(self) -> int:
        return len(self.mask_channels) if self.mask_channels else 1

    def train(self, mode: bool = True) -> SeverityClassifier:
        super().train(mode)
        for module in self._frozen:
            module.eval()  # frozen stages keep their ImageNet BatchNorm statistics
        return self

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = self.pooling(self.backbone(image), mask)
        return {name: head(pooled) for name, head in self.heads.items()}
