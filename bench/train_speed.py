"""Training throughput: aecli's Autoencoder against PyTorch and against the BLAS ceiling.

Both sides train the same network (ELU hidden layers, linear code and output, MSE, Adam,
float32, batch 256) on the same data with the same number of threads, and each epoch does
the same work: shuffle the rows, gather them into batches, and for each batch a forward pass,
a backward pass and an Adam step, adding up the epoch's loss. The first epoch of every run is
a warm-up and is left out on both sides; the figure is the fastest remaining epoch.

The BLAS ceiling is the FLOP rate of the epoch's matrix products alone (forward ``x @ W``,
backward ``x.T @ dz`` and ``dz @ W.T`` for every layer but the first, which needs no ``dx``),
timed with NumPy into preallocated outputs. aecli's FLOP rate is the same FLOP count divided
by its epoch time, so their ratio is the share of the machine's matrix speed that training
keeps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from figures import Figure

from aecli import Autoencoder

BATCH = 256
LR = 1e-3


@dataclass(frozen=True)
class Net:
    """A benchmarked architecture."""

    name: str
    features: int
    hidden: tuple[int, ...]
    latent: int
    target_vs_torch: float
    target_vs_blas: float | None

    def layer_sizes(self) -> list[tuple[int, int]]:
        """(n_in, n_out) of every dense layer, encoder then mirrored decoder."""
        sizes = [self.features, *self.hidden, self.latent]
        enc = list(zip(sizes[:-1], sizes[1:], strict=True))
        return enc + [(o, i) for i, o in reversed(enc)]

    def flops_per_batch(self, b: int = BATCH) -> int:
        """FLOPs of one batch's matrix products: 2*b*n_in*n_out each, three per layer but
        two for the first (its dx is never needed)."""
        return sum((2 if i == 0 else 3) * 2 * b * n_in * n_out
                   for i, (n_in, n_out) in enumerate(self.layer_sizes()))


NETS = (
    Net("small", 64, (128, 32), 8, target_vs_torch=2.0, target_vs_blas=None),
    Net("wide", 784, (256, 64), 16, target_vs_torch=1.0, target_vs_blas=0.60),
)


def make_data(net: Net, rows: int, seed: int = 0) -> np.ndarray:
    """Standardised float32 rows on a curved low-dimensional manifold plus noise."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((rows, net.latent))
    X = np.tanh(z @ rng.standard_normal((net.latent, net.features)) / np.sqrt(net.latent))
    X += 0.1 * rng.standard_normal(X.shape)
    X -= X.mean(axis=0)
    X /= X.std(axis=0)
    return X.astype(np.float32)


def aecli_epochs(net: Net, X: np.ndarray, epochs: int) -> list[float]:
    """Seconds of each epoch of ``Autoencoder.fit``, as its callback reports them."""
    seconds: list[float] = []
    model = Autoencoder(latent=net.latent, hidden=net.hidden, activation="elu", epochs=epochs,
                        batch_size=BATCH, lr=LR, optimizer="adam", validation=0.0,
                        dtype="float32", seed=0)
    model.fit(X, callback=lambda report: seconds.append(report.seconds))
    return seconds


