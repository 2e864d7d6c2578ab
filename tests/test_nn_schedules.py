"""Learning-rate schedules (aecli.nn.schedules) and the loop that follows them."""

from __future__ import annotations

import numpy as np
import pytest

from aecli.estimators import Hyperparameters
from aecli.nn import Network, autoencoder_specs, make_optimizer
from aecli.nn.schedules import ScheduleKind, lr_factor
from aecli.nn.training import train


@pytest.mark.parametrize(("kind", "start", "middle", "end"), [
    ("none", 1.0, 1.0, 1.0),
    ("cosine", 1.0, 0.5, 0.0),
    ("linear", 1.0, 0.5, 0.0),
    ("wsd", 0.001 / 0.021, 1.0, 0.0),
    ("onecycle", 1 / 25, None, 1e-4),
])
def test_each_schedule_starts_and_ends_where_its_literature_says(kind, start, middle, end):
    kind = ScheduleKind(kind)
    assert lr_factor(kind, 0.0) == pytest.approx(start)
    if middle is not None:
        assert lr_factor(kind, 0.5) == pytest.approx(middle)
    assert lr_factor(kind, 1.0) == pytest.approx(end, abs=1e-12)
    # outside [0, 1] is clipped, and every factor is in (0, 1] before the end
    assert lr_factor(kind, 2.0) == lr_factor(kind, 1.0)
    assert all(0 < lr_factor(kind, p) <= 1 for p in np.linspace(0, 0.99, 100))


def test_onecycle_peaks_at_the_end_of_its_warm_up():
    assert lr_factor(ScheduleKind.ONECYCLE, 0.3) == pytest.approx(1.0)
    assert lr_factor(ScheduleKind.ONECYCLE, 0.2) < 1.0 > lr_factor(ScheduleKind.ONECYCLE, 0.4)


class _Recorder:
    """An optimizer that records the learning rate of every step it is asked to take."""

    def __init__(self, inner):
        self.inner, self.rates = inner, []

    @property
    def lr(self):
        return self.inner.lr

    @lr.setter
    def lr(self, value):
        self.inner.lr = value

    def step(self, theta, grad):
        self.rates.append(self.inner.lr)
        self.inner.step(theta, grad)


@pytest.mark.parametrize("kind", ["cosine", "wsd", "none"])
def test_the_loop_follows_the_schedule_over_the_whole_budget(kind):
    rng = np.random.default_rng(0)
    net = Network(autoencoder_specs(5, (4,), 2, "tanh", "linear", "linear", False), rng=rng)
    opt = _Recorder(make_optimizer("adam", net.theta.size, net.dtype, 1.0))
    X = rng.normal(size=(100, 5)).astype(np.float32)
    settings = Hyperparameters(epochs=6, batch_size=10, lr=0.01, schedule=kind,
                               patience=None).checked()
    train(net, opt, X, None, settings, rng)
    rates = np.array(opt.rates)
    assert len(rates) == 60
    expected = [0.01 * lr_factor(ScheduleKind(kind), i / 60) for i in range(60)]
    np.testing.assert_allclose(rates, expected, rtol=1e-12)
    if kind != "none":
        assert rates[-1] < 0.002 and rates.max() == pytest.approx(0.01, rel=1e-3)
