"""Weight initialisation."""

from __future__ import annotations

import numpy as np


def init_weights(fan_in: int, fan_out: int, scheme: str, rng: np.random.Generator) -> np.ndarray:
    """Draw a ``(fan_in, fan_out)`` float64 weight matrix.

    ``"uniform"`` draws from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default for a
    linear layer: on the quality benchmark (``bench/quality.py``) it generalises better than
    the schemes matched to the activation. ``"he"`` (normal, variance 2/fan_in) and
    ``"glorot"`` (uniform, variance 2/(fan_in+fan_out)) keep the activation scale through
    rectifiers and symmetric activations respectively.
    """
    if scheme == "uniform":
        bound = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, (fan_in, fan_out))
    if scheme == "he":
        return rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
    if scheme == "glorot":
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, (fan_in, fan_out))
    raise ValueError(f"unknown initialisation scheme {scheme!r}")


def init_bias(fan_in: int, fan_out: int, scheme: str, rng: np.random.Generator) -> np.ndarray:
    """Draw a ``(fan_out,)`` bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with ``"uniform"``, as
    PyTorch does; zeros otherwise."""
    if scheme == "uniform":
        bound = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, fan_out)
    return np.zeros(fan_out)
