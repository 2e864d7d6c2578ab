"""aecli.estimators.hyperparameters: one declaration, and the choices made for the data."""

from __future__ import annotations

import inspect

import pytest

from aecli import Autoencoder
from aecli.estimators import Hyperparameters
from aecli.estimators.hyperparameters import (
    LBFGS_ITERATIONS,
    MAX_EPOCHS,
    MIN_EPOCHS,
    STEP_BUDGET,
    VALIDATION,
)
from aecli.nn import OptimizerKind


def test_the_estimator_signature_and_docstring_come_from_the_declaration():
    params = inspect.signature(Autoencoder).parameters
    assert list(params) == [f for f in Hyperparameters.__dataclass_fields__]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())
    assert Autoencoder().get_params() == {n: p.default for n, p in params.items()}
    for name in params:
        assert f"\n{name} : " in Autoencoder.__doc__
    with pytest.raises(TypeError, match="unexpected keyword argument 'epoch'"):
        Autoencoder(epoch=3)


@pytest.mark.parametrize(("rows", "batch", "epochs"), [
    (1800, 64, -(-STEP_BUDGET // -(-int(1800 * (1 - VALIDATION)) // 64))),  # curve: 87
    (10, 64, MAX_EPOCHS),  # a tiny table: the most epochs
    (10_000_000, 256, MIN_EPOCHS),  # a big one: the fewest
])
def test_the_epoch_budget_adapts_to_the_rows(rows, batch, epochs):
    p = Hyperparameters(batch_size=batch).resolved(rows)
    assert p.optimizer is OptimizerKind.ADAM and p.validation == VALIDATION
    assert p.epochs == epochs


def test_auto_is_lbfgs_for_a_linear_network_only():
    linear = Hyperparameters(hidden=(), activation="linear").resolved(500)
    assert linear.optimizer is OptimizerKind.LBFGS and linear.epochs == LBFGS_ITERATIONS
    assert linear.validation == 0.0  # nothing to stop early on: it stops when it converges
    deep_linear = Hyperparameters(hidden=(8,), activation="linear").resolved(500)
    assert deep_linear.optimizer is OptimizerKind.LBFGS
    assert Hyperparameters(hidden=()).resolved(500).optimizer is OptimizerKind.LBFGS
    assert Hyperparameters(hidden=(8,)).resolved(500).optimizer is OptimizerKind.ADAM
    streamed = Hyperparameters(hidden=(), activation="linear").resolved(500, streamed=True)
    assert streamed.optimizer is OptimizerKind.ADAM
    # what the user pins stays pinned
    pinned = Hyperparameters(optimizer="sgd", epochs=7, validation=0.3).resolved(500)
    assert (pinned.optimizer, pinned.epochs, pinned.validation) == (OptimizerKind.SGD, 7, 0.3)
