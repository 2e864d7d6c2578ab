"""Array-only estimators with scikit-learn's contract: the autoencoder and exact PCA.

Arrays in, arrays out: no tables, no files, no printing. :mod:`.hyperparameters` declares the
autoencoder's settings once; :mod:`.checks` holds the argument and array checks they share.
The anomaly score is computed in :mod:`.scoring` and, over a small table's ensemble, in
:mod:`.ensemble` (every command calls these through the estimator); :mod:`.finish` ends every
fit, in memory, streamed or on a cluster, and :mod:`.calibration` places the threshold.
"""

from .autoencoder import Autoencoder
from .hyperparameters import DType, Hyperparameters
from .pca import PCA

__all__ = ["PCA", "Autoencoder", "DType", "Hyperparameters"]
