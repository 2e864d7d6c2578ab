"""A trained model with its preparation, and what the commands do with one.

- :mod:`.bundle`: the model as users see it (preparation + autoencoder).
- :mod:`.sources`, :mod:`.sinks`: where rows come from (a table, a stream, a model's input,
  read with the data options) and where results go.
- :mod:`.train`, :mod:`.train_streamed`: fit one in memory, or reading a file anew per epoch.
- :mod:`.compare`: the autoencoder against PCA over k.
- :mod:`.apply`, :mod:`.score`: encode, reconstruct and score streams of batches.
- :mod:`.cluster_apply`, :mod:`.train_cluster`: the same on a Dask cluster (training's
  partition-side work in :mod:`.cluster_survey` and :mod:`.cluster_workers`).
- :mod:`.modelfile`: the ``.npz`` model file.

The names below are the vocabulary the commands speak, re-exported so that the command line
talks to this package (and :mod:`aecli.report`, :mod:`aecli.errors`) only.
"""

from ..blas_threads import pinned, scope
from ..estimators import Hyperparameters
from ..estimators.hyperparameters import MAX_WIDTH, check_latent_below
from ..io import BadValues, Format
from ..nn.training import EpochReport
from ..preprocessing import DEFAULT_MAX_LEVELS, MissingPolicy, Roles, ScalerKind
from .bundle import ModelBundle

__all__ = [
    "DEFAULT_MAX_LEVELS",
    "MAX_WIDTH",
    "BadValues",
    "EpochReport",
    "Format",
    "Hyperparameters",
    "MissingPolicy",
    "ModelBundle",
    "Roles",
    "ScalerKind",
    "check_latent_below",
    "pinned",
    "scope",
]
