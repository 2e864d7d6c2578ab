"""Activation functions, each with its derivative, chosen by name from a registry.

``backward`` takes the pre-activation ``z``, the activation ``a = f(z)`` and the upstream
gradient ``da`` and returns ``dz = da * f'(z)``. Where ``f'`` can be written in terms of ``a``
it is, so no second transcendental call is needed on the hot path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

LEAKY_SLOPE = 0.01
ELU_ALPHA = 1.0
_GELU_C = float(np.sqrt(2.0 / np.pi))  # a Python float keeps float32 arrays float32


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
    """An activation: ``forward(z) -> a``, ``backward(z, a, da) -> dz`` and its initialiser."""

    kind: ActivationKind
    forward: Callable[[np.ndarray], np.ndarray]
    backward: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    init: str  # "he" for rectifier-like activations, "glorot" for the rest


def _linear(z):
    return z


def _linear_back(z, a, da):
    return da


def _relu(z):
    return np.maximum(z, 0)


def _relu_back(z, a, da):
    return da * (z > 0)


def _leaky(z):
    return np.where(z > 0, z, z * z.dtype.type(LEAKY_SLOPE))


def _leaky_back(z, a, da):
    return np.where(z > 0, da, da * da.dtype.type(LEAKY_SLOPE))


def _elu(z):
    # expm1 of the clipped value avoids overflow warnings on large positive z.
    return np.where(z > 0, z, ELU_ALPHA * np.expm1(np.minimum(z, 0)))


def _elu_back(z, a, da):
    # For z <= 0: f'(z) = alpha * exp(z) = a + alpha.
    return np.where(z > 0, da, da * (a + z.dtype.type(ELU_ALPHA)))


def _tanh(z):
    return np.tanh(z)


def _tanh_back(z, a, da):
    return da * (1 - a * a)


def _sigmoid(z):
    # 0.5 * (1 + tanh(z/2)) is the logistic function without exp overflow.
    return 0.5 * (1 + np.tanh(0.5 * z))


def _sigmoid_back(z, a, da):
    return da * a * (1 - a)


def _softplus(z):
    return np.logaddexp(0, z)


def _softplus_back(z, a, da):
    # f'(z) = sigmoid(z) = 1 - exp(-softplus(z)).
    return da * -np.expm1(-a)


def _gelu(z):
    # The tanh approximation (as PyTorch's approximate="tanh").
    return 0.5 * z * (1 + np.tanh(_GELU_C * (z + 0.044715 * z * z * z)))


def _gelu_back(z, a, da):
    u = _GELU_C * (z + 0.044715 * z * z * z)  # z*z*z: float32 ** is a slow pow call
    t = np.tanh(u)
    du = _GELU_C * (1 + 3 * 0.044715 * z * z)
    return da * (0.5 * (1 + t) + 0.5 * z * (1 - t * t) * du)


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
