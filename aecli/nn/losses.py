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


def trim_rows(d_out: np.ndarray, share: float) -> np.ndarray:
    """Leave the ``share`` of rows with the largest gradient (the worst reconstructed) out of
    a mean loss's gradient ``d_out`` (n, d), in place, and scale the rest so it stays a mean
    over the rows kept: a trimmed loss, which stops a fit from bending to a few strange rows.
    """
    n = len(d_out)
    k = int(share * n)
    if k < 1 or k >= n:
        return d_out
    size = np.einsum("ij,ij->i", d_out, d_out)  # (n,) each row's squared gradient
    worst = np.argpartition(size, n - k)[n - k :]
    d_out[worst] = 0
    d_out *= d_out.dtype.type(n / (n - k))
    return d_out


def l1_penalty(z: np.ndarray, strength: float) -> tuple[float, np.ndarray]:
    """Sparsity penalty ``strength * mean over rows of sum |z|`` and its gradient."""
    n = z.shape[0]
    loss = strength * float(np.abs(z).sum()) / n
    return loss, np.sign(z) * z.dtype.type(strength / n)


# The smallest probability a categorical error reads: -log of it bounds a cell's error, and is
# the error of a level unseen at training (an all-zero one-hot block), the largest there is.
PROBABILITY_FLOOR = 1e-6
UNSEEN_ERROR = float(-np.log(PROBABILITY_FLOOR))  # 13.8


class SoftmaxGroups:
    """The output columns that one-hot encode categorical columns, one block per column.

    The network's last ``sum(sizes)`` outputs are logits: each block goes through a softmax
    and is trained with cross-entropy; the columns before them are numeric, trained with
    squared error. Each table column counts once, whatever its width (as TVAE/CTGAN weigh
    their columns): a row's error is the mean over its columns of ``(y_hat - y)^2`` for a
    numeric column and ``-log p[level]`` for a categorical one, in nats: the negative
    log-likelihood, so a level the rest of the row makes unlikely scores high, while a
    column that is noise costs about its entropy in every row alike. Reported errors read
    ``p`` no lower than :data:`PROBABILITY_FLOOR`; a level unseen at training (an all-zero
    block) gets :data:`UNSEEN_ERROR`, the largest.

    Parameters
    ----------
    numeric : int
        Numeric columns, first in the matrix.
    sizes : sequence of int
        Levels of each categorical column, in matrix order after the numeric ones.
    """

    def __init__(self, numeric: int, sizes):
        self.numeric = int(numeric)
        self.sizes = tuple(int(s) for s in sizes)
        if self.numeric < 0 or any(s < 1 for s in self.sizes):
            raise ValueError(f"invalid column groups: {self.numeric} numeric, {self.sizes}")
        self.starts = self.numeric + np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(
            int) if self.sizes else np.zeros(0, dtype=int)
        self.width = self.numeric + sum(self.sizes)  # columns of the matrix
        self.columns = self.numeric + len(self.sizes)  # columns of the table

    def __eq__(self, other) -> bool:
        return isinstance(other, SoftmaxGroups) and (self.numeric, self.sizes) == (
            other.numeric, other.sizes)

    def __repr__(self) -> str:
        return f"SoftmaxGroups(numeric={self.numeric}, sizes={list(self.sizes)})"

    def blocks(self):
        """``(start, stop)`` of each categorical block."""
        return [(int(a), int(a) + s) for a, s in zip(self.starts, self.sizes, strict=True)]

    def softmax_(self, h: np.ndarray) -> np.ndarray:
        """Turn each block of logits in ``h`` (n, width) into probabilities, in place."""
        for a, b in self.blocks():
            block = h[:, a:b]
            block -= block.max(axis=1, keepdims=True)
            np.exp(block, out=block)
            block /= block.sum(axis=1, keepdims=True)
        return h

    def normalised_(self, h: np.ndarray) -> np.ndarray:
        """Read each block of a reconstruction that is no softmax (PCA's, a mean) as
        probabilities, in place: clipped to [0, 1] and scaled to sum to 1 (uniform when
        nothing is left)."""
        for a, b in self.blocks():
            block = np.clip(h[:, a:b], 0.0, 1.0, out=h[:, a:b])
            total = block.sum(axis=1, keepdims=True)
            np.divide(block, total, out=block, where=total > 0)
            block[total[:, 0] <= 0] = 1.0 / (b - a)
        return h

    def loss_and_grad(self, out: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        """Mean error per table cell of logits ``out`` (n, width) against ``target``, and its
        gradient with respect to ``out``."""
        n = len(out)
        per = out.dtype.type(1.0 / (n * self.columns))
        d = np.subtract(out, target)  # (n, width); the blocks are overwritten below
        num = d[:, : self.numeric]
        total = float(np.vdot(num, num))
        for a, b in self.blocks():
            logits = out[:, a:b]
            shifted = logits - logits.max(axis=1, keepdims=True)
            log_z = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            log_p = shifted - log_z  # (n, L)
            y = target[:, a:b]
            total -= float(np.vdot(y, log_p))
            np.subtract(np.exp(log_p), y, out=d[:, a:b])  # d(-log p[y]) / d logits
        num *= 2 * per
        if self.sizes:
            d[:, self.numeric :] *= per
        return total / (n * self.columns), d

    def cell_errors(self, p: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Each table cell's error (n, columns), float64: squared error of the numeric
        columns, ``-log p[level]`` of each block of probabilities ``p`` (floored at
        :data:`PROBABILITY_FLOOR`; unseen: :data:`UNSEEN_ERROR`)."""
        n = len(p)
        out = np.empty((n, self.columns), dtype=np.float64)
        d = np.subtract(p[:, : self.numeric], target[:, : self.numeric], dtype=np.float64)
        np.multiply(d, d, out=out[:, : self.numeric])
        for j, (a, b) in enumerate(self.blocks()):
            chance = np.einsum("ij,ij->i", p[:, a:b], target[:, a:b], dtype=np.float64)
            out[:, self.numeric + j] = -np.log(np.maximum(chance, PROBABILITY_FLOOR))
        return out

    def row_errors(self, p: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Each row's mean error over its table columns (n,), float64."""
        return self.cell_errors(p, target).mean(axis=1)
