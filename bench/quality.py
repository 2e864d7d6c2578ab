"""Model quality against PyTorch: the same network, data, split, epochs and batch size.

Each data set is standardised on its training rows (80/20 split, seeded) and both trainers fit
the same layers and activations for the same epochs and batch size, on the same training rows:
PyTorch with Adam at lr 1e-3, constant, and ``nn.Linear``'s initialisation; aecli with its own
defaults (Adam, peak lr 3e-3 with a cosine decay, the same uniform initialisation), minus the
two that would change the rows or the epochs: no rows held out of training, no early stop.
The figure is the held-out reconstruction MSE as a ratio to PCA's at the same k, the median of
ten seeds (a small table varies by 10% from seed to seed, so fewer seeds measure the seeds),
and the wall-clock time aecli needs to reach PyTorch's final held-out error.

    .venv/bin/python bench/quality.py            # the table (also a section of bench/run.py)
    .venv/bin/python bench/quality.py --quick    # one seed, fewer epochs: a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aecli import Autoencoder  # noqa: E402
from aecli.pca import PCA  # noqa: E402

SEEDS = tuple(range(10))


@dataclass(frozen=True)
class Case:
    """One data set and the network trained on it."""

    name: str
    data: str
    latent: int
    hidden: tuple[int, ...]
    activation: str
    epochs: int
    batch_size: int


CASES = [
    Case("digits k=2", "digits", 2, (128, 64), "relu", 200, 64),
    Case("digits k=8", "digits", 8, (128, 64), "relu", 200, 64),
    Case("breast cancer k=4", "breast_cancer", 4, (64, 32), "relu", 300, 64),
    Case("diabetes k=3", "diabetes", 3, (32,), "tanh", 300, 32),
    Case("wine k=3", "wine", 3, (32, 16), "elu", 300, 32),
    Case("s-curve in 12-D k=2", "s_curve", 2, (32, 16), "elu", 60, 64),
]


def load(name: str) -> np.ndarray:
    """A data set as a float64 matrix: sklearn's bundled sets, or a curved 2-D sheet
    (sklearn's S-curve) bent into 12 dimensions with a little noise."""
    from sklearn import datasets

    if name == "s_curve":
        X3, _ = datasets.make_s_curve(4000, noise=0.05, random_state=0)
        rng = np.random.default_rng(0)
        A = rng.normal(size=(3, 12))
        return np.tanh(X3 @ A / 2) + 0.02 * rng.normal(size=(4000, 12))
    loader = {"digits": datasets.load_digits, "breast_cancer": datasets.load_breast_cancer,
              "diabetes": datasets.load_diabetes, "wine": datasets.load_wine}[name]
    return loader().data.astype(np.float64)


def split(X: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """80/20 split, standardised on the training rows (constant columns get scale 1)."""
    order = np.random.default_rng(seed).permutation(len(X))
    cut = int(0.8 * len(X))
    train, test = X[order[:cut]], X[order[cut:]]
    mean, std = train.mean(axis=0), train.std(axis=0)
    std[std == 0] = 1.0
    return (train - mean) / std, (test - mean) / std


def pca_mse(train: np.ndarray, test: np.ndarray, k: int) -> float:
    return float(PCA(n_components=k).fit(train).reconstruction_error(test).mean())


def run_torch(case: Case, train, test, seed: int, epochs: int):
    """PyTorch's held-out MSE after ``epochs``, and (seconds, held-out MSE) after each epoch."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    act = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU}[case.activation]
    sizes = [train.shape[1], *case.hidden, case.latent]
    enc, dec = [], []
    for i in range(len(sizes) - 1):
        enc += [nn.Linear(sizes[i], sizes[i + 1])] + ([act()] if i < len(sizes) - 2 else [])
    rev = sizes[::-1]
    for i in range(len(rev) - 1):
        dec += [nn.Linear(rev[i], rev[i + 1])] + ([act()] if i < len(rev) - 2 else [])
    model = nn.Sequential(*enc, *dec)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    Xt = torch.tensor(train, dtype=torch.float32)
    Xv = torch.tensor(test, dtype=torch.float32)
    trace, started = [], time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(Xt))
        for start in range(0, len(Xt), case.batch_size):
            xb = Xt[perm[start : start + case.batch_size]]
            opt.zero_grad()
            loss = ((model(xb) - xb) ** 2).mean()
            loss.backward()
            opt.step()
        with torch.no_grad():
            trace.append((time.perf_counter() - started, float(((model(Xv) - Xv) ** 2).mean())))
    return trace[-1][1], trace


def run_aecli(case: Case, train, test, seed: int, epochs: int, **params):
    """aecli's held-out MSE after ``epochs`` with its defaults (no early stopping, no rows
    held out of the training set), and (seconds, held-out MSE) after each epoch."""
    trace, started = [], time.perf_counter()
    ae = Autoencoder(latent=case.latent, hidden=case.hidden, activation=case.activation,
                     epochs=epochs, batch_size=case.batch_size, validation=0.0,
                     patience=None, seed=seed, **params)

    def on_epoch(report):
        trace.append(time.perf_counter() - started)

    # out_of_fold=False: the threshold is not used here, so no calibration fits after the
    # training that is timed (compare-pca's sweep does the same)
    ae.fit(train, callback=on_epoch, validation_data=test, out_of_fold=False)
    # validation_data only watches: with patience=None nothing is restored or stopped early
    held_out = [(t, v) for t, v in zip(trace, ae.val_loss_history_, strict=True)]
    return float(ae.reconstruction_error(test).mean()), held_out


def seconds_to_reach(trace, target: float) -> float | None:
    """The first time the held-out MSE is at most ``target``."""
    return next((t for t, v in trace if v <= target), None)


def measure(cases=CASES, seeds=SEEDS, epochs_scale: float = 1.0, threads: int = 1,
            log=print, **params) -> list[dict]:
    """One row per case: the median ratios to PCA and the times to PyTorch's final error."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    rows = []
    with threadpool_limits(limits=threads):
        for case in cases:
            X = load(case.data)
            epochs = max(2, int(case.epochs * epochs_scale))
            ours, theirs, reach_ours, reach_theirs = [], [], [], []
            for seed in seeds:
                train, test = split(X, seed)
                pca = pca_mse(train, test, case.latent)
                t_mse, t_trace = run_torch(case, train, test, seed, epochs)
                a_mse, a_trace = run_aecli(case, train, test, seed, epochs, **params)
                ours.append(a_mse / pca)
                theirs.append(t_mse / pca)
                reach_theirs.append(t_trace[-1][0])
                reach_ours.append(seconds_to_reach(a_trace, t_mse))
            row = {
                "case": case.name, "epochs": epochs, "batch_size": case.batch_size,
                "net": f"{','.join(map(str, case.hidden))} {case.activation}",
                "aecli_vs_pca": statistics.median(ours),
                "torch_vs_pca": statistics.median(theirs),
                "aecli_vs_torch": statistics.median(a / t for a, t in zip(ours, theirs,
                                                                        strict=True)),
                "torch_seconds": statistics.median(reach_theirs),
                "aecli_seconds_to_torch_error": (None if None in reach_ours
                                                 else statistics.median(reach_ours)),
            }
            rows.append(row)
            log(_line(row))
    return rows


def figures(quick: bool = False, log=print) -> list:
    """The quality figures for ``bench/run.py``: per data set aecli's held-out error over
    PyTorch's (target <= 1.05x), and on the small net (digits k=2) the time aecli needs to
    reach PyTorch's final error over PyTorch's whole run (target <= 0.5x)."""
    from figures import Figure

    rows = measure(seeds=SEEDS[:1] if quick else SEEDS, epochs_scale=0.1 if quick else 1.0,
                   log=log)
    out = [Figure(f"quality {r['case']} ({r['net']}): held-out MSE vs PyTorch",
                  r["aecli_vs_pca"], r["torch_vs_pca"], "x PCA", r["aecli_vs_torch"], 1.05,
                  at_least=False) for r in rows]
    out[0].note = ("each trainer's median held-out MSE over PCA's; the ratio is the median "
                   "over seeds of aecli's MSE over PyTorch's on the same split")
    small = rows[0]
    reach = small["aecli_seconds_to_torch_error"]
    out.append(Figure(f"quality {small['case']}: time to PyTorch's final error", reach,
                      small["torch_seconds"], "s", None if reach is None
                      else reach / small["torch_seconds"], 0.5, at_least=False))
    return out


def _line(row: dict) -> str:
    reach = row["aecli_seconds_to_torch_error"]
    reach = "never" if reach is None else f"{reach:.2f} s"
    return (f"{row['case']:<22} {row['net']:<14} aecli/PCA {row['aecli_vs_pca']:.3f}  "
            f"torch/PCA {row['torch_vs_pca']:.3f}  aecli/torch {row['aecli_vs_torch']:.3f}  "
            f"torch {row['torch_seconds']:.2f} s, aecli reaches it in {reach}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, a tenth of the epochs")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    measure(seeds=SEEDS[:1] if args.quick else SEEDS, epochs_scale=0.1 if args.quick else 1.0,
            threads=args.threads)


if __name__ == "__main__":
    main()
