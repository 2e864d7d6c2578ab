"""``aecli.pca.PCA``, kept where it has always been: it lives in :mod:`aecli.estimators.pca`."""

from .estimators.pca import PCA

__all__ = ["PCA"]
