"""The severity classifier: a shared backbone, mask-guided pooling and one head per grade.

Composed like segmentation-models-pytorch's models, three named parts built in ``__init__``:
``self.backbone`` (from the :mod:`core.backbones` registry, so a bigger net is one argument),
``self.pooling`` (:class:`MaskGuidedPooling`) and ``self.heads`` (one :class:`~fusion.heads.GradeHead`
per :class:`~fusion.heads.HeadSpec`); optionally ``self.contrast`` (:class:`MaskContrast`, a
mid-level feature map's inside-minus-outside average per mask channel).

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

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.backbones import create_backbone, get_spec
from fusion.heads import GradeHead, HeadSpec

#: How a kind's coverage (its share of the frame) is fed to the heads; see :class:`MaskGuidedPooling`.
COVERAGE_ENCODINGS = ("log", "sqrt")
#: ``log`` encoding: log10(coverage + COVERAGE_FLOOR) + 4, so 0 (nothing) .. 4 (the whole frame).
COVERAGE_FLOOR = 1e-4
#: Default gain on the ``log`` coverage inputs of each head (see :class:`~fusion.heads.GradeHead`):
#: 16384 learned best with a frozen backbone but swung from epoch to epoch in full training.
COVERAGE_GAIN = 4096.0


class MaskGuidedPooling(nn.Module):
    """Concatenate the feature map's plain average, its average weighted by each mask channel and,
    with ``coverage_copies``, how much of the frame each channel covers.

    The masks (N x K x S x S, at input resolution) are averaged down to the feature grid in
    ``stride`` x ``stride`` cells (the backbone's reduction; a fixed pooling, unlike adaptive
    pooling, exports to ONNX with dynamic shapes). Each weighted average is normalized by its
    channel's mass, so it describes *what* those lesions look like; the coverage says *how much*
    there is, which is what area-defined grades depend on. An all-zero channel (nothing found)
    pools to zeros; an all-ones channel (no mask known) repeats the global average.

    Two coverage encodings, appended last (``coverage_copies`` times each):

    - ``log`` (the default for new trainings): ``log10(coverage + 1e-4) + 4`` (0 for nothing,
      4 for the whole frame) and, after all of those, a *known* flag per channel (0 for an
      all-ones channel, else 1); the log coverage is 0 where the mask is unknown. Area grades
      begin at ratios (each grade at 2-2.5x the area of the one below, whatever the kind), which
      are equal steps in log space, so one linear layer separates every kind's bands with weights
      of one size; and "mask unknown" no longer reads as the largest coverage there is.
    - ``sqrt``: ``sqrt(coverage)`` and no flag: the first per-kind design, which entered it as
      many times as the backbone has channels (copies as a crude learning-rate boost; configs
      without an encoding were trained so).
    """

    def __init__(self, stride: int = 32, eps: float = 1e-6, coverage_copies: int = 0, coverage: str = "log") -> None:
        super().__init__()
        if coverage not in COVERAGE_ENCODINGS:
            raise ValueError(f"coverage encoding {coverage!r} unknown; use one of {', '.join(COVERAGE_ENCODINGS)}")
        self.stride = stride
        self.eps = eps
        self.coverage_copies = coverage_copies
        self.coverage = coverage

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        whole = features.mean(dim=(2, 3))
        weights = F.avg_pool2d(mask, self.stride, self.stride, ceil_mode=True)[:, :, None]  # N x K x 1 x h x w
        lesion = (features[:, None] * weights).sum(dim=(3, 4)) / (weights.sum(dim=(3, 4)) + self.eps)  # N x K x C
        parts = [whole, lesion.flatten(1)]
        if self.coverage_copies:
            parts += [value.repeat_interleave(self.coverage_copies, dim=1) for value in self.coverage_features(mask)]
        return torch.cat(parts, dim=1)

    def coverage_features(self, mask: torch.Tensor) -> list[torch.Tensor]:
        """Per channel (N x K each): [sqrt coverage] or [log coverage, known flag]."""
        coverage = mask.mean(dim=(2, 3)).clamp_min(0)
        if self.coverage == "sqrt":
            return [coverage.sqrt()]
        known = (mask.amin(dim=(2, 3)) < 1.0 - 1e-3).to(mask.dtype)
        return [known * (torch.log10(coverage + COVERAGE_FLOOR) + 4.0), known]

    @staticmethod
    def n_coverage(n_masks: int, coverage_copies: int, coverage: str) -> int:
        """How many of the pooled features are coverage inputs (the last ones)."""
        return n_masks * coverage_copies * (1 if coverage == "sqrt" else 2)

    @staticmethod
    def out_features(channels: int, n_masks: int = 1, coverage_copies: int = 0, coverage: str = "log") -> int:
        return (1 + n_masks) * channels + MaskGuidedPooling.n_coverage(n_masks, coverage_copies, coverage)


class MaskContrast(nn.Module):
    """Per mask channel: a feature map's average inside the mask minus its average outside it,
    standardized (each feature to zero mean and unit variance over the training pictures).

    What it is for: a grade that compares a region with its surroundings, such as hair loss
    (the share of follicles missing inside a thinning patch, relative to the hair density
    around it). The last feature map is too coarse and too abstract for that; mid-level maps
    (strides 8 and 16) still describe texture such as how many shafts there are. With the
    backbone frozen, a linear probe on synthetic close-ups reads the hair-loss grade far better
    from these contrasts than from the last map's averages (``python -m fusion.contrast_study``).

    A channel that is all zeros (nothing found) or all ones (no mask known) has no inside or
    no outside: its contrast is zero. The standardization is a BatchNorm without scale and
    shift (running statistics at inference); a batch of one uses the running statistics.
    """

    def __init__(self, stride: int, channels: int, n_masks: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.stride, self.eps = stride, eps
        self.norm = nn.BatchNorm1d(n_masks * channels, affine=False)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        weights = F.avg_pool2d(mask, self.stride, self.stride, ceil_mode=True)[:, :, None]  # N x K x 1 x h x w
        mass, rest = weights.sum(dim=(3, 4)), (1.0 - weights).sum(dim=(3, 4))  # N x K x 1 each
        inside_sum = (features[:, None] * weights).sum(dim=(3, 4))  # N x K x C
        outside_sum = features.sum(dim=(2, 3))[:, None] - inside_sum
        inside = inside_sum / (mass + self.eps)
        outside = outside_sum / (rest + self.eps)
        both = ((mass > 1e-3) & (rest > 1e-3)).to(features.dtype)
        contrast = (both * (inside - outside)).flatten(1)
        norm = self.norm
        use_batch = self.training and contrast.shape[0] > 1
        return F.batch_norm(contrast, norm.running_mean, norm.running_var, training=use_batch,
                            momentum=norm.momentum, eps=norm.eps)


def staged_features(backbone: nn.Module, image: torch.Tensor,
                    taps: Sequence[int]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The last feature map and the outputs of blocks ``taps``, in one pass (timm EfficientNet family)."""
    x = backbone.bn1(backbone.conv_stem(image))
    tapped = {}
    for index, block in enumerate(backbone.blocks):
        x = block(x)
        if index in taps:
            tapped[index] = x
    return backbone.bn2(backbone.conv_head(x)), [tapped[index] for index in taps]


