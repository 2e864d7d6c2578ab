"""Weight initialisation matched to the activation that follows the layer."""

from __future__ import annotations

import numpy as np


def init_weights(fan_in: int, fan_out: int, scheme: str, rng: np.random.Generator) -> np.ndarray:
    """Draw a ``(fan_in, fan_out)`` float64 weight matrix.

    ``"he"`` (normal, variance 2/fan_in) keeps the activation scale through rectifiers;
    ``"glorot"`` (uniform, variance 2/(fan_in+fan_out)) does so for symmetric activations.
    """
    if scheme == "he":
        return rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
    if scheme == "glorot":
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, (fan_in, fan_out))
    raise ValueError(f"unknown initialisation scheme {scheme!r}")
