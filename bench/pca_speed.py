"""``aecli.PCA.fit`` against scikit-learn's ``PCA.fit`` on the same float64 matrix.

scikit-learn picks its solver itself (``svd_solver="auto"``), as a user would leave it. Both
fits run in this process with the same BLAS threads, interleaved, best of a few.
"""

from __future__ import annotations

import numpy as np
from figures import Figure
from measure import best_time

from aecli.pca import PCA


def make_data(rows: int, features: int, seed: int = 0) -> np.ndarray:
    """Float64 rows with a decaying spectrum (a few strong directions, a long tail)."""
    rng = np.random.default_rng(seed)
    spectrum = 1.0 / np.arange(1, features + 1)  # (d,)
    basis = np.linalg.qr(rng.standard_normal((features, features)))[0]  # (d, d)
    X = (rng.standard_normal((rows, features)) * spectrum) @ basis.T
    return X + rng.uniform(-5, 5, features)


def measure(rows: int, features: int, repeat: int) -> list[Figure]:
    """aecli fit time / scikit-learn fit time, for 16 components and for all of them."""
    try:
        from sklearn.decomposition import PCA as SkPCA
    except ImportError:
        SkPCA = None
    X = make_data(rows, features)
    figures = []
    for k in (16, None):
        ours, theirs = float("inf"), None
        for _ in range(repeat):
            ours = min(ours, best_time(lambda k=k: PCA(n_components=k).fit(X), 1))
            if SkPCA is not None:
                t = best_time(lambda k=k: SkPCA(n_components=k).fit(X), 1)
                theirs = t if theirs is None else min(theirs, t)
        label = "all" if k is None else str(k)
        figures.append(Figure(
            f"PCA fit {rows:,} x {features}, {label} components: time vs sklearn", ours,
            theirs, "s", ours / theirs if theirs else None, 1.0, at_least=False,
            note="" if theirs else "scikit-learn not installed",
        ))
    return figures