def feature_geometry(backbone: nn.Module, probe: int = 128) -> tuple[int, int]:
    """Channels and stride (input side / feature side) of the backbone's last feature map."""
    return _channels_and_stride(_probe(backbone, backbone, probe), probe)


def tapped_geometry(backbone: nn.Module, blocks: Sequence[int], probe: int = 128) -> list[tuple[int, int]]:
    """Channels and stride of each of backbone blocks ``blocks``' outputs (timm EfficientNet family only)."""
    if not (hasattr(backbone, "blocks") and hasattr(backbone, "conv_stem")):
        raise ValueError("contrast features need a timm EfficientNet-family backbone (blocks to tap)")
    for block in blocks:
        if not 0 <= block < len(backbone.blocks):
            raise ValueError(f"contrast block {block} out of range: the backbone has blocks 0-{len(backbone.blocks) - 1}")
    _, tapped = _probe(backbone, lambda image: staged_features(backbone, image, blocks), probe)
    return [_channels_and_stride(features, probe) for features in tapped]


def _probe(backbone: nn.Module, forward: Callable[[torch.Tensor], Any], probe: int) -> Any:
    """``forward`` of a zero ``probe`` x ``probe`` image, in eval mode without gradients; the
    backbone's training mode is restored after."""
    was_training = backbone.training
    backbone.eval()
    with torch.no_grad():
        out = forward(torch.zeros(1, 3, probe, probe))
    backbone.train(was_training)
    return out


def _channels_and_stride(features: torch.Tensor, probe: int) -> tuple[int, int]:
    return int(features.shape[1]), probe // int(features.shape[-1])


