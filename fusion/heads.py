"""The classifier's heads: what each one grades, where its labels come from, how it is trained.

A :class:`HeadSpec` is data (it travels in the weights' config), so the set of heads is never
hard-coded in the model: six 0-3 indicator heads, the Low/Mid/High hair-loss head and, when a
training set has one, a head for the source's own ordinal scale (the hair-loss set's
LEVEL_2..LEVEL_7 stages).

Two output parametrizations, both for ordered grades:

- ``focal``: K logits, softmax probabilities (trained with focal loss).
- ``corn``: K-1 logits of the conditional chances P(grade > k | grade > k-1) (CORN, Shi et al.
  2021); the grade probabilities are differences of their running products, so they are
  rank-consistent by construction.

>>> [h.name for h in default_heads({"hair-loss-levels": ["LEVEL_2", "LEVEL_3"]})][-2:]
['hair_loss_grade', 'stage_hair_loss_levels']
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from core.taxonomy import HAIR_LOSS_GRADES, INDICATOR_GRADES, INDICATORS

HEAD_LOSSES = ("focal", "corn")
#: Name of the Low/Mid/High head (the ``hair_loss`` block of an Analysis).
HAIR_LOSS_HEAD = "hair_loss_grade"


@dataclass(frozen=True)
class HeadSpec:
    """One graded output.

    ``target`` says where its labels come from: ``indicator:<name>`` (a Sample's 0-3 grade),
    ``hair_loss`` (the Sample's Low/Mid/High grade) or ``native:<dataset>`` (the Sample's
    ``source["class"]`` on that dataset's native scale, e.g. LEVEL_2..LEVEL_7).
    """

    name: str
    classes: tuple[str, ...]
    target: str
    loss: str = "focal"

    def __post_init__(self) -> None:
        if self.loss not in HEAD_LOSSES:
            raise ValueError(f"head {self.name}: loss {self.loss!r} unknown; use one of {', '.join(HEAD_LOSSES)}")
        if len(self.classes) < 2:
            raise ValueError(f"head {self.name}: needs at least two classes, got {list(self.classes)}")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.name):
            raise ValueError(f"head name {self.name!r} must be a Python identifier (it names tensors in the checkpoint)")
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))

    @property
    def n_outputs(self) -> int:
        return len(self.classes) - 1 if self.loss == "corn" else len(self.classes)

    @property
    def kind(self) -> str:
        """``indicator``, ``hair_loss`` or ``native``."""
        return self.target.split(":", 1)[0]

    @property
    def source(self) -> str:
        """The indicator or dataset named after the colon ('' for hair_loss)."""
        return self.target.split(":", 1)[1] if ":" in self.target else ""

    def probabilities(self, logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Grade probabilities (N x classes) from this head's logits, scaled by ``temperature``."""
        return head_probabilities(logits / temperature, self.loss)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "classes": list(self.classes)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeadSpec:
        return cls(name=data["name"], classes=tuple(data["classes"]), target=data["target"], loss=data.get("loss", "focal"))


def head_probabilities(logits: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "focal":
        return logits.softmax(-1)
    # CORN: P(y > k) = prod_{j <= k} sigmoid(l_j); P(y = k) = P(y > k-1) - P(y > k).
    above = torch.cumprod(torch.sigmoid(logits), dim=-1)
    ones = torch.ones_like(above[..., :1])
    zeros = torch.zeros_like(above[..., :1])
    return torch.cat([ones, above], -1) - torch.cat([above, zeros], -1)


def native_head_name(dataset: str) -> str:
    return "stage_" + re.sub(r"[^A-Za-z0-9]+", "_", dataset).strip("_").lower()


def default_heads(native_scales: dict[str, list[str]] | None = None, loss: str = "focal") -> list[HeadSpec]:
    """Six 0-3 indicator heads, the Low/Mid/High head and one head per native scale given."""
    grades = tuple(str(g) for g in INDICATOR_GRADES)
    heads = [HeadSpec(name, grades, f"indicator:{name}", loss) for name in INDICATORS]
    heads.append(HeadSpec(HAIR_LOSS_HEAD, HAIR_LOSS_GRADES, "hair_loss", loss))
    for dataset, scale in sorted((native_scales or {}).items()):
        heads.append(HeadSpec(native_head_name(dataset), tuple(scale), f"native:{dataset}", loss))
    return heads


class GradeHead(nn.Module):
    """Dropout and one linear layer from the pooled features to a head's logits; the last
    ``n_coverage`` features (lesion coverage) instead go, without dropout, through a layer of
    their own whose output is multiplied by ``coverage_gain``.

    Why the gain: AdamW moves each weight by about the learning rate per step, whatever its
    input, and a sharp grade boundary on a coverage needs weights in the tens, far more than a
    few thousand steps at 3e-4 reach. Meanwhile the thousands of image features fit the training
    pictures first (``python -m fusion.coverage_study``, synthetic close-ups, frozen backbone:
    the five area grades at macro-F1 0.62 with the coverage entered once, 0.94 with a gain of
    4096, 0.98 with 16384). The gain is the coverage's own learning rate, ``gain x lr``; its
    layer starts at zero so the gain does not blow up the first logits.

    ``inputs`` (optional) picks the pooled features this head reads, by index, coverage last;
    ``in_features`` then counts the picked ones.
    """

    def __init__(self, in_features: int, n_outputs: int, dropout: float = 0.2, n_coverage: int = 0,
                 coverage_gain: float = 1.0, inputs: torch.Tensor | None = None) -> None:
        super().__init__()
        self.n_coverage, self.coverage_gain = n_coverage, float(coverage_gain)
        self.picks = inputs is not None
        if inputs is not None:
            if len(inputs) != in_features:
                raise ValueError(f"a head reading {len(inputs)} picked features cannot have {in_features} inputs")
            self.register_buffer("inputs", torch.as_tensor(inputs, dtype=torch.long), persistent=False)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(in_features - n_coverage, n_outputs)
        if n_coverage:
            self.coverage = nn.Linear(n_coverage, n_outputs, bias=False)
            nn.init.zeros_(self.coverage.weight)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        if self.picks:
            pooled = pooled.index_select(1, self.inputs)
        if not self.n_coverage:
            return self.linear(self.dropout(pooled))
        image, coverage = pooled[:, :-self.n_coverage], pooled[:, -self.n_coverage:]
        return self.linear(self.dropout(image)) + self.coverage(coverage) * self.coverage_gain
