"""Array-only estimators with scikit-learn's contract: the autoencoder and exact PCA.

Arrays in, arrays out: no tables, no files, no printing. :mod:`.hyperparameters` declares the
autoencoder's settings once; :mod:`.checks` holds the argument and array checks they share.
"""

from .autoencoder import Autoencoder
from .hyperparameters import DType, Hyperparameters
from .pca import PCA

__all__ = ["PCA", "Autoencoder", "DType", "Hyperparameters"]
