"""Tests for aecli.nn.activations: each derivative against central finite differences."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from aecli.nn import ActivationKind, get_activation

ALL = list(ActivationKind)


def _points(rng) -> np.ndarray:
    """Points over [-4, 4], none within 0.05 of the kinks at 0 (relu, leaky_relu, elu)."""
    return rng.uniform(0.05, 4, size=(6, 7)) * rng.choice([-1.0, 1.0], size=(6, 7))


@pytest.mark.parametrize("kind", ALL)
def test_backward_matches_central_differences(kind):
    act = get_activation(kind)
    rng = np.random.default_rng(0)
    z = _points(rng)
    da = rng.normal(size=z.shape)
    dz = act.backward(z, act.forward(z), da)
    # The activations are elementwise, so one perturbation of every element at once gives
    # every partial derivative.
    h = 1e-6
    numeric = da * (act.forward(z + h) - act.forward(z - h)) / (2 * h)
    np.testing.assert_allclose(dz, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("kind", ALL)
def test_forward_at_known_points(kind):
    act = get_activation(kind)
    z = np.array([-2.0, 1.5])
    expected = {
        "linear": [-2.0, 1.5],
        "relu": [0.0, 1.5],
        "leaky_relu": [-0.02, 1.5],
        "elu": [np.expm1(-2.0), 1.5],
        "tanh": np.tanh(z),
        "sigmoid": 1 / (1 + np.exp(-z)),
        "softplus": np.log1p(np.exp(z)),
        # GELU, tanh approximation.
        "gelu": 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3))),
    }[kind.value]
    np.testing.assert_allclose(act.forward(z), expected, rtol=1e-12)


@pytest.mark.parametrize("kind", ALL)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_inputs_stay_finite_quietly_and_keep_dtype(kind, dtype):
    act = get_activation(kind)
    z = np.array([-1e4, -80.0, -1.0, 1.0, 80.0, 1e4], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning either
        a = act.forward(z)
        dz = act.backward(z, a, np.ones_like(z))
    assert a.dtype == dtype and dz.dtype == dtype
    assert np.isfinite(a).all() and np.isfinite(dz).all()


def test_unknown_name_raises_value_error():
    with pytest.raises(ValueError, match="swish"):
        get_activation("swish")

