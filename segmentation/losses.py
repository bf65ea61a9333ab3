"""Losses for the refiner: Dice + BCE on masks, and box-projection consistency for weak labels.

The projection term (BoxInst, Tian et al. 2021) says only what a box really says: the mask's
shadow on the x axis and on the y axis must match the box's. It pushes a weak mask to reach
the box's edges and never to leak past them, without trusting any pixel inside.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - soft Dice per item (N,), over all but the batch axis."""
    probs = torch.sigmoid(logits).flatten(1)
    target = target.flatten(1)
    intersection = (probs * target).sum(1)
    return 1.0 - (2.0 * intersection + smooth) / (probs.sum(1) + target.sum(1) + smooth)


def dice_bce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft Dice + BCE per item (N,): Dice for overlap, BCE for calibrated pixels."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).mean(1)
    return soft_dice_loss(logits, target) + bce


def box_projection_loss(logits: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """Dice between the mask's and the box's max-projections on both axes, per item (N,)."""
    probs = torch.sigmoid(logits)
    loss_x = soft_dice_loss_probs(probs.amax(dim=-2), box.amax(dim=-2))
    loss_y = soft_dice_loss_probs(probs.amax(dim=-1), box.amax(dim=-1))
    return loss_x + loss_y


def soft_dice_loss_probs(probs: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    probs, target = probs.flatten(1), target.flatten(1)
    return 1.0 - (2.0 * (probs * target).sum(1) + smooth) / (probs.sum(1) + target.sum(1) + smooth)


def refiner_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    box: torch.Tensor,
    exact: torch.Tensor,
    weak_weight: float = 0.5,
    projection_weight: float = 1.0,
) -> torch.Tensor:
    """Mean loss of a batch mixing exact and weak items.

    Exact items (an outline exists): Dice + BCE on it. Weak items: Dice + BCE on the weak mask,
    down-weighted (it is a guess), plus the box-projection term (which is not a guess).
    """
    mask_term = dice_bce_loss(logits, target)
    weak_term = weak_weight * mask_term + projection_weight * box_projection_loss(logits, box)
    per_item = exact * mask_term + (1.0 - exact) * weak_term
    return per_item.mean()


__all__ = ["box_projection_loss", "dice_bce_loss", "refiner_loss", "soft_dice_loss"]
