"""The neural-network engine: activations, layers, losses, optimizers, all in NumPy."""

from .activations import ActivationKind, get_activation
from .layers import Dense, Dropout
from .losses import SoftmaxGroups, l1_penalty, mse
from .network import LayerSpec, Network, Workspace, autoencoder_specs
from .optimizers import MINIBATCH, OptimizerKind, make_optimizer

__all__ = [
    "MINIBATCH",
    "ActivationKind",
    "Dense",
    "Dropout",
    "LayerSpec",
    "Network",
    "SoftmaxGroups",
    "OptimizerKind",
    "Workspace",
    "autoencoder_specs",
    "get_activation",
    "l1_penalty",
    "make_optimizer",
    "mse",
]