def contrast_inputs(heads: Sequence[str], kinds: Sequence[str] | None, channels: int,
                    geometry: Sequence[tuple[int, int]], pooled: int, n_coverage: int) -> dict[str, torch.Tensor]:
    """For each of ``heads``, the indices of its own kind's contrasts and of the coverage inputs in
    the pooled features ([global, per-kind averages, contrasts tap by tap (kind-major), coverage])."""
    if heads and not geometry:
        raise ValueError("contrast heads need contrast blocks to read")
    picks = {}
    for name in heads:
        if not kinds or name not in kinds:
            raise ValueError(f"contrast head {name!r} has no mask channel of its own; channels: {', '.join(kinds or ['union'])}")
        kind, offset, parts = list(kinds).index(name), (1 + len(kinds)) * channels, []
        for width, _ in geometry:
            parts.append(torch.arange(offset + kind * width, offset + (kind + 1) * width))
            offset += len(kinds) * width
        parts.append(torch.arange(pooled - n_coverage, pooled))
        picks[name] = torch.cat(parts)
    return picks


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
        coverage: how each kind's coverage is encoded, ``log`` or ``sqrt`` (see
            :class:`MaskGuidedPooling`); only with ``mask_channels``.
        coverage_gain: with ``log``, the gain on the heads' coverage inputs (see
            :class:`~fusion.heads.GradeHead`).
        coverage_copies: with ``sqrt``, how many times each coverage enters the heads (None:
            the backbone's channel count).
        contrast_blocks: also feed the heads :class:`MaskContrast` features of these backbone
            blocks' outputs (Lite0: 2 is the stride-8 stage, 4 the last stride-16 one); empty:
            off (every earlier config).
        contrast_heads: heads, each named like one of ``mask_channels``, that read only their own
            kind's contrasts and the coverage inputs, not the pooled image features (thousands
            of them, which a head fits to the training pictures before the few contrasts; with
            the backbone frozen, a linear probe grades synthetic hair loss at 0.77 macro-F1 from
            the patch's contrasts alone and 0.70 with the global average beside them:
            ``python -m fusion.contrast_study``). Needs ``contrast_blocks``.
    """

    def __init__(
        self,
        heads: Sequence[HeadSpec],
        backbone: str = "efficientnet_lite0",
        pretrained: bool = True,
        dropout: float = 0.2,
        freeze_blocks: int = 0,
        mask_channels: Sequence[str] | None = None,
        coverage: str = "log",
        coverage_gain: float = COVERAGE_GAIN,
        coverage_copies: int | None = None,
        contrast_blocks: Sequence[int] = (),
        contrast_heads: Sequence[str] = (),
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
        if not self.mask_channels:
            copies, gain = 0, 1.0  # one union channel: no coverage
        elif coverage == "log":
            copies, gain = 1, float(coverage_gain)
        else:
            copies, gain = channels if coverage_copies is None else coverage_copies, 1.0
        n_masks = len(self.mask_channels) if self.mask_channels else 1
        self.coverage, self.coverage_copies, self.coverage_gain = coverage, copies, gain
        self.pooling = MaskGuidedPooling(stride, coverage_copies=copies, coverage=coverage)
        pooled = MaskGuidedPooling.out_features(channels, n_masks, copies, coverage)
        self.contrast_blocks = tuple(int(b) for b in contrast_blocks)
        geometry = tapped_geometry(self.backbone, self.contrast_blocks) if self.contrast_blocks else []
        self.contrast = nn.ModuleList(MaskContrast(mid_stride, mid_channels, n_masks) for mid_channels, mid_stride in geometry)
        pooled += sum(n_masks * mid_channels for mid_channels, _ in geometry)
        # The log coverage goes to each head's own gained layer; sqrt copies stay plain inputs.
        n_coverage = MaskGuidedPooling.n_coverage(n_masks, copies, coverage) if coverage == "log" else 0
        self._n_pooled_coverage = MaskGuidedPooling.n_coverage(n_masks, copies, coverage)
        self.contrast_heads = tuple(contrast_heads)
        picks = contrast_inputs(self.contrast_heads, self.mask_channels, channels, geometry, pooled,
                                self._n_pooled_coverage)
        self.heads = nn.ModuleDict({
            h.name: GradeHead(pooled if h.name not in picks else len(picks[h.name]), h.n_outputs, dropout, n_coverage,
                              gain, picks.get(h.name))
            for h in self.head_specs})
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
        if not self.contrast_blocks:
            pooled = self.pooling(self.backbone(image), mask)
        else:
            last, tapped = staged_features(self.backbone, image, self.contrast_blocks)
            pooled = self.pooling(last, mask)
            # Contrasts join the image features, before the coverage inputs the heads split off last.
            cut = pooled.shape[1] - self._n_pooled_coverage
            contrasts = [module(features, mask) for module, features in zip(self.contrast, tapped)]
            pooled = torch.cat([pooled[:, :cut], *contrasts, pooled[:, cut:]], dim=1)
        return {name: head(pooled) for name, head in self.heads.items()}
