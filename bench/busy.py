"""Training and PCA on a busy machine: the default BLAS thread choice against fixed thread counts.

A neighbour process (started and stopped here) multiplies 1000 x 1000 matrices with NumPy's
default threads for as long as the measurement lasts, as another job on a shared server would.
``Autoencoder.fit`` runs with aecli's default (threads chosen by timing the work,
:mod:`aecli.blas_threads`) and pinned to each fixed count from 1 to the machine's BLAS default,
alternating, idle and then beside the neighbour. The figure is the default's time over the
best fixed count's: how much the automatic choice costs against knowing the answer in advance.

PCA (fitted and applied, 100k x 256) is timed the same way. Two nets: the issue's table
(12 features, default hidden layers, batch 512), whose products are too small to gain much
from a second thread, and the wide net (784 features), which is ~1.4x faster on two threads
when idle and 2-3x slower on two when a neighbour is busy.
"""

from __future__ import annotations

import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from figures import Figure

from aecli import Autoencoder
from aecli.blas_threads import blas_threads, pinned
from aecli.estimators import PCA

NEIGHBOUR = """
import sys, numpy as np
a = np.random.default_rng(0).standard_normal((1000, 1000))
print("ready", flush=True)
while True:
    a @ a
"""


@contextmanager
def busy_neighbour():
    """A second process doing BLAS work until the block ends."""
    proc = subprocess.Popen([sys.executable, "-c", NEIGHBOUR], stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    try:
        proc.stdout.readline()  # numpy imported and the loop started
        time.sleep(0.5)
        yield
    finally:
        proc.kill()
        proc.wait()


@dataclass(frozen=True)
class Case:
    """A training job timed under each thread setting."""

    name: str
    features: int
    rows: int
    hidden: tuple[int, ...] | None  # None: aecli's default for the table
    latent: int
    batch_size: int
    epochs: int

    def data(self) -> np.ndarray:
        rng = np.random.default_rng(0)
        z = rng.standard_normal((self.rows, self.latent))
        X = np.tanh(z @ rng.standard_normal((self.latent, self.features)))
        return (X + 0.1 * rng.standard_normal(X.shape)).astype(np.float32)

    def fit_seconds(self, X: np.ndarray) -> float:
        extra = {} if self.hidden is None else {"hidden": self.hidden}
        model = Autoencoder(latent=self.latent, epochs=self.epochs, batch_size=self.batch_size,
                            patience=None, seed=0, **extra)
        started = time.perf_counter()
        model.fit(X)
        return time.perf_counter() - started


@dataclass(frozen=True)
class PCACase:
    """PCA fitted and applied (``compare-pca``'s reference) under each thread setting."""

    name: str
    features: int
    rows: int

    def data(self) -> np.ndarray:
        return np.random.default_rng(0).standard_normal((self.rows, self.features))

    def fit_seconds(self, X: np.ndarray) -> float:
        started = time.perf_counter()
        pca = PCA(n_components=8).fit(X)
        pca.inverse_transform(pca.transform(X))
        return time.perf_counter() - started


CASES = (
    Case("train table 50k x 12", 12, 50_000, None, 3, 512, 10),
    Case("train wide 784", 784, 8192, (256, 64), 16, 256, 3),
    PCACase("PCA 100k x 256", 256, 100_000),
)
QUICK_CASES = (
    Case("train table 10k x 12", 12, 10_000, None, 3, 512, 3),
    Case("train wide 784", 784, 2048, (256, 64), 16, 256, 1),
    PCACase("PCA 20k x 256", 256, 20_000),
)


def timings(case: Case | PCACase, X: np.ndarray, rounds: int) -> dict[int | None, float]:
    """Best seconds of ``rounds`` fits per setting (None: the default), interleaved so that a
    noisy spell hits every setting."""
    settings = [None, *range(1, blas_threads() + 1)]
    best = dict.fromkeys(settings, float("inf"))
    for _ in range(rounds):
        for setting in settings:
            with pinned(setting):
                best[setting] = min(best[setting], case.fit_seconds(X))
    return best


def measure(quick: bool, log) -> list[Figure]:
    """Default over best fixed thread count, idle and beside a busy neighbour, per case."""
    figures = []
    if blas_threads() < 2:
        log("  busy: one BLAS thread, nothing to choose")
        return figures
    for case in QUICK_CASES if quick else CASES:
        X = case.data()
        case.fit_seconds(X[:1000])  # warm-up
        for state, target in (("idle", 1.1), ("busy", 1.3)):
            if state == "busy":
                with busy_neighbour():
                    t = timings(case, X, 1 if quick else 3)
            else:
                t = timings(case, X, 1 if quick else 3)
            fixed = {k: v for k, v in t.items() if k is not None}
            best_fixed = min(fixed, key=fixed.get)
            note = ", ".join(f"{k} thr {v:.2f} s" for k, v in fixed.items())
            log(f"  {case.name} {state}: default {t[None]:.2f} s; {note}")
            figures.append(Figure(
                f"{case.name} {state}: default vs best --threads", t[None],
                fixed[best_fixed], "s", t[None] / fixed[best_fixed], target, at_least=False,
                note=f"best fixed: {best_fixed} thread(s); {note}",
            ))
    return figures
