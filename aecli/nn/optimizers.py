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
    """Adam (Kingma & Ba), with the bias corrections folded into the step size."""

    def __init__(self, size, dtype, lr: float, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m = np.zeros(size, dtype=dtype)
        self.v = np.zeros(size, dtype=dtype)
        self.scratch = np.empty(size, dtype=dtype)
        self.t = 0

    def step(self, theta: np.ndarray, grad: np.ndarray) -> None:
        """Update ``theta`` in place."""
        self.t += 1
        m, v, s = self.m, self.v, self.scratch
        b1, b2 = self.beta1, self.beta2
        np.subtract(grad, m, out=s)  # m += (1-b1)(g-m) is m = b1 m + (1-b1) g in one pass
        s *= 1 - b1
        m += s
        np.multiply(grad, grad, out=s)
        s -= v
        s *= 1 - b2
        v += s
        c2 = math.sqrt(1 - b2**self.t)  # a Python float: np.float64 would upcast float32 ops
        step = self.lr * c2 / (1 - b1**self.t)
        np.sqrt(v, out=s)
        s += self.eps * c2
        np.divide(m, s, out=s)
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