def torch_epochs(net: Net, X: np.ndarray, epochs: int, threads: int) -> list[float] | None:
    """Seconds of each epoch of the same training in PyTorch, or None without PyTorch."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    layers: list = []
    sizes = net.layer_sizes()
    for i, (n_in, n_out) in enumerate(sizes):
        layers.append(torch.nn.Linear(n_in, n_out))
        if i not in (len(sizes) // 2 - 1, len(sizes) - 1):  # linear code and output
            layers.append(torch.nn.ELU())
    model = torch.nn.Sequential(*layers)
    # foreach=True: PyTorch's multi-tensor Adam, its fastest on CPU for nets this size
    # (see bench/README.md); the default loops over the parameters one at a time.
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, foreach=True)
    loss_fn = torch.nn.MSELoss()
    data = torch.from_numpy(X)
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        shuffled = data[torch.randperm(len(data))]  # (n, d)
        total = torch.zeros(())
        for xb in shuffled.split(BATCH):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), xb)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(xb)
        float(total)  # the epoch's loss, as aecli reports it
        seconds.append(time.perf_counter() - started)
    return seconds


def blas_step(net: Net):
    """A function that runs one batch's matrix products (see the module docstring), NumPy
    alone, into preallocated outputs."""
    rng = np.random.default_rng(1)
    f32 = np.float32
    products = []
    for i, (n_in, n_out) in enumerate(net.layer_sizes()):
        x = rng.standard_normal((BATCH, n_in), dtype=f32)
        W = rng.standard_normal((n_in, n_out), dtype=f32)
        dz = rng.standard_normal((BATCH, n_out), dtype=f32)
        products.append((x, W, np.empty((BATCH, n_out), f32)))  # x @ W
        products.append((x.T, dz, np.empty((n_in, n_out), f32)))  # x.T @ dz
        if i > 0:
            products.append((dz, W.T, np.empty((BATCH, n_in), f32)))  # dz @ W.T

    def step():
        for a, b, out in products:
            np.matmul(a, b, out=out)

    return step


def blas_batch_seconds(step, batches: int, repeat: int) -> float:
    """Fastest time per batch of ``repeat`` epochs of ``batches`` steps, after a warm-up."""
    step()
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(batches):
            step()
        best = min(best, (time.perf_counter() - started) / batches)
    return best


def measure(rows: dict[str, int], epochs: int, rounds: int, threads: int) -> list[Figure]:
    """Figures for every net: aecli/torch samples per second and aecli's share of BLAS."""
    figures = []
    for net in NETS:
        X = make_data(net, rows[net.name])
        n = len(X)
        step = blas_step(net)
        ours, theirs, blas = [], [], []
        for _ in range(rounds):  # interleaved, so that a noisy spell hits every side
            ours += aecli_epochs(net, X, epochs)[1:]
            t = torch_epochs(net, X, epochs, threads)
            theirs += t[1:] if t is not None else []
            blas.append(blas_batch_seconds(step, n // BATCH, epochs - 1))
        ours_rate = n / min(ours)
        theirs_rate = n / min(theirs) if theirs else None
        figures.append(Figure(
            f"train {net.name} net: samples/s vs torch", ours_rate, theirs_rate, "samples/s",
            ours_rate / theirs_rate if theirs_rate else None, net.target_vs_torch,
            note="" if theirs_rate else "PyTorch not installed: pip install torch",
        ))
        achieved = net.flops_per_batch() * (n / BATCH) / min(ours) / 1e9
        ceiling = net.flops_per_batch() / min(blas) / 1e9
        figures.append(Figure(
            f"train {net.name} net: share of BLAS ceiling", achieved, ceiling, "GFLOP/s",
            achieved / ceiling, net.target_vs_blas, percent=True,
        ))
    return figures


def torch_fit_seconds(net: Net, X: np.ndarray, epochs: int, threads: int) -> float | None:
    """Wall time of the PyTorch side end to end: building the model and optimizer, then
    ``epochs`` epochs (see :func:`torch_epochs`); None without PyTorch."""
    started = time.perf_counter()
    seconds = torch_epochs(net, X, epochs, threads)
    return None if seconds is None else time.perf_counter() - started


def aecli_fit_seconds(net: Net, X: np.ndarray, epochs: int) -> float:
    """Wall time of ``Autoencoder.fit`` end to end: checking the input, building the network,
    ``epochs`` epochs, and the pass over the training rows that calibrates the threshold."""
    model = Autoencoder(latent=net.latent, hidden=net.hidden, activation="elu", epochs=epochs,
                        batch_size=BATCH, lr=LR, optimizer="adam", validation=0.0,
                        dtype="float32", seed=0)
    started = time.perf_counter()
    model.fit(X)
    return time.perf_counter() - started


FIT_TARGETS = {"small": 2.5, "wide": 1.2}


def fit_figures(rows: dict[str, int], rounds: int, threads: int) -> list[Figure]:
    """Per net: ``fit`` end to end (2 epochs) against PyTorch's same training, as a speed
    ratio (PyTorch's seconds over aecli's)."""
    figures = []
    for net in NETS:
        X = make_data(net, rows[net.name])
        aecli_fit_seconds(net, X[:512], 1)  # warm-up: imports, first allocations
        ours, theirs = [], []
        for _ in range(rounds):
            ours.append(aecli_fit_seconds(net, X, 2))
            t = torch_fit_seconds(net, X, 2, threads)
            theirs += [t] if t is not None else []
        ratio = min(theirs) / min(ours) if theirs else None
        figures.append(Figure(
            f"fit {net.name} net end to end (2 epochs): speed vs torch", min(ours),
            min(theirs) if theirs else None, "s", ratio, FIT_TARGETS[net.name],
            note="" if theirs else "PyTorch not installed: pip install torch",
        ))
    return figures
