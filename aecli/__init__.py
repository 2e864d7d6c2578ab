"""aecli: dimensionality reduction with NumPy autoencoders."""

__version__ = "0.1.0"
