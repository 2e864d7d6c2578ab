"""Tests for aecli.nn.losses: values and gradients against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from aecli.nn import SoftmaxGroups, l1_penalty, mse
from aecli.nn.losses import PROBABILITY_FLOOR, UNSEEN_ERROR, trim_rows


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


def _onehot(rng, n, sizes, unseen_row=None):
    blocks = []
    for size in sizes:
        block = np.eye(size)[rng.integers(0, size, n)]
        if unseen_row is not None:
            block[unseen_row] = 0
        blocks.append(block)
    return np.hstack(blocks)


def test_softmax_groups_loss_and_gradient(numerical_grad, assert_grad_close):
    """Squared error on the numeric columns, cross-entropy on each block, each table column
    counted once; the gradient matches central differences."""
    rng = np.random.default_rng(3)
    groups = SoftmaxGroups(2, [3, 4])
    n = 6
    target = np.hstack([rng.normal(size=(n, 2)), _onehot(rng, n, [3, 4])])
    out = rng.normal(size=(n, groups.width))
    loss, grad = groups.loss_and_grad(out.copy(), target)
    p1 = np.exp(out[:, 2:5]) / np.exp(out[:, 2:5]).sum(axis=1, keepdims=True)
    p2 = np.exp(out[:, 5:]) / np.exp(out[:, 5:]).sum(axis=1, keepdims=True)
    cross = -(np.log(p1) * target[:, 2:5]).sum() - (np.log(p2) * target[:, 5:]).sum()
    sq = ((out[:, :2] - target[:, :2]) ** 2).sum()
    assert loss == pytest.approx((sq + cross) / (n * 4), rel=1e-12)
    assert_grad_close(grad, numerical_grad(lambda: groups.loss_and_grad(out, target)[0], out))
    probabilities = groups.softmax_(out.copy())
    assert groups.row_errors(probabilities, target).mean() == pytest.approx(loss, rel=1e-12)


def test_cell_errors_count_a_categorical_column_once_and_an_unseen_level_as_the_worst():
    rng = np.random.default_rng(4)
    groups = SoftmaxGroups(1, [3])
    target = np.hstack([rng.normal(size=(3, 1)), _onehot(rng, 3, [3], unseen_row=2)])
    p = np.hstack([target[:, :1] + 0.5, np.full((3, 3), 1 / 3)])
    cells = groups.cell_errors(p, target)
    assert cells.shape == (3, 2)
    np.testing.assert_allclose(cells[:, 0], 0.25)
    np.testing.assert_allclose(cells[:2, 1], np.log(3))
    assert cells[2, 1] == UNSEEN_ERROR == pytest.approx(-np.log(PROBABILITY_FLOOR))
    p[0, 1:] = [0.0, 0.0, 1.0]  # certain, and wrong (or right): floored, never infinite
    assert groups.cell_errors(p, target)[0, 1] in (0.0, UNSEEN_ERROR)
    np.testing.assert_allclose(groups.row_errors(p, target),
                               groups.cell_errors(p, target).mean(axis=1))


def test_a_reconstruction_that_is_no_softmax_is_read_as_probabilities():
    groups = SoftmaxGroups(1, [3])
    h = np.array([[7.0, 0.5, -0.2, 1.5], [7.0, -1.0, -1.0, 0.0]])
    groups.normalised_(h)
    np.testing.assert_allclose(h, [[7.0, 0.5 / 1.5, 0.0, 1.0 / 1.5], [7.0, 1 / 3, 1 / 3, 1 / 3]])


def test_softmax_turns_each_block_into_probabilities_in_place():
    groups = SoftmaxGroups(1, [2, 3])
    h = np.array([[5.0, 1000.0, 1000.0, 0.0, 1.0, 2.0]])
    groups.softmax_(h)
    assert h[0, 0] == 5.0
    np.testing.assert_allclose(h[0, 1:3], [0.5, 0.5])
    np.testing.assert_allclose(h[0, 3:].sum(), 1.0)


def test_trim_rows_leaves_the_worst_rows_out_and_keeps_a_mean_over_the_rest():
    d = np.array([[0.1, 0.0], [5.0, 5.0], [0.2, 0.1], [0.0, 0.3], [1.0, 1.0]])
    out = trim_rows(d.copy(), 0.4)  # 2 of 5 rows
    np.testing.assert_array_equal(out[[1, 4]], 0.0)
    np.testing.assert_allclose(out[[0, 2, 3]], d[[0, 2, 3]] * 5 / 3)
    np.testing.assert_array_equal(trim_rows(d.copy(), 0.1), d)  # under one row: nothing


def test_a_trimmed_fit_does_not_bend_to_the_rows_it_trims():
    from aecli import Autoencoder

    rng = np.random.default_rng(0)
    t = rng.normal(size=(400, 1))
    X = np.hstack([t, 2 * t, -t]) + 0.05 * rng.normal(size=(400, 3))
    X[:20] = rng.normal(scale=3.0, size=(20, 3))  # 5% of rows off the line
    kw = dict(latent=1, hidden=(8,), epochs=60, validation=0.0, seed=0)
    plain = Autoencoder(**kw).fit(X).reconstruction_error(X)
    trimmed = Autoencoder(**kw, trim=0.1).fit(X).reconstruction_error(X)
    # the clean rows fit better, the strange ones stand out more
    assert np.median(trimmed[20:]) < np.median(plain[20:])
    assert np.median(trimmed[:20]) / np.median(trimmed[20:]) > np.median(
        plain[:20]) / np.median(plain[20:])
