"""Losses and penalties: value and gradient side by side."""

from __future__ import annotations

import numpy as np


def mse(y_hat: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean squared error over every element, and its gradient with respect to ``y_hat``.

    Returns
    -------
    loss : float
    d_y_hat : ndarray of shape y_hat.shape
    """
    diff = y_hat - y  # (n, d)
    loss = float(np.vdot(diff, diff)) / diff.size
    diff *= diff.dtype.type(2.0 / diff.size)
    return loss, diff


def l1_penalty(z: np.ndarray, strength: float) -> tuple[float, np.ndarray]:
    """Sparsity penalty ``strength * mean over rows of sum |z|`` and its gradient."""
    n = z.shape[0]
    loss = strength * float(np.abs(z).sum()) / n
    return loss, np.sign(z) * z.dtype.type(strength / n)
