"""Layers: a dense layer and inverted dropout, forward and backward side by side.

A layer keeps what its backward pass needs in ``cache``. Parameters and their gradients are
views into the network's flat vectors (see :mod:`aecli.nn.network`), so a layer writes its
gradient in place and the optimizer updates every parameter with a handful of vector operations.
"""

from __future__ import annotations

import functools

import numpy as np

from .activations import Activation


class Dense:
    """``a = f(x @ W + b)``.

    Parameters
    ----------
    W : ndarray of shape (n_in, n_out)
        Weights; a view into the network's parameters (a transposed view for a tied layer).
    b : ndarray of shape (n_out,)
    dW : ndarray of shape (n_in, n_out)
        Where backward writes the weight gradient.
    db : ndarray of shape (n_out,)
    activation : Activation

    Notes
    -----
    A training step (``forward(keep=True)`` then ``backward``) allocates nothing: it works in
    buffers kept between steps, so its results are only valid until the next step.
    """

    def __init__(self, W, b, dW, db, activation: Activation):
        self.W, self.b, self.dW, self.db = W, b, dW, db
        self.activation = activation
        self.cache: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._buffers: dict[str, np.ndarray] = {}

    def _buffer(self, name: str, n: int, width: int) -> np.ndarray:
        """The first ``n`` rows of a ``(rows, width)`` training buffer, grown when needed."""
        buf = self._buffers.get(name)
        if buf is None or len(buf) < n:
            buf = self._buffers[name] = np.empty((n, width), dtype=self.W.dtype)
        return buf[:n]

    def _ones(self, n: int) -> np.ndarray:
        ones = self._buffers.get("ones")
        if ones is None or len(ones) < n:
            ones = self._buffers["ones"] = np.ones(n, dtype=self.W.dtype)
        return ones[:n]

    def forward(self, x: np.ndarray, keep: bool = False) -> np.ndarray:
        """Apply the layer to ``x`` of shape (n, n_in); ``keep`` caches for backward."""
        n, n_out = len(x), self.W.shape[1]
        if not keep:
            z = x @ self.W  # (n, n_out)
            z += self.b
            return self.activation.forward(z)
        z = np.matmul(x, self.W, out=self._buffer("z", n, n_out))  # (n, n_out)
        z += self.b
        a = self.activation.forward(z, out=self._buffer("a", n, n_out))  # (n, n_out)
        self.cache = (x, z, a)
        return a

    def infer(self, x: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        """``forward`` without caching, written into ``z`` and ``a`` (both (n, n_out)); returns
        the output (``a``, or ``z`` when the activation is linear)."""
        if x.dtype == np.float32 and not rows_alike():
            # this BLAS gives a row other bits at another place among the rows: multiply in
            # float64, whose product here is exact about that, so that a row's result does
            # not depend on the rows beside it
            z[...] = np.matmul(x.astype(np.float64), self.W.astype(np.float64))
        else:
            np.matmul(x, self.W, out=z)
        z += self.b
        return self.activation.forward(z, out=a)

    def backward(self, da: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        """Write dW and db from ``da`` (n, n_out); return dx (n, n_in) unless not needed."""
        x, z, a = self.cache
        n, (n_in, n_out) = len(da), self.W.shape
        dz = self.activation.backward(z, a, da, out=self._buffer("dz", n, n_out))  # (n, n_out)
        np.matmul(x.T, dz, out=self.dW)  # (n_in, n_out)
        # The column sums as a BLAS matrix-vector product: several times faster than
        # dz.sum(axis=0), NumPy's pairwise reduction across rows.
        np.matmul(self._ones(n), dz, out=self.db)  # (n_out,)
        if not need_dx:
            return None
        return np.matmul(dz, self.W.T, out=self._buffer("dx", n, n_in))  # (n, n_in)


@functools.cache
def rows_alike() -> bool:
    """Whether this BLAS's float32 matrix product gives a row the same bits wherever the row
    sits among the others. OpenBLAS's Haswell kernel (as ``OPENBLAS_CORETYPE=Haswell``
    forces) does not: a row's result depends on its place modulo the kernel's 24-row unroll.
    Probed once, on a small product."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((96, 40)).astype(np.float32)  # (m, k)
    B = rng.standard_normal((40, 64)).astype(np.float32)  # (k, n)
    C = A @ B
    return all(np.array_equal(np.roll(C, s, axis=0), np.roll(A, s, axis=0) @ B)
               for s in (1, 5, 13))


class Dropout:
    """Inverted dropout: zero a fraction ``rate`` of units and scale the rest by 1/(1-rate),
    so that nothing changes at inference time."""

    def __init__(self, rate: float):
        self.rate = rate
        self.mask: np.ndarray | None = None

    def forward(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Drop units of ``x`` (n, m) with a fresh mask drawn from ``rng``."""
        keep = x.dtype.type(1.0 - self.rate)
        self.mask = (rng.random(x.shape, dtype=x.dtype) < keep) / keep  # (n, m)
        return x * self.mask

    def backward(self, da: np.ndarray) -> np.ndarray:
        """Route the gradient through the units kept in forward."""
        return da * self.mask
