"""Full-batch L-BFGS (aecli.nn.lbfgs) and the loop that runs it."""

from __future__ import annotations

import numpy as np
import pytest

from aecli.estimators import Hyperparameters
from aecli.nn import Network, autoencoder_specs
from aecli.nn.lbfgs import LBFGS
from aecli.nn.training import StopReason, train_full_batch


def test_lbfgs_finds_the_minimum_of_an_ill_conditioned_quadratic():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.normal(size=(20, 20)))
    A = Q @ np.diag(np.logspace(0, 3, 20)) @ Q.T  # condition number 1e3
    b = rng.normal(size=20)
    x = np.zeros(20)

    def objective():
        g = A @ x - b
        return 0.5 * float(x @ A @ x) - float(b @ x), g

    solver = LBFGS(x, objective)
    for _ in range(500):
        if not solver.step():
            break
    np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-5, atol=1e-6)


def test_lbfgs_solves_rosenbrock():
    x = np.array([-1.2, 1.0])

    def objective():
        a, b = x
        value = (1 - a) ** 2 + 100 * (b - a * a) ** 2
        grad = np.array([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)])
        return value, grad

    solver = LBFGS(x, objective)
    for _ in range(500):
        if not solver.step():
            break
    np.testing.assert_allclose(x, [1.0, 1.0], atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_linear_network_converges_to_pca_and_stays_in_its_dtype(dtype):
    rng = np.random.default_rng(1)
    X = (rng.normal(size=(300, 3)) @ rng.normal(size=(3, 8))
         + 0.1 * rng.normal(size=(300, 8))).astype(dtype)
    X -= X.mean(axis=0)
    net = Network(autoencoder_specs(8, (), 3, "linear", "linear", "linear", False), dtype=dtype,
                  rng=rng)
    settings = Hyperparameters(epochs=1000, patience=None).checked()
    result = train_full_batch(net, X, None, settings)
    assert result.stop_reason is StopReason.CONVERGED and len(result.loss_history) < 1000
    assert net.theta.dtype == dtype
    # PCA's error with 3 components: the smallest 5 eigenvalues of the covariance, per cell
    eig = np.linalg.eigvalsh(np.cov(X.astype(np.float64).T, bias=True))
    assert result.loss_history[-1] == pytest.approx(eig[:5].sum() / 8, rel=1e-4)


def test_lbfgs_is_refused_where_its_objective_is_not_deterministic():
    from aecli import Autoencoder
    from aecli.errors import InvalidParameterError

    X = np.random.default_rng(2).normal(size=(50, 4))
    for params in (dict(dropout=0.1), dict(noise=0.1)):
        with pytest.raises(InvalidParameterError, match="lbfgs"):
            Autoencoder(hidden=(), activation="linear", optimizer="lbfgs", **params).fit(X)
    # auto chooses adam there, and says so
    ae = Autoencoder(hidden=(), activation="linear", noise=0.1, epochs=2).fit(X)
    assert ae.optimizer_ == "adam"
