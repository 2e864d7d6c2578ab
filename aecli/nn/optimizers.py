"""Optimizers over one flat parameter vector, updated in place.

Every optimizer's ``step(theta, grad)`` does a fixed handful of vectorised operations on the
whole network, whatever its depth, using preallocated state and scratch buffers.
"""

from __future__ import annotations

import math
from enum import StrEnum

import numpy as np


class OptimizerKind(StrEnum):
    """The optimizers aecli knows, by their command-line names.

    ``lbfgs`` is full-batch (:mod:`aecli.nn.lbfgs`, run by ``training.train_full_batch``);
    ``auto`` is resolved by the estimator: lbfgs for a linear network, adam otherwise.
    """

    AUTO = "auto"
    ADAM = "adam"
    SGD = "sgd"
    MOMENTUM = "momentum"
    RMSPROP = "rmsprop"
    LBFGS = "lbfgs"


class SGD:
    """Plain gradient descent: ``theta -= lr * grad``."""

    def __init__(self, size: int, dtype, lr: float):
        self.lr = lr
        self.scratch = np.empty(size, dtype=dtype)

    def step(self, theta: np.ndarray, grad: np.ndarray) -> None:
        """Update ``theta`` in place."""
        np.multiply(grad, self.lr, out=self.scratch)
        theta -= self.scratch


class Momentum:
    """Heavy-ball momentum (PyTorch's form), optionally Nesterov's look-ahead variant."""

    def __init__(self, size: int, dtype, lr: float, momentum: float = 0.9, nesterov=False):
        self.lr, self.mu, self.nesterov = lr, momentum, nesterov
        self.velocity = np.zeros(size, dtype=dtype)
        self.scratch = np.empty(size, dtype=dtype)

    def step(self, theta: np.ndarray, grad: np.ndarray) -> None:
        """Update ``theta`` in place."""
        v, s = self.velocity, self.scratch
        v *= self.mu
        v += grad
        if self.nesterov:
            np.multiply(v, self.mu, out=s)
            s += grad
        else:
            s[...] = v
        s *= self.lr
        theta -= s


class RMSprop:
    """Divide the step by a running root mean square of recent gradients."""

    def __init__(self, size: int, dtype, lr: float, rho: float = 0.9, eps: float = 1e-8):
        self.lr, self.rho, self.eps = lr, rho, eps
        self.square = np.zeros(size, dtype=dtype)
        self.scratch = np.empty(size, dtype=dtype)

    def step(self, theta: np.ndarray, grad: np.ndarray) -> None:
        """Update ``theta`` in place."""
        sq, s = self.square, self.scratch
        sq *= self.rho
        np.multiply(grad, grad, out=s)
        s *= 1 - self.rho
        sq += s
        np.sqrt(sq, out=s)
        s += self.eps
        np.divide(grad, s, out=s)
        s *= self.lr
        theta -= s


class Adam:
    """Adam (Kingma & Ba), in ten passes over the parameters rather than twelve.

    The moments are kept scaled: ``u = m / (1 - beta1)`` and ``w = v / (1 - beta2)``, so that
    each update is ``u = beta1 u + g`` and ``w = beta2 w + g²`` (two and three passes instead of
    three and four); the scales and the bias corrections are folded into the step size and
    epsilon, which are Python floats computed once per step. The result is Adam's update up
    to rounding.
    """

    def __init__(self, size, dtype, lr: float, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.u = np.zeros(size, dtype=dtype)  # m / (1 - beta1)
        self.w = np.zeros(size, dtype=dtype)  # v / (1 - beta2)
        self.scratch = np.empty(size, dtype=dtype)
        self.t = 0

    def step(self, theta: np.ndarray, grad: np.ndarray) -> None:
        """Update ``theta`` in place."""
        self.t += 1
        u, w, s = self.u, self.w, self.scratch
        b1, b2 = self.beta1, self.beta2
        u *= b1
        u += grad
        w *= b2
        np.multiply(grad, grad, out=s)
        w += s
        # Adam: lr * m_hat / (sqrt(v_hat) + eps), with m_hat = u (1-b1) / (1-b1^t) and
        # sqrt(v_hat) = sqrt(w) * k, k = sqrt((1-b2) / (1-b2^t)); Python floats, so that
        # float32 arrays stay float32.
        k = math.sqrt((1 - b2) / (1 - b2**self.t))
        step = self.lr * (1 - b1) / ((1 - b1**self.t) * k)
        np.sqrt(w, out=s)
        s += self.eps / k
        np.divide(u, s, out=s)
        s *= step
        theta -= s


# The optimizers that take one mini-batch's gradient at a time (make_optimizer builds them).
MINIBATCH = (OptimizerKind.ADAM, OptimizerKind.SGD, OptimizerKind.MOMENTUM,
             OptimizerKind.RMSPROP)


def make_optimizer(kind: str | OptimizerKind, size: int, dtype, lr: float, nesterov=False):
    """Create the optimizer ``kind`` for a parameter vector of ``size`` elements.

    ``nesterov`` applies to ``"momentum"`` only.
    """
    kind = OptimizerKind(kind)
    if kind in (OptimizerKind.AUTO, OptimizerKind.LBFGS):
        raise ValueError(f"{kind.value!r} is not a mini-batch optimizer")
    if kind is OptimizerKind.ADAM:
        return Adam(size, dtype, lr)
    if kind is OptimizerKind.SGD:
        return SGD(size, dtype, lr)
    if kind is OptimizerKind.MOMENTUM:
        return Momentum(size, dtype, lr, nesterov=nesterov)
    return RMSprop(size, dtype, lr)
