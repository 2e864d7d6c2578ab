"""Tests for aecli.nn.optimizers: each reduces a quadratic and matches the textbook update."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aecli.nn import MINIBATCH, OptimizerKind, make_optimizer
from aecli.nn.optimizers import Adam

# f(theta) = 1/2 sum a_i (theta_i - c_i)^2: an ill-conditioned bowl with its minimum at c.
A = np.array([0.5, 1.0, 2.0, 4.0, 8.0])
C = np.array([1.0, -2.0, 0.5, 3.0, -1.0])


def _f(theta):
    return 0.5 * float(np.sum(A * (theta - C) ** 2))


def _grad(theta):
    return A * (theta - C)


CASES = [  # (kind, nesterov, lr, steps)
    ("adam", False, 0.1, 300),
    ("sgd", False, 0.1, 300),
    ("momentum", False, 0.02, 300),
    ("momentum", True, 0.02, 300),
    ("rmsprop", False, 0.01, 500),
]


@pytest.mark.parametrize(("kind", "nesterov", "lr", "steps"), CASES)
def test_each_optimizer_minimises_a_quadratic(kind, nesterov, lr, steps):
    theta = np.zeros(5)
    opt = make_optimizer(kind, 5, np.float64, lr, nesterov=nesterov)
    start = _f(theta)
    for _ in range(steps):
        opt.step(theta, _grad(theta))
    assert _f(theta) < 1e-3 * start
    np.testing.assert_allclose(theta, C, atol=0.05)


def test_every_kind_has_a_case():
    assert {k for k, *_ in CASES} == {k.value for k in MINIBATCH}
    assert set(OptimizerKind) - set(MINIBATCH) == {OptimizerKind.AUTO, OptimizerKind.LBFGS}
    for kind in ("auto", "lbfgs"):  # full batch, or resolved by the estimator
        with pytest.raises(ValueError, match="not a mini-batch optimizer"):
            make_optimizer(kind, 3, np.float64, 0.1)


def test_unknown_optimizer_raises_value_error():
    with pytest.raises(ValueError, match="bogus"):
        make_optimizer("bogus", 3, np.float64, 0.1)


# -- the textbook updates, written out plainly ------------------------------------------------
def _adam_reference(theta, grads, lr, b1=0.9, b2=0.999, eps=1e-8):
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    return theta


def _momentum_reference(theta, grads, lr, mu=0.9, nesterov=False):
    v = np.zeros_like(theta)
    for g in grads:
        v = mu * v + g
        theta = theta - lr * (g + mu * v if nesterov else v)
    return theta


def _rmsprop_reference(theta, grads, lr, rho=0.9, eps=1e-8):
    sq = np.zeros_like(theta)
    for g in grads:
        sq = rho * sq + (1 - rho) * g * g
        theta = theta - lr * g / (np.sqrt(sq) + eps)
    return theta


def _sgd_reference(theta, grads, lr):
    for g in grads:
        theta = theta - lr * g
    return theta


def _run(opt, theta, grads):
    theta = theta.copy()
    for g in grads:
        opt.step(theta, g)
    return theta


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    # Gradients over several orders of magnitude, some tiny enough for eps to matter.
    grads = [rng.normal(size=8) * np.logspace(-9, 2, 8) for _ in range(6)]
    return rng.normal(size=8), grads


def test_adam_matches_the_textbook_formulas(problem):
    theta, grads = problem
    got = _run(make_optimizer("adam", 8, np.float64, 0.01), theta, grads)
    np.testing.assert_allclose(got, _adam_reference(theta, grads, 0.01), rtol=1e-6, atol=0)
    # A large eps, where folding it into the bias-corrected step must be exact too.
    got = _run(Adam(8, np.float64, 0.01, eps=1e-3), theta, grads)
    np.testing.assert_allclose(
        got, _adam_reference(theta, grads, 0.01, eps=1e-3), rtol=1e-6, atol=0
    )
    assert not np.allclose(got, theta, rtol=1e-9)  # it moved


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_matches_the_reference(problem, nesterov):
    theta, grads = problem
    got = _run(make_optimizer("momentum", 8, np.float64, 0.01, nesterov), theta, grads)
    expected = _momentum_reference(theta, grads, 0.01, nesterov=nesterov)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)


def test_nesterov_differs_from_heavy_ball(problem):
    theta, grads = problem
    plain = _run(make_optimizer("momentum", 8, np.float64, 0.01, False), theta, grads)
    ahead = _run(make_optimizer("momentum", 8, np.float64, 0.01, True), theta, grads)
    assert not np.allclose(plain, ahead)


def test_rmsprop_and_sgd_match_the_reference(problem):
    theta, grads = problem
    got = _run(make_optimizer("rmsprop", 8, np.float64, 0.01), theta, grads)
    np.testing.assert_allclose(got, _rmsprop_reference(theta, grads, 0.01), rtol=1e-12, atol=0)
    got = _run(make_optimizer("sgd", 8, np.float64, 0.01), theta, grads)
    np.testing.assert_allclose(got, _sgd_reference(theta, grads, 0.01), rtol=1e-12, atol=0)


@pytest.mark.parametrize("kind", MINIBATCH)
def test_float32_state_stays_float32(kind):
    theta = np.ones(4, dtype=np.float32)
    opt = make_optimizer(kind, 4, np.float32, 0.1, nesterov=True)
    for _ in range(3):
        opt.step(theta, np.full(4, 0.5, dtype=np.float32))
    assert theta.dtype == np.float32
    state = [a for a in vars(opt).values() if isinstance(a, np.ndarray)]
    assert state and all(a.dtype == np.float32 for a in state)
    assert math.isfinite(float(theta.sum())) and (theta < 1).all()
