"""The autoencoder network: a stack of dense layers over one flat parameter vector.

Layout of ``theta``: the weight matrices of the layers that own one, then every bias. Keeping
the weights first makes weight decay a single slice, and keeping everything in one vector
lets the optimizers update the whole network in a few vectorised operations.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np

from .activations import get_activation
from .initializers import init_bias, init_weights
from .layers import Dense, Dropout
from .losses import SoftmaxGroups, l1_penalty, mse, trim_rows

# A block's widest activation during inference: about one core's L2 cache (1 MiB on the
# 2-core bench machine, where 1 MiB encodes 1M rows 10% faster than 2 MiB or 4 MiB).
INFER_BLOCK_BYTES = 1 << 20
# Initialisation: PyTorch's default for every layer (see initializers.init_weights); None
# picks by activation (He for rectifiers, Glorot otherwise).
INIT: str | None = "uniform"


@dataclass(frozen=True)
class LayerSpec:
    """One dense layer: sizes, activation, and for a tied decoder layer the encoder layer whose
    weights it uses transposed."""

    n_in: int
    n_out: int
    activation: str
    tied_to: int | None = None

    def to_dict(self) -> dict:
        """Plain-JSON form, for the model file."""
        return asdict(self)


def autoencoder_specs(
    n_features: int,
    hidden: tuple[int, ...],
    latent: int,
    activation: str,
    latent_activation: str,
    output_activation: str,
    tied: bool,
) -> list[LayerSpec]:
    """Encoder ``n_features -> hidden... -> latent`` and the mirrored decoder."""
    sizes = [n_features, *hidden, latent]
    n_enc = len(sizes) - 1
    enc_acts = [activation] * (n_enc - 1) + [latent_activation]
    dec_acts = [activation] * (n_enc - 1) + [output_activation]
    specs = [LayerSpec(sizes[i], sizes[i + 1], enc_acts[i]) for i in range(n_enc)]
    for j in range(n_enc):
        mirror = n_enc - 1 - j  # the encoder layer this decoder layer undoes
        specs.append(
            LayerSpec(sizes[mirror + 1], sizes[mirror], dec_acts[j], mirror if tied else None)
        )
    return specs


class Workspace:
    """Scratch arrays for :meth:`Network.encode`/``decode``, kept by one caller between calls.

    Not for sharing between threads: two calls at once would write into the same arrays.
    """

    def __init__(self):
        self._arrays: dict = {}

    def padded(self, x: np.ndarray, rows: int) -> np.ndarray:
        """``x`` (m, d), m < rows, in the first rows of a zeroed (rows, d) array laid out as
        ``x`` is (C or Fortran order), so that the matrix products treat it as they treat a
        full block."""
        order = "F" if x.flags.f_contiguous and not x.flags.c_contiguous else "C"
        key = ("padded", x.shape[1], x.dtype.str, order)
        block = self._arrays.get(key)
        if block is None or len(block[0]) != rows:
            block = self._arrays[key] = (np.empty((rows, x.shape[1]), x.dtype, order=order),)
        block[0][: len(x)] = x
        block[0][len(x) :] = 0
        return block[0]

    def pair(self, layer: Dense, rows: int, width: int, dtype: np.dtype
             ) -> tuple[np.ndarray, np.ndarray]:
        """Two arrays of at least ``rows`` rows of ``width`` for ``layer``: its pre-activation
        and its output."""
        pair = self._arrays.get(id(layer))
        if pair is None or len(pair[0]) < rows or pair[0].shape[1] != width \
                or pair[0].dtype != dtype:
            pair = self._arrays[id(layer)] = (np.empty((rows, width), dtype=dtype),
                                              np.empty((rows, width), dtype=dtype))
        return pair


class Network:
    """A feed-forward autoencoder over a flat parameter vector.

    Parameters
    ----------
    specs : list of LayerSpec
        Encoder layers then decoder layers; the code is the output of layer ``len(specs)//2 - 1``.
    dtype : numpy dtype
        float32 or float64; parameters and arithmetic use it throughout.
    rng : numpy.random.Generator, optional
        Draws the initial weights. Without it, parameters start at zero (to be loaded).
    dropout : float
        Inverted-dropout rate on the hidden layers (not the code, not the output).
    groups : SoftmaxGroups, optional
        Output columns that are categorical: softmax blocks trained with cross-entropy
        (see :class:`aecli.nn.losses.SoftmaxGroups`). None: every column is numeric.
    """

    def __init__(self, specs, dtype=np.float32, rng=None, dropout: float = 0.0,
                 init: str = INIT, groups: SoftmaxGroups | None = None):
        self.specs = list(specs)
        self.dtype = np.dtype(dtype)
        if groups is not None and not groups.sizes:
            groups = None  # no categorical column: the plain squared-error network
        if groups is not None and groups.width != self.specs[0].n_in:
            raise ValueError(f"{groups!r} does not describe {self.specs[0].n_in} inputs")
        self.groups = groups
        self.code_index = len(self.specs) // 2 - 1
        owners = [i for i, s in enumerate(self.specs) if s.tied_to is None]
        self.n_weights = sum(self.specs[i].n_in * self.specs[i].n_out for i in owners)
        n_bias = sum(s.n_out for s in self.specs)
        self.theta = np.zeros(self.n_weights + n_bias, dtype=self.dtype)
        self.grad = np.zeros_like(self.theta)
        self.layers: list[Dense] = []
        w_at, b_at = 0, self.n_weights
        for spec in self.specs:
            act = get_activation(spec.activation)
            b = self.theta[b_at : b_at + spec.n_out]
            db = self.grad[b_at : b_at + spec.n_out]
            b_at += spec.n_out
            if spec.tied_to is None:
                size = spec.n_in * spec.n_out
                W = self.theta[w_at : w_at + size].reshape(spec.n_in, spec.n_out)
                dW = self.grad[w_at : w_at + size].reshape(spec.n_in, spec.n_out)
                w_at += size
                if rng is not None:
                    W[...] = init_weights(spec.n_in, spec.n_out, init or act.init, rng)
            else:
                # A tied layer reads the encoder's weights transposed; its gradient goes to a
                # scratch matrix that backward adds onto the encoder's.
                W = self.layers[spec.tied_to].W.T
                dW = np.zeros((spec.n_in, spec.n_out), dtype=self.dtype)
            if rng is not None:
                b[...] = init_bias(spec.n_in, spec.n_out, init or act.init, rng)
            self.layers.append(Dense(W, b, dW, db, act))
        hidden = [i for i in range(len(self.specs) - 1) if i != self.code_index]
        self.dropouts = {i: Dropout(dropout) for i in hidden} if dropout > 0 else {}

    # -- inference ------------------------------------------------------------------------
    def encode(self, x: np.ndarray, workspace: Workspace | None = None, *,
               row_exact: bool = True) -> np.ndarray:
        """Codes (n, latent) of inputs ``x`` (n, n_features).

        A ``workspace`` kept by the caller from call to call holds the intermediate arrays, so
        that a stream of calls allocates only its outputs; without one, each call allocates
        its own (and calls from several threads are safe).
        """
        return self._infer(self.layers[: self.code_index + 1], x, workspace, row_exact)

    def decode(self, z: np.ndarray, workspace: Workspace | None = None, *,
               row_exact: bool = True) -> np.ndarray:
        """Reconstructions (n, n_features) of codes ``z`` (n, latent); ``workspace`` as in
        :meth:`encode`."""
        return self._infer(self.layers[self.code_index + 1 :], z, workspace, row_exact)

    def _infer(self, layers: list[Dense], x: np.ndarray, workspace: Workspace | None,
               row_exact: bool = True, tuner=None) -> np.ndarray:
        """``x`` through ``layers``, a block of rows at a time, into a new array.

        A block's widest activation stays within ``INFER_BLOCK_BYTES``, so the elementwise
        passes between the matrix products (bias, activation) run in cache rather than in
        memory: ~1.6x faster on 65536-row batches. The block's arrays are reused from block to
        block (and from call to call with a workspace): fresh ones would cost a page fault per
        4 KiB, a third of the time of a stream of small calls.

        ``row_exact`` pads the last block to a full one, so that a row's result is
        bit-identical whatever rows share the call; the training loop's look at its validation
        rows after each epoch, which only compares a fixed set with itself, skips that cost.
        """
        # (n, n_out) in Fortran order: each output column lies side by side, as Arrow keeps
        # columns, so the streams hand them over without a copy each
        out = np.empty((layers[-1].W.shape[1], len(x)), dtype=self.dtype).T
        for start, m, h in self._blocks(layers, x, workspace, row_exact, tuner):
            out[start : start + m] = h[:m]
        return out

    def _blocks(self, layers: list[Dense], x: np.ndarray, workspace: Workspace | None,
                row_exact: bool, tuner=None, codes: np.ndarray | None = None
                ) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(start, m, h)`` for each block of rows of ``x`` through ``layers``: the block's
        ``m`` rows from ``start`` gave the first ``m`` rows of ``h``, which the next block
        overwrites. ``tuner`` (a :class:`ThreadTuner`) is told of every block; ``codes``
        (n, latent), when ``layers`` is the whole network, receives the code layer's output."""
        widest = max(layer.W.shape[1] for layer in layers)
        # Every block has the same number of rows, however many the call has (the last block
        # is padded), so that each row takes the same path through the matrix products and
        # gets bit-identical results whatever rows share its call.
        rows = max(256, INFER_BLOCK_BYTES // (widest * self.dtype.itemsize) // 256 * 256)
        if not row_exact:
            rows = max(1, min(rows, len(x)))
        workspace = workspace if workspace is not None else Workspace()
        for start in range(0, len(x), rows):
            if tuner is not None:
                tuner.tick(rows)
            h = x[start : start + rows]  # (m, n_in), m <= rows
            m = len(h)
            if m < rows:
                h = workspace.padded(h, rows)
            for i, layer in enumerate(layers):
                z, a = workspace.pair(layer, rows, layer.W.shape[1], self.dtype)
                h = layer.infer(h, z, a)
                if codes is not None and i == self.code_index:
                    codes[start : start + m] = h[:m]
            if self.groups is not None and layers[-1] is self.layers[-1]:
                self.groups.softmax_(h[:m])  # logits → each categorical column's levels
            yield start, m, h
        if tuner is not None:
            tuner.pause()

    def reconstruction_errors(self, x: np.ndarray, *, row_exact: bool = True,
                              tuner=None, codes: np.ndarray | None = None) -> np.ndarray:
        """Each row's mean squared reconstruction error (n,), float64, in one pass through
        the whole network a block at a time: no (n, d) reconstruction is ever allocated, and
        each block's error is taken while the block is in cache. ``row_exact`` as in
        :meth:`encode`; ``tuner`` and ``codes`` (an (n, latent) array to fill with the rows'
        codes on the way) as in :meth:`_blocks`."""
        out = np.empty(len(x), dtype=np.float64)
        diff = None
        blocks = self._blocks(self.layers, x, None, row_exact, tuner, codes)
        if self.groups is not None:
            for start, m, h in blocks:
                out[start : start + m] = self.groups.row_errors(h[:m], x[start : start + m])
            return out
        for start, m, h in blocks:
            if diff is None:
                diff = np.empty_like(h)
            d = np.subtract(h[:m], x[start : start + m], out=diff[:m])  # (m, d)
            out[start : start + m] = np.einsum("ij,ij->i", d, d)
        out /= self.specs[0].n_in
        return out

    # -- training -------------------------------------------------------------------------
    def forward_train(self, x: np.ndarray, rng=None) -> tuple[np.ndarray, np.ndarray]:
        """Forward pass that caches for backward; returns (reconstruction, code)."""
        code = None
        for i, layer in enumerate(self.layers):
            x = layer.forward(x, keep=True)
            if i == self.code_index:
                code = x
            elif i in self.dropouts and rng is not None:
                x = self.dropouts[i].forward(x, rng)
        return x, code

    def backward(self, d_out: np.ndarray, d_code: np.ndarray | None = None, rng=None) -> None:
        """Fill ``self.grad`` from the gradient of the loss with respect to the output and,
        optionally, extra gradient on the code (the sparsity penalty)."""
        da = d_out
        for i in range(len(self.layers) - 1, -1, -1):
            if i in self.dropouts and rng is not None:
                da = self.dropouts[i].backward(da)
            if i == self.code_index and d_code is not None:
                da = da + d_code
            da = self.layers[i].backward(da, need_dx=i > 0)
        for spec, layer in zip(self.specs, self.layers, strict=True):
            if spec.tied_to is not None:
                self.layers[spec.tied_to].dW += layer.dW.T

    def loss_and_grad(
        self,
        x_in: np.ndarray,
        target: np.ndarray,
        sparsity: float = 0.0,
        weight_decay: float = 0.0,
        rng=None,
        trim: float = 0.0,
        code_term=None,
    ) -> tuple[float, float]:
        """One training step's loss and gradient (left in ``self.grad``); ``trim`` leaves that
        share of the worst-reconstructed rows out of the gradient (see
        :func:`aecli.nn.losses.trim_rows`; the losses returned count every row);
        ``code_term(code)``, when given, adds a term on the codes (value and its gradient
        (n, latent), or None), such as :class:`aecli.nn.neighbors.NeighborTerm`.

        Returns
        -------
        reconstruction_mse : float
            The MSE between output and target, the figure reported to users (with
            categorical columns, their cross-entropy counts: see :class:`SoftmaxGroups`).
        objective : float
            That plus the sparsity and weight-decay penalties, what the gradient is of.
        """
        out, code = self.forward_train(x_in, rng)
        if self.groups is None:
            rec, d_out = mse(out, target)
            objective = rec
        else:
            rec, d_out = self.groups.loss_and_grad(out, target)
            objective = rec
        if trim > 0:
            trim_rows(d_out, trim)
        d_code = None
        if sparsity > 0:
            penalty, d_code = l1_penalty(code, sparsity)
            objective += penalty
        if code_term is not None:
            value, d_term = code_term(code)
            objective += value
            if d_term is not None:
                d_code = d_term if d_code is None else d_code + d_term
        self.backward(d_out, d_code, rng)
        if weight_decay > 0:
            w = self.theta[: self.n_weights]
            objective += 0.5 * weight_decay * float(np.vdot(w, w))
            self.grad[: self.n_weights] += self.dtype.type(weight_decay) * w
        return rec, objective

    # -- persistence ----------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        """Named weight arrays (``layer{i}.W``, ``layer{i}.b``), copies; tied layers have no W."""
        out = {}
        for i, (spec, layer) in enumerate(zip(self.specs, self.layers, strict=True)):
            if spec.tied_to is None:
                out[f"layer{i}.W"] = layer.W.copy()
            out[f"layer{i}.b"] = layer.b.copy()
        return out

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of each array :meth:`arrays` returns, for validating a model file."""
        out = {}
        for i, spec in enumerate(self.specs):
            if spec.tied_to is None:
                out[f"layer{i}.W"] = (spec.n_in, spec.n_out)
            out[f"layer{i}.b"] = (spec.n_out,)
        return out

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Copy named arrays (as from :meth:`arrays`) into the parameters."""
        for i, (spec, layer) in enumerate(zip(self.specs, self.layers, strict=True)):
            if spec.tied_to is None:
                layer.W[...] = arrays[f"layer{i}.W"]
            layer.b[...] = arrays[f"layer{i}.b"]
