"""Tests for aecli.nn.network: the whole network's gradient, tied weights, layout, persistence."""

from __future__ import annotations

import numpy as np
import pytest

from aecli.nn import ActivationKind, LayerSpec, Network, SoftmaxGroups, autoencoder_specs

SPARSITY, WEIGHT_DECAY = 0.05, 0.01
KINKED = {"relu", "leaky_relu", "elu"}


def _network(kind, tied, dropout=0.0, dtype=np.float64, seed=0):
    specs = autoencoder_specs(5, (4, 3), 2, kind, kind, "linear", tied)
    return Network(specs, dtype=dtype, rng=np.random.default_rng(seed), dropout=dropout)


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
@pytest.mark.parametrize("kind", list(ActivationKind))
def test_whole_network_gradient_matches_central_differences(
    kind, tied, numerical_grad, assert_grad_close
):
    """The gradient left in ``grad`` is that of the objective (MSE + L1 on the code + L2 on the
    weights), through hidden layers, tied weights and dropout."""
    net = _network(kind, tied, dropout=0.3)
    data = np.random.default_rng(1)
    # Non-zero biases, so that the check covers db and no zero row lands exactly on a kink.
    net.theta[net.n_weights :] = data.normal(scale=0.5, size=net.theta.size - net.n_weights)
    x_in = data.normal(size=(7, 5))
    target = x_in + 0.1 * data.normal(size=(7, 5))  # a denoising target, distinct from the input

    def objective():
        # A fresh generator with the same seed draws the same dropout masks every call.
        return net.loss_and_grad(x_in, target, SPARSITY, WEIGHT_DECAY, np.random.default_rng(5))[1]

    objective()
    analytic = net.grad.copy()
    for i, layer in enumerate(net.layers):
        # Finite differences across a kink (relu, leaky_relu, elu at 0; |code| at 0) are wrong.
        if layer.activation.kind in KINKED or i == net.code_index:
            assert np.abs(layer.cache[1]).min() > 1e-4, f"layer {i} sits on a kink"
    assert net.dropouts and any((d.mask == 0).any() for d in net.dropouts.values())
    assert_grad_close(analytic, numerical_grad(objective, net.theta), rtol=1e-5)


def test_objective_is_the_mse_plus_both_penalties():
    net = _network("tanh", tied=False)
    x = np.random.default_rng(2).normal(size=(6, 5))
    rec, objective = net.loss_and_grad(x, x, SPARSITY, WEIGHT_DECAY)
    code = net.encode(x)
    w = net.theta[: net.n_weights]
    assert rec == pytest.approx(np.mean((net.decode(code) - x) ** 2), rel=1e-12)
    expected = rec + SPARSITY * np.abs(code).sum() / 6 + 0.5 * WEIGHT_DECAY * np.sum(w**2)
    assert objective == pytest.approx(expected, rel=1e-12)


def test_tied_decoder_uses_the_encoder_weights_transposed():
    tied = _network("elu", tied=True)
    untied = _network("elu", tied=False)
    assert tied.n_weights * 2 == untied.n_weights
    for spec, layer in zip(tied.specs, tied.layers, strict=True):
        if spec.tied_to is not None:
            encoder = tied.layers[spec.tied_to]
            assert np.shares_memory(layer.W, encoder.W)
            np.testing.assert_array_equal(layer.W, encoder.W.T)
    tied.theta[: tied.n_weights] += 1.0  # the optimizer's in-place update reaches both
    assert tied.specs[-1].tied_to == 0
    np.testing.assert_array_equal(tied.layers[-1].W, tied.layers[0].W.T)
    assert tied.layers[0].W[0, 0] == tied.theta[0]


def test_specs_mirror_the_encoder():
    specs = autoencoder_specs(64, (128, 32), 8, "relu", "linear", "sigmoid", tied=False)
    assert [(s.n_in, s.n_out) for s in specs] == [
        (64, 128), (128, 32), (32, 8), (8, 32), (32, 128), (128, 64)
    ]
    assert [s.activation for s in specs] == ["relu", "relu", "linear", "relu", "relu", "sigmoid"]
    net = Network(specs, rng=np.random.default_rng(0))
    assert net.code_index == 2
    assert net.encode(np.zeros((3, 64), dtype=np.float32)).shape == (3, 8)
    assert sorted(net.dropouts) == []


def test_dropout_only_on_hidden_layers_and_not_at_inference():
    net = _network("relu", tied=False, dropout=0.5)
    # Layers 0, 1 (encoder hidden) and 3, 4 (decoder hidden); not the code (2), not the output.
    assert sorted(net.dropouts) == [0, 1, 3, 4]
    x = np.random.default_rng(3).normal(size=(4, 5))
    np.testing.assert_array_equal(net.decode(net.encode(x)), net.decode(net.encode(x)))


def test_arrays_round_trip_into_a_fresh_network():
    net = _network("gelu", tied=True, seed=4)
    copy = Network(net.specs, dtype=np.float64)
    assert not copy.theta.any()
    assert {k: a.shape for k, a in net.arrays().items()} == copy.expected_shapes()
    copy.load_arrays(net.arrays())
    np.testing.assert_array_equal(copy.theta, net.theta)
    assert LayerSpec(**net.specs[-1].to_dict()) == net.specs[-1]


def test_a_network_with_categorical_columns_has_the_gradient_of_its_objective(
        numerical_grad, assert_grad_close):
    """Two numeric columns and two categorical ones (3 and 2 levels): softmax outputs,
    cross-entropy, through hidden layers and dropout."""
    groups = SoftmaxGroups(2, [3, 2])
    specs = autoencoder_specs(groups.width, (4,), 2, "tanh", "linear", "linear", False)
    net = Network(specs, dtype=np.float64, rng=np.random.default_rng(0), dropout=0.2,
                  groups=groups)
    data = np.random.default_rng(1)
    x = np.hstack([data.normal(size=(7, 2)), np.eye(3)[data.integers(0, 3, 7)],
                   np.eye(2)[data.integers(0, 2, 7)]])

    def objective():
        return net.loss_and_grad(x, x, SPARSITY, WEIGHT_DECAY, np.random.default_rng(5))[1]

    objective()
    assert_grad_close(net.grad.copy(), numerical_grad(objective, net.theta), rtol=1e-5)
    out = net.decode(net.encode(x))
    np.testing.assert_allclose(out[:, 2:5].sum(axis=1), 1.0)
    np.testing.assert_allclose(out[:, 5:].sum(axis=1), 1.0)
    np.testing.assert_allclose(net.reconstruction_errors(x), groups.row_errors(out, x),
                               rtol=1e-12)
