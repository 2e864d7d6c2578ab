"""Tests for aecli.nn.layers: Dense and Dropout backward passes against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from aecli.nn import ActivationKind, Dense, Dropout, get_activation


def _dense(kind, rng, n_in=4, n_out=3):
    W = rng.normal(size=(n_in, n_out))
    b = rng.normal(size=n_out)
    return Dense(W, b, np.zeros_like(W), np.zeros_like(b), get_activation(kind))


@pytest.mark.parametrize("kind", list(ActivationKind))
def test_dense_gradients_match_central_differences(kind, numerical_grad, assert_grad_close):
    rng = np.random.default_rng(1)
    layer = _dense(kind, rng)
    x = rng.normal(size=(5, 4))
    c = rng.normal(size=(5, 3))  # L = sum(c * f(x @ W + b)): every output weighted differently

    def loss():
        return float(np.sum(c * layer.forward(x)))

    layer.forward(x, keep=True)
    z = layer.cache[1]
    assert np.abs(z).min() > 1e-3, "a pre-activation sits on a kink; pick another seed"
    dx = layer.backward(c)
    assert_grad_close(layer.dW, numerical_grad(loss, layer.W))
    assert_grad_close(layer.db, numerical_grad(loss, layer.b))
    assert_grad_close(dx, numerical_grad(loss, x))


def test_dense_backward_writes_into_the_given_gradient_buffers():
    rng = np.random.default_rng(2)
    layer = _dense("tanh", rng)
    dW, db = layer.dW, layer.db
    layer.forward(rng.normal(size=(5, 4)), keep=True)
    assert layer.backward(np.ones((5, 3)), need_dx=False) is None
    # The network relies on this: the buffers are views into its flat gradient vector.
    assert layer.dW is dW and layer.db is db
    assert np.abs(dW).sum() > 0 and np.abs(db).sum() > 0


def test_dropout_gradient_matches_central_differences_with_a_fixed_mask(
    numerical_grad, assert_grad_close
):
    x = np.random.default_rng(3).normal(size=(6, 5))
    c = np.random.default_rng(4).normal(size=(6, 5))
    drop = Dropout(0.4)

    def loss():
        # The same seed every call draws the same mask, so the function is deterministic.
        return float(np.sum(c * drop.forward(x, np.random.default_rng(7))))

    loss()
    mask = drop.mask.copy()
    assert 0 < np.count_nonzero(mask) < mask.size
    dx = drop.backward(c)
    assert_grad_close(dx, numerical_grad(loss, x))
    np.testing.assert_array_equal(drop.mask, mask)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_is_inverted_drops_the_rate_and_keeps_dtype(dtype):
    rate = 0.25
    x = np.ones((400, 50), dtype=dtype)
    out = Dropout(rate).forward(x, np.random.default_rng(0))
    assert out.dtype == dtype
    kept = out != 0
    assert abs(1 - kept.mean() - rate) < 0.02
    # Kept units are scaled by 1/(1-rate) so that the expected activation is unchanged.
    np.testing.assert_allclose(out[kept], 1 / (1 - rate), rtol=1e-6)
    assert abs(out.mean() - 1) < 0.03
