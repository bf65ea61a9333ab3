"""Temperature scaling per head (Guo et al. 2017), fit on the validation split.

One scalar T per head divides its logits; it changes confidence, never the predicted grade
(for softmax heads; for CORN heads the argmax can move when T crosses 1, rarely). T is chosen
by minimizing the validation negative log-likelihood over a log-spaced grid, which is
deterministic and needs no optimizer settings.

Because T is fit on the split it is then scored on, :func:`cross_fitted_ece` also reports the
honest figure: T fit on one half of the images, ECE measured on the other, and vice versa.
"""
from __future__ import annotations

import numpy as np
import torch

from evaluation.classification import expected_calibration_error
from fusion.heads import HeadSpec

TEMPERATURE_GRID = np.exp(np.linspace(np.log(0.05), np.log(20.0), 241))


def _nll(head: HeadSpec, logits: torch.Tensor, labels: torch.Tensor, temperature: float) -> float:
    probs = head.probabilities(logits, temperature).clamp_min(1e-12)
    return float(-probs.gather(1, labels[:, None]).log().mean())


def fit_temperature(head: HeadSpec, logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimizing NLL on the rows with a known label (1.0 when there are none)."""
    known = np.asarray(labels) >= 0
    if known.sum() < 2:
        return 1.0
    x = torch.as_tensor(np.asarray(logits)[known], dtype=torch.float64)
    y = torch.as_tensor(np.asarray(labels)[known], dtype=torch.long)
    losses = [_nll(head, x, y, float(t)) for t in TEMPERATURE_GRID]
    return float(TEMPERATURE_GRID[int(np.argmin(losses))])


def probabilities(head: HeadSpec, logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    return head.probabilities(torch.as_tensor(np.asarray(logits), dtype=torch.float64), temperature).numpy()


def cross_fitted_ece(head: HeadSpec, logits: np.ndarray, labels: np.ndarray, seed: int = 0, folds: int = 2) -> float:
    """ECE of temperature-scaled probabilities where each image's T was fit on the other fold(s)."""
    logits, labels = np.asarray(logits), np.asarray(labels)
    known = np.flatnonzero(labels >= 0)
    if known.size < 2 * folds:
        return float("nan")
    order = np.random.default_rng(seed).permutation(known)
    probs = np.zeros((labels.size, len(head.classes)))
    for part in np.array_split(order, folds):
        rest = np.setdiff1d(order, part)
        temperature = fit_temperature(head, logits[rest], labels[rest])
        probs[part] = probabilities(head, logits[part], temperature)
    return expected_calibration_error(probs[known], labels[known])
