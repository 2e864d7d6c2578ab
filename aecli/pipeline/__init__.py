"""A trained model with its preparation, and what the commands do with one.

- :mod:`.bundle`: the model as users see it (preparation + autoencoder).
- :mod:`.train`, :mod:`.train_streamed`: fit one in memory, or reading a file anew per epoch.
- :mod:`.compare`: the autoencoder against PCA over k.
- :mod:`.apply`, :mod:`.score`: encode, reconstruct and score streams of batches.
- :mod:`.modelfile`: the ``.npz`` model file.
"""

from .bundle import ModelBundle

__all__ = ["ModelBundle"]
