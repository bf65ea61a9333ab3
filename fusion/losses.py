"""Losses for graded heads, with unknown labels masked out.

Labels are class indices, ``-1`` where a sample has no label for that head (an AI-Hub image has
six grades but no Low/Mid/High; a hair-loss head photo has Low/Mid/High but no indicator grades).
Masked rows add nothing to the loss and no gradient to the head, so datasets with different
label sets train one model.

>>> logits = {"dandruff": torch.zeros(2, 4)}
>>> loss, parts = multi_head_loss(logits, {"dandruff": torch.tensor([-1, -1])}, {"dandruff": "focal"})
>>> float(loss), parts
(0.0, {})
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

IGNORE = -1
ALPHA_MODES = ("none", "inverse", "sqrt")


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0, alpha: torch.Tensor | None = None) -> torch.Tensor:
    """Mean focal loss ``-alpha_t (1 - p_t)^gamma log p_t`` over rows with a known target."""
    known = target != IGNORE
    if not bool(known.any()):
        return logits.sum() * 0.0
    logits, target = logits[known], target[known]
    log_p = F.log_softmax(logits, dim=-1).gather(1, target[:, None]).squeeze(1)
    loss = -((1.0 - log_p.exp()) ** gamma) * log_p
    if alpha is not None:
        loss = loss * alpha.to(loss)[target]
    return loss.mean()


def corn_loss(logits: torch.Tensor, target: torch.Tensor, alpha: torch.Tensor | None = None) -> torch.Tensor:
    """CORN ordinal loss: task k is 'grade > k' learned on the rows with grade >= k (Shi et al. 2021).

    ``logits`` are N x (K-1); the loss is the binary cross-entropy summed over tasks and divided
    by the number of (row, task) terms, so it does not grow with K.
    """
    known = target != IGNORE
    if not bool(known.any()):
        return logits.sum() * 0.0
    logits, target = logits[known], target[known]
    tasks = torch.arange(logits.shape[1], device=logits.device)
    conditioned = target[:, None] >= tasks[None, :]  # row takes part in task k when its grade >= k
    above = (target[:, None] > tasks[None, :]).to(logits.dtype)
    terms = F.binary_cross_entropy_with_logits(logits, above, reduction="none")
    if alpha is not None:
        terms = terms * alpha.to(terms)[target][:, None]
    return (terms * conditioned).sum() / conditioned.sum().clamp(min=1)


def multi_head_loss(
    logits: Mapping[str, torch.Tensor],
    targets: Mapping[str, torch.Tensor],
    losses: Mapping[str, str],
    gamma: float = 2.0,
    alphas: Mapping[str, torch.Tensor | None] | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Sum of each head's mean loss over its labelled rows; heads without labels are skipped.

    Returns the total and each contributing head's value (for logging).
    """
    total = None
    parts: dict[str, float] = {}
    for name, head_logits in logits.items():
        target = targets[name]
        if not bool((target != IGNORE).any()):
            continue
        alpha = (alphas or {}).get(name)
        if losses[name] == "corn":
            value = corn_loss(head_logits, target, alpha)
        else:
            value = focal_loss(head_logits, target, gamma, alpha)
        parts[name] = float(value.detach())
        total = value if total is None else total + value
    if total is None:
        total = sum(v.sum() for v in logits.values()) * 0.0
    return total, parts


def class_alpha(counts: Sequence[int], mode: str = "none", cap: float = 10.0) -> torch.Tensor | None:
    """Per-class weights from training label counts: ``inverse`` (1/n) or ``sqrt`` (1/sqrt n).

    Scaled so the average weight over the training samples is 1, capped at ``cap`` times that,
    and 0 for classes with no training sample. ``none`` gives None (unweighted).
    """
    if mode not in ALPHA_MODES:
        raise ValueError(f"alpha mode {mode!r} unknown; use one of {', '.join(ALPHA_MODES)}")
    counts_arr = np.asarray(counts, dtype=np.float64)
    if mode == "none" or counts_arr.sum() == 0:
        return None
    power = 1.0 if mode == "inverse" else 0.5
    raw = np.divide(1.0, counts_arr**power, out=np.zeros_like(counts_arr), where=counts_arr > 0)
    raw = raw / ((raw * counts_arr).sum() / counts_arr.sum())
    return torch.tensor(np.minimum(raw, cap), dtype=torch.float32)
