"""Full-batch L-BFGS over the network's flat parameter vector.

For a smooth, deterministic objective — the linear autoencoder above all, whose optimum is
PCA's subspace — quasi-Newton steps on the whole training set reach the minimum in a few
hundred passes where Adam's mini-batch noise leaves it percent above (Le et al. 2011, "On
optimization methods for deep learning"; scikit-learn's MLP offers the same solver).

Two-loop recursion over the last ``HISTORY`` steps (Nocedal & Wright, algorithm 7.4) with a
backtracking line search on the Armijo condition; a pair whose curvature ``y·s`` is not
positive is skipped, which keeps the inverse-Hessian estimate positive definite.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np

HISTORY = 10
ARMIJO = 1e-4  # sufficient decrease: f(x + a p) <= f(x) + ARMIJO * a * g·p
SHRINK = 0.5  # step factor per backtrack
MAX_BACKTRACKS = 30


class LBFGS:
    """Minimise ``objective(theta)`` in place; one :meth:`step` is one quasi-Newton iteration.

    Parameters
    ----------
    theta : ndarray
        The parameters, updated in place.
    objective : callable
        ``objective()`` evaluates the function at the current ``theta`` and returns
        ``(value, gradient)``; the gradient array may be reused by the next call.
    """

    def __init__(self, theta: np.ndarray, objective: Callable[[], tuple[float, np.ndarray]]):
        self.theta, self.objective = theta, objective
        self.pairs: deque[tuple[np.ndarray, np.ndarray, float]] = deque(maxlen=HISTORY)
        self.value, grad = objective()
        self.grad = grad.astype(np.float64)  # the recursion in float64 whatever the dtype

    def direction(self) -> np.ndarray:
        """``-H g`` for the current inverse-Hessian estimate ``H`` (two-loop recursion)."""
        q = -self.grad
        alphas = []
        for s, y, rho in reversed(self.pairs):
            a = rho * float(s @ q)
            q -= a * y
            alphas.append(a)
        if self.pairs:
            s, y, _ = self.pairs[-1]
            q *= float(s @ y) / float(y @ y)  # the usual scaling of the initial estimate
        else:
            q /= max(1.0, float(np.linalg.norm(q)))  # a first step of at most unit length
        for (s, y, rho), a in zip(self.pairs, reversed(alphas), strict=True):
            q += (a - rho * float(y @ q)) * s
        return q

    def step(self) -> bool:
        """One iteration: a direction, a line search along it, and the history updated.

        Returns False when no step decreases the objective (a minimum, to the precision of
        the arithmetic), leaving ``theta`` where it was.
        """
        p = self.direction()
        slope = float(self.grad @ p)
        if slope >= 0:  # not a descent direction: forget the curvature and go downhill
            self.pairs.clear()
            p, slope = -self.grad, -float(self.grad @ self.grad)
        start = self.theta.astype(np.float64)
        a = 1.0
        for _ in range(MAX_BACKTRACKS):
            self.theta[...] = start + a * p
            value, grad = self.objective()
            if np.isfinite(value) and value <= self.value + ARMIJO * a * slope:
                break
            a *= SHRINK
        else:
            self.theta[...] = start
            return False
        grad = grad.astype(np.float64)
        s = self.theta.astype(np.float64) - start
        y = grad - self.grad
        curvature = float(y @ s)
        if curvature > 1e-12 * float(y @ y):
            self.pairs.append((s, y, 1.0 / curvature))
        self.value, self.grad = value, grad
        return True
