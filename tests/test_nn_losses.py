"""Tests for aecli.nn.losses: values and gradients against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from aecli.nn import l1_penalty, mse


def test_mse_value_and_gradient(numerical_grad, assert_grad_close):
    rng = np.random.default_rng(0)
    y_hat, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    loss, grad = mse(y_hat.copy(), y)
    assert loss == pytest.approx(np.mean((y_hat - y) ** 2), rel=1e-14)
    assert_grad_close(grad, numerical_grad(lambda: mse(y_hat, y)[0], y_hat))


def test_mse_does_not_modify_its_inputs():
    y_hat, y = np.arange(6.0).reshape(2, 3), np.ones((2, 3))
    before = y_hat.copy(), y.copy()
    mse(y_hat, y)
    np.testing.assert_array_equal(y_hat, before[0])
    np.testing.assert_array_equal(y, before[1])


def test_l1_penalty_value_and_gradient_away_from_zero(numerical_grad, assert_grad_close):
    rng = np.random.default_rng(1)
    z = rng.uniform(0.1, 2, size=(5, 3)) * rng.choice([-1.0, 1.0], size=(5, 3))
    loss, grad = l1_penalty(z, 0.3)
    assert loss == pytest.approx(0.3 * np.abs(z).sum() / 5, rel=1e-14)
    assert_grad_close(grad, numerical_grad(lambda: l1_penalty(z, 0.3)[0], z))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradients_keep_the_dtype(dtype):
    a = np.ones((3, 2), dtype=dtype)
    assert mse(a, a * 2)[1].dtype == dtype
    assert l1_penalty(a, 0.1)[1].dtype == dtype
