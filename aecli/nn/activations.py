"""Activation functions, each with its derivative, chosen by name from a registry.

``forward(z, out=None)`` returns ``a = f(z)``; ``backward(z, a, da, out=None)`` takes the
pre-activation ``z``, the activation ``a`` and the upstream gradient ``da`` and returns
``dz = da * f'(z)``. Given ``out`` (an array shaped like ``z``, not ``z`` itself) they write
there instead of allocating, which is how the training loop reuses its buffers; ``linear``
returns its input as is. Where ``f'`` can be written in terms of ``a`` it is, so no second
transcendental call is needed on the hot path; and ``np.where`` (several times slower than
arithmetic) stays off it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

LEAKY_SLOPE = 0.01
ELU_ALPHA = 1.0  # PyTorch's default; _elu and _elu_back rely on alpha = 1
GELU_C = float(np.sqrt(2.0 / np.pi))  # a Python float keeps float32 arrays float32


class ActivationKind(StrEnum):
    """The activations aecli knows, by their command-line names."""

    LINEAR = "linear"
    RELU = "relu"
    LEAKY_RELU = "leaky_relu"
    ELU = "elu"
    TANH = "tanh"
    SIGMOID = "sigmoid"
    SOFTPLUS = "softplus"
    GELU = "gelu"


@dataclass(frozen=True)
class Activation:
    """An activation: ``forward(z, out=None) -> a``, ``backward(z, a, da, out=None) -> dz``
    and its initialiser."""

    kind: ActivationKind
    forward: Callable[..., np.ndarray]
    backward: Callable[..., np.ndarray]
    init: str  # "he" for rectifier-like activations, "glorot" for the rest


def _linear(z, out=None):
    return z


def _linear_back(z, a, da, out=None):
    return da


def _relu(z, out=None):
    return np.maximum(z, 0, out=out)


def _relu_back(z, a, da, out=None):
    return np.multiply(da, z > 0, out=out)


def _leaky(z, out=None):
    # For 0 < slope < 1, max(z, slope*z) is z for z > 0 and slope*z otherwise.
    out = np.multiply(z, z.dtype.type(LEAKY_SLOPE), out=out)
    return np.maximum(z, out, out=out)


def _leaky_back(z, a, da, out=None):
    out = np.multiply(da, da.dtype.type(LEAKY_SLOPE), out=out)
    np.copyto(out, da, where=z > 0)
    return out


def _elu(z, out=None):
    # expm1(-|z|) is expm1(z) for z <= 0, which is >= z, and lies in (-1, 0) for z > 0, so the
    # maximum picks the right branch exactly; -|z| <= 0 cannot overflow.
    out = np.abs(z, out=out)
    np.negative(out, out=out)
    np.expm1(out, out=out)
    return np.maximum(z, out, out=out)


def _elu_back(z, a, da, out=None):
    # f'(z) = 1 for z > 0 and alpha * exp(z) = a + 1 for z <= 0: 1 + min(a, 0), where
    # min(a, 0) = (a - |a|) / 2 exactly; NumPy's minimum against a scalar is a slow loop.
    out = np.abs(a, out=out)
    np.subtract(a, out, out=out)
    out *= 0.5
    out += 1
    return np.multiply(out, da, out=out)


def _tanh(z, out=None):
    return np.tanh(z, out=out)


def _tanh_back(z, a, da, out=None):
    out = np.multiply(a, a, out=out)
    np.subtract(1, out, out=out)
    return np.multiply(out, da, out=out)


def _sigmoid(z, out=None):
    # 0.5 * (1 + tanh(z/2)) is the logistic function without exp overflow.
    out = np.multiply(z, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1
    out *= 0.5
    return out


def _sigmoid_back(z, a, da, out=None):
    out = np.subtract(1, a, out=out)
    out *= a
    return np.multiply(out, da, out=out)


def _softplus(z, out=None):
    # log(1 + e^z) = max(z, 0) + log1p(e^-|z|), the same formula np.logaddexp(0, z) uses,
    # without its scalar loop (an order of magnitude slower).
    out = np.abs(z, out=out)
    np.negative(out, out=out)
    np.exp(out, out=out)
    np.log1p(out, out=out)
    out += np.maximum(z, 0)
    return out


def _softplus_back(z, a, da, out=None):
    # f'(z) = sigmoid(z) = 1 - exp(-softplus(z)).
    out = np.negative(a, out=out)
    np.expm1(out, out=out)
    np.negative(out, out=out)
    return np.multiply(da, out, out=out)


def _gelu(z, out=None):
    # The tanh approximation (as PyTorch's approximate="tanh").
    out = np.multiply(z, 0.044715, out=out)
    out *= z
    out *= z  # z*z*z: float32 ** is a slow pow call
    out += z
    out *= GELU_C
    np.tanh(out, out=out)
    out += 1
    out *= z
    out *= 0.5
    return out


def _gelu_back(z, a, da, out=None):
    u = GELU_C * (z + 0.044715 * z * z * z)
    t = np.tanh(u)
    du = GELU_C * (1 + 3 * 0.044715 * z * z)
    return np.multiply(da, 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * du, out=out)


REGISTRY: dict[ActivationKind, Activation] = {
    a.kind: a
    for a in (
        Activation(ActivationKind.LINEAR, _linear, _linear_back, "glorot"),
        Activation(ActivationKind.RELU, _relu, _relu_back, "he"),
        Activation(ActivationKind.LEAKY_RELU, _leaky, _leaky_back, "he"),
        Activation(ActivationKind.ELU, _elu, _elu_back, "he"),
        Activation(ActivationKind.TANH, _tanh, _tanh_back, "glorot"),
        Activation(ActivationKind.SIGMOID, _sigmoid, _sigmoid_back, "glorot"),
        Activation(ActivationKind.SOFTPLUS, _softplus, _softplus_back, "glorot"),
        Activation(ActivationKind.GELU, _gelu, _gelu_back, "he"),
    )
}


def get_activation(name: str | ActivationKind) -> Activation:
    """Look up an activation by name.

    Raises
    ------
    ValueError
        If the name is not one of :class:`ActivationKind`.
    """
    return REGISTRY[ActivationKind(name)]
