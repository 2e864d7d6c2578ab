"""PNG pictures of training, codes and scores, drawn with matplotlib when it is installed
(``aecli[plot]``).

Each picture is written atomically. Collectors sit in a stream of output batches and keep a
bounded sample of what they need, so a plot does not make memory grow with rows.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..errors import AecliError
from ..io import atomic_write

MAX_POINTS = 50_000


def require_matplotlib():
    """Import matplotlib with a headless backend, or explain how to install it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise AecliError("drawing a picture needs matplotlib, which is not installed",
                         hint="Install it with: pip install 'aecli[plot]'") from None
    return plt


def _save(fig, path) -> None:
    plt = require_matplotlib()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def loss_plot(path, summary: dict) -> None:
    """Train and validation loss per epoch (log scale), with the best epoch marked."""
    plt = require_matplotlib()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    epochs = np.arange(1, len(summary["loss_history"]) + 1)
    ax.plot(epochs, summary["loss_history"], label="train")
    if summary.get("val_loss_history"):
        ax.plot(epochs, summary["val_loss_history"], label="validation")
    if summary.get("pca_mse"):
        ax.axhline(summary["pca_mse"], color="grey", ls="--", label=f"PCA (k={summary['latent']})")
    if summary.get("best_epoch"):
        ax.axvline(summary["best_epoch"], color="grey", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("reconstruction MSE (scaled)")
    ax.set_title(f"aecli train: {summary['architecture']}")
    ax.legend()
    _save(fig, path)


def compare_plot(path, rows: list[dict], suggestion: dict | None) -> None:
    """Held-out error against k for PCA and the autoencoder."""
    plt = require_matplotlib()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ks = [r["k"] for r in rows]
    ax.plot(ks, [r["pca_mse"] for r in rows], "o-", label="PCA")
    ax.plot(ks, [r["ae_mse"] for r in rows], "s-", label="autoencoder")
    if suggestion:
        ax.axvline(suggestion["k"], color="grey", ls=":", label=f"suggested k={suggestion['k']}")
    ax.set_xlabel("k (code size)")
    ax.set_ylabel("held-out reconstruction MSE (scaled)")
    ax.set_xticks(ks)
    ax.set_title("aecli compare-pca")
    ax.legend()
    _save(fig, path)


class _Reservoir:
    """A uniform sample of at most ``size`` items from a stream (seeded: same input, same
    picture)."""

    def __init__(self, size: int = MAX_POINTS, seed: int = 0):
        self.size, self.seen, self.rng = size, 0, np.random.default_rng(seed)
        self.items: list = []

    def add_many(self, rows: list) -> None:
        for item in rows:
            self.seen += 1
            if len(self.items) < self.size:
                self.items.append(item)
            else:
                j = int(self.rng.integers(self.seen))
                if j < self.size:
                    self.items[j] = item


class CodeCollector:
    """Pass output batches through, keeping (z1, z2, colour) for a scatter plot."""

    def __init__(self, batches, color_by: str | None):
        require_matplotlib()
        self.batches, self.color_by = batches, color_by  # a column of every batch
        self.sample = _Reservoir()
        self.colors: pa.Array | None = None

    def __iter__(self):
        for batch in self.batches:
            z1 = batch.column("z1").to_numpy()
            z2 = batch.column("z2").to_numpy() if "z2" in batch.schema.names else np.zeros_like(z1)
            c = batch.column(self.color_by).to_pylist() if self.color_by else [None] * len(z1)
            self.sample.add_many(list(zip(z1.tolist(), z2.tolist(), c, strict=True)))
            yield batch

    def save(self, path) -> None:
        """Draw the scatter of the codes sampled."""
        plt = require_matplotlib()
        fig, ax = plt.subplots(figsize=(6, 5))
        items = self.sample.items
        z1 = np.array([i[0] for i in items])
        z2 = np.array([i[1] for i in items])
        if self.color_by:
            # Numeric-looking columns are read as floats: a label 3 should not read "3.0".
            labels = [int(x) if isinstance(x, float) and x.is_integer() else x
                      for x in (i[2] for i in items)]
            uniq = sorted({str(x) for x in labels}, key=lambda u: (len(u), u))
            if len(uniq) <= 20:
                # one colour each: the default cycle has 10, tab20 has 20
                palette = plt.get_cmap("tab10" if len(uniq) <= 10 else "tab20").colors
                for u, colour in zip(uniq, palette, strict=False):
                    m = np.array([str(x) == u for x in labels])
                    ax.scatter(z1[m], z2[m], s=6, label=u, alpha=0.7, color=colour)
                ax.legend(title=self.color_by, markerscale=2, fontsize=7, loc="best")
            else:
                vals = np.array([float(x) if x is not None else np.nan for x in labels])
                sc = ax.scatter(z1, z2, s=6, c=vals, cmap="viridis", alpha=0.7)
                fig.colorbar(sc, ax=ax, label=self.color_by)
        else:
            ax.scatter(z1, z2, s=6, alpha=0.6)
        ax.set_xlabel("z1")
        ax.set_ylabel("z2")
        ax.set_title(f"aecli encode: {self.sample.seen} rows"
                     + (f" ({len(items)} shown)" if len(items) < self.sample.seen else ""))
        _save(fig, path)


class ErrorCollector:
    """Pass score batches through, keeping a sample of scores for a histogram."""

    def __init__(self, batches):
        require_matplotlib()
        self.batches = batches
        self.sample = _Reservoir(200_000)

    def __iter__(self):
        for batch in self.batches:
            self.sample.add_many(batch.column("score").to_numpy().tolist())
            yield batch

    def save(self, path, threshold: float) -> None:
        """Histogram of anomaly scores with the threshold marked."""
        plt = require_matplotlib()
        fig, ax = plt.subplots(figsize=(6.4, 4))
        errors = np.asarray(self.sample.items)
        positive = errors[errors > 0]
        if positive.size and positive.max() / max(positive.min(), 1e-300) > 100:
            bins = np.logspace(np.log10(positive.min()), np.log10(positive.max()), 60)
            ax.set_xscale("log")
        else:
            bins = 60
        ax.hist(errors, bins=bins, color="tab:blue", alpha=0.8)
        ax.axvline(threshold, color="tab:red", ls="--", label=f"threshold {threshold:.3g}")
        ax.set_xlabel("anomaly score (scaled MSE + code distance)")
        ax.set_ylabel("rows")
        ax.set_title(f"aecli score: {int((errors > threshold).sum())} of {errors.size} over")
        ax.legend()
        _save(fig, path)
