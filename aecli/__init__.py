"""aecli: dimensionality reduction with NumPy autoencoders.

>>> from aecli import Autoencoder
>>> # Autoencoder(latent=2).fit(X).transform(X)
"""

__version__ = "0.2.0"

from .errors import AecliError  # noqa: E402
from .estimators import Autoencoder  # noqa: E402

__all__ = ["AecliError", "Autoencoder", "__version__"]
