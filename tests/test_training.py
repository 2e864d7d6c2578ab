"""Tests for aecli.nn.training: the loop's early stopping, divergence, callback and dtypes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from aecli.errors import TrainingError
from aecli.estimators import Hyperparameters
from aecli.nn import MINIBATCH, ActivationKind, Network, autoencoder_specs, layers, make_optimizer
from aecli.nn.training import reconstruction_mse_rows, train
from aecli.nn.trimmed import trimmed_mean


def _setup(d=6, hidden=(8,), latent=2, kind="tanh", dtype=np.float64, optimizer="adam", lr=1e-2,
           dropout=0.0, seed=0):
    rng = np.random.default_rng(seed)
    specs = autoencoder_specs(d, hidden, latent, kind, "linear", "linear", False)
    net = Network(specs, dtype=dtype, rng=rng, dropout=dropout)
    return net, make_optimizer(optimizer, net.theta.size, dtype, lr), rng


def _settings(epochs=20, batch_size=32, patience=None, noise=0.0, sparsity=0.0, wd=0.0,
              lr=1e-2, schedule="none"):
    return Hyperparameters(epochs=epochs, batch_size=batch_size, noise=noise, sparsity=sparsity,
                           weight_decay=wd, patience=patience, lr=lr,
                           schedule=schedule).checked()


def _data(n=200, d=6, seed=1, dtype=np.float64):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    return (np.tanh(z @ rng.normal(size=(2, d))) + 0.05 * rng.normal(size=(n, d))).astype(dtype)


def test_training_reduces_the_loss_and_reports_each_epoch():
    net, opt, rng = _setup()
    X = _data()
    before = reconstruction_mse_rows(net, X).mean()
    reports = []
    result = train(net, opt, X[:160], X[160:], _settings(epochs=15), rng, reports.append)
    assert [r.epoch for r in reports] == list(range(1, 16))
    assert all(r.epochs == 15 and r.seconds >= 0 for r in reports)
    assert [r.train_loss for r in reports] == result.loss_history
    assert [r.val_loss for r in reports] == result.val_loss_history
    assert result.loss_history[-1] < 0.5 * result.loss_history[0]
    assert reconstruction_mse_rows(net, X).mean() < 0.5 * before
    assert not result.stopped_early


def test_early_stopping_restores_the_best_weights():
    # A high learning rate on little data makes validation loss wander, so patience triggers.
    net, opt, rng = _setup(hidden=(32,), lr=0.05)
    X = _data(n=60)
    X_val = _data(n=40, seed=9)
    result = train(net, opt, X, X_val, _settings(epochs=300, batch_size=8, patience=5), rng)
    assert result.stopped_early
    assert len(result.val_loss_history) < 300
    assert len(result.val_loss_history) - result.best_epoch == 5
    best = min(result.val_loss_history)
    assert result.val_loss_history[result.best_epoch - 1] == best
    # the monitor is the trimmed mean (see aecli.nn.trimmed)
    assert trimmed_mean(reconstruction_mse_rows(net, X_val)) == pytest.approx(best, rel=1e-12)


def test_without_patience_the_last_weights_are_kept():
    net, opt, rng = _setup(lr=0.05)
    X = _data(n=60)
    result = train(net, opt, X, X[:20], _settings(epochs=30, batch_size=8), rng)
    assert len(result.loss_history) == 30 and not result.stopped_early
    assert trimmed_mean(reconstruction_mse_rows(net, X[:20])) == pytest.approx(
        result.val_loss_history[-1])


@pytest.mark.parametrize(
    ("scale", "optimizer", "lr", "dtype"),
    [(1e3, "sgd", 10.0, np.float64), (1e3, "sgd", 10.0, np.float32),
     (1e30, "adam", 1e-3, np.float32)],
)
def test_divergence_raises_training_error_naming_epoch_and_lr(scale, optimizer, lr, dtype):
    net, opt, rng = _setup(kind="elu", optimizer=optimizer, lr=lr, dtype=dtype)
    X = (_data() * scale).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the error says it; no overflow warnings on the way
        with pytest.raises(TrainingError, match=r"epoch \d+ with lr=") as info:
            train(net, opt, X, None, _settings(epochs=5, lr=lr), rng)
    assert f"lr={lr:g}" in info.value.message
    assert info.value.exit_code == 1
    assert "--lr" in info.value.hint


# -- the float32 hot path never computes in float64 ----------------------------------------------
class _Tracer(np.ndarray):
    """An ndarray view that records the dtype of every NumPy operand of every ufunc it meets.

    Python scalars are not recorded: NumPy treats them as "weak" and keeps the array's dtype,
    whereas a NumPy float64 scalar or array makes the ufunc compute in float64.
    """

    seen: set = set()

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        plain = [a.view(np.ndarray) if isinstance(a, _Tracer) else a for a in inputs]
        outs = None if out is None else tuple(
            o.view(np.ndarray) if isinstance(o, _Tracer) else o for o in out
        )
        for a in (*plain, *(outs or ())):
            if isinstance(a, np.ndarray | np.generic):
                _Tracer.seen.add((ufunc.__name__, a.dtype))
        if outs is not None:
            kwargs["out"] = outs
        result = getattr(ufunc, method)(*plain, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return result.view(_Tracer) if isinstance(result, np.ndarray) else result


def _trace(obj, names):
    for name in names:
        setattr(obj, name, getattr(obj, name).view(_Tracer))


@pytest.mark.parametrize("optimizer", MINIBATCH)
@pytest.mark.parametrize("kind", list(ActivationKind))
def test_float32_training_never_upcasts(kind, optimizer, monkeypatch):
    """A 64-128-32-8 mirror network trained in float32, with noise, dropout, sparsity and
    weight decay: every ufunc on the hot path sees float32 (or bool) operands only. (Where
    the BLAS is not row-exact, the validation pass multiplies in float64 on purpose: see
    the test below; here the float32 path is traced.)"""
    monkeypatch.setattr(layers, "rows_alike", lambda: True)
    net, opt, rng = _setup(64, (128, 32), 8, kind, np.float32, optimizer, 1e-3, dropout=0.1)
    # Views of the same memory, so the network behaves exactly as before, traced.
    _trace(net, ["theta", "grad"])
    for layer in net.layers:
        _trace(layer, ["W", "b", "dW", "db"])
    _trace(opt, [k for k, a in vars(opt).items() if isinstance(a, np.ndarray)])
    X = np.random.default_rng(2).normal(size=(96, 64)).astype(np.float32)
    _Tracer.seen = set()
    train(net, opt, X, X[:32], _settings(2, 32, noise=0.1, sparsity=1e-3, wd=1e-4, lr=1e-3),
          rng)
    assert any(dt == np.float32 for _, dt in _Tracer.seen)  # the tracing worked
    upcast = sorted({name for name, dt in _Tracer.seen if dt not in (np.float32, np.bool_)})
    assert not upcast, f"ufuncs that saw a non-float32 operand: {upcast}"
    out, code = net.forward_train(X[:5].view(_Tracer), rng)
    assert out.dtype == code.dtype == net.grad.dtype == net.theta.dtype == np.float32
    assert net.encode(X).dtype == net.decode(net.encode(X)).dtype == np.float32
    assert all(layer.cache[2].dtype == np.float32 for layer in net.layers)


@pytest.mark.parametrize("row_exact_blas", [True, False])
def test_float32_inference_is_row_exact_when_the_blas_is_not(row_exact_blas, monkeypatch):
    """A BLAS whose float32 product depends on a row's place among the rows (OpenBLAS's
    Haswell kernel) gets float64 products: the rows then agree bit for bit whatever their
    company, and with the float32 product to float32 rounding."""
    net, _, _ = _setup(d=40, hidden=(300,), dtype=np.float32)
    X = _data(n=2000, d=40, dtype=np.float32)
    plain = net.decode(net.encode(X))
    monkeypatch.setattr(layers, "rows_alike", lambda: row_exact_blas)
    full = net.decode(net.encode(X))
    part = net.decode(net.encode(X[1234:1301]))
    assert full.dtype == np.float32
    np.testing.assert_allclose(full, plain, rtol=1e-4, atol=1e-5)
    if not row_exact_blas:  # the float64 path is exact about company on any BLAS
        assert np.array_equal(full[1234:1301], part)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reconstruction_errors_match_a_full_reconstruction_and_do_not_depend_on_company(dtype):
    net, _, _ = _setup(d=40, hidden=(300,), dtype=dtype)  # blocks of 768 rows: several
    X = _data(n=2000, d=40, dtype=dtype)
    diff = net.decode(net.encode(X)).astype(np.float64) - X
    expected = (diff**2).mean(axis=1)
    errors = net.reconstruction_errors(X)
    assert errors.dtype == np.float64 and errors.shape == (2000,)
    np.testing.assert_allclose(errors, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)
    if dtype == np.float32:  # row-exact: the same bits whatever rows share the call
        assert np.array_equal(net.reconstruction_errors(X[1234:1301]), errors[1234:1301])
    # the same pass, with threads chosen by timing (which can change float64's last bits)
    np.testing.assert_allclose(reconstruction_mse_rows(net, X), errors, rtol=1e-12)
    assert net.reconstruction_errors(X[:0]).shape == (0,)


@pytest.mark.parametrize("buffer_rows", [10_000, 300, 48])
def test_streamed_epochs_see_every_row_once_mixed_across_chunks(buffer_rows):
    from aecli.nn.training import chunked_batches

    X = np.arange(2000, dtype=np.float64)[:, None]  # sorted, like a file ordered by date
    chunk_sizes = [100, 250, 7, 400, 1, 642, 600]
    bounds = np.cumsum([0, *chunk_sizes])

    def chunks():
        return (X[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True))

    source = chunked_batches(chunks, 32, buffer_bytes=buffer_rows * 8)
    batches = list(source(np.random.default_rng(0)))
    rows = np.concatenate(batches)[:, 0]
    assert sorted(rows.tolist()) == list(range(2000))  # every row once
    assert all(len(b) == 32 for b in batches[:-1]) and 0 < len(batches[-1]) <= 32
    first = np.concatenate(batches[:8])[:, 0]  # the first 256 rows trained on
    if buffer_rows >= 2000:  # the whole file fits: shuffled as in memory
        assert first.max() > 1500 and first.min() < 500
    else:  # mixed over the buffer's span, beyond the first chunk
        assert first.max() > 100
    again = np.concatenate(list(source(np.random.default_rng(1))))[:, 0]
    assert not np.array_equal(again, rows)  # a new order each epoch


# -- a few extreme validation rows (issue 24, item 7) ---------------------------------------

def _with_an_extreme_row(n=1000, noise=0.3):
    """A standardised table (its first quarter: clean test rows) and a pool to train on."""
    rng = np.random.default_rng(0)
    X = np.tanh(rng.normal(size=(n, 2)) @ rng.normal(size=(2, 8))) \
        + noise * rng.normal(size=(n, 8))
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X[n // 4 :], X[: n // 4]


def test_one_extreme_validation_row_does_not_steer_early_stopping():
    # One cell 200 standard deviations out among the validation rows (a 1,048 mph wind
    # reading): with the plain mean as the monitor, the best epochs of five seeds were 7-20 of
    # 20 and their clean test errors spread 0.220-0.288 (31%); trimmed, every seed's best
    # epoch is near the end and the errors agree within 4%.
    from aecli import Autoencoder

    pool, test = _with_an_extreme_row()
    errors = []
    for seed in range(5):
        order = np.random.default_rng(seed).permutation(len(pool))
        val = pool[order[:75]].copy()
        val[0, 3] = 200.0
        ae = Autoencoder(epochs=20, seed=seed, hidden=(16, 8)).fit(pool[order[75:]],
                                                                   validation_data=val)
        errors.append(float(ae.reconstruction_error(test).mean()))
        # and the validation MSE reported is that of the ordinary rows, not the wild one's
        assert ae.validation_mse_ < 10 * ae.train_mse_
    assert max(errors) / min(errors) < 1.10, errors


def test_the_trimmed_mean_leaves_out_the_largest_errors_only():
    from aecli.nn.trimmed import TrimmedMean, trimmed_rows

    assert [trimmed_rows(n) for n in (1, 9, 10, 30, 300, 1000)] == [0, 0, 1, 3, 3, 10]
    e = np.random.default_rng(1).exponential(size=1000)
    assert trimmed_mean(e) == pytest.approx(np.sort(e)[:990].mean())
    wild = e.copy()
    wild[[3, 500]] = [1e12, np.nan]  # one overflow, one NaN: both among the largest
    assert trimmed_mean(wild) == pytest.approx(np.sort(np.delete(wild, [3, 500]))[:990].mean(),
                                               rel=1e-2)
    assert not np.isfinite(trimmed_mean(np.full(100, np.nan)))  # diverged stays diverged
    assert trimmed_mean(np.array([2.0, 4.0])) == 3.0  # too few rows to leave any out
    # over chunks, as a streamed pass counts the training rows: the same figure when the
    # count is known in advance, and close to it when it is not
    for rows, rel in ((len(wild), 1e-12), (None, 1e-2)):
        streamed = TrimmedMean(rows)
        for chunk in np.array_split(wild, 7):
            streamed.add(chunk)
        assert streamed.value == pytest.approx(trimmed_mean(wild), rel=rel)
    few = TrimmedMean(None)  # fewer than 10 rows: none left out (was an internal error)
    for chunk in ([1.0, 2.0], [3.0, 4.0, 5.0]):
        few.add(np.array(chunk))
    assert few.value == 3.0


def test_a_diverged_validation_pass_still_stops_training():
    # Trimming leaves out a few non-finite errors, not a network whose every error is.
    net, opt, rng = _setup()
    X = _data()
    with pytest.raises(TrainingError, match="diverged at epoch 1"):
        train(net, opt, X[:150], np.full((50, 6), np.nan), _settings(), rng)


def test_vs_pca_compares_like_with_like_when_a_validation_row_is_wild():
    # The summary's validation MSE and PCA's are the same statistic (each trimmed), so one
    # wild validation row moves neither: with the plain mean both were mostly its error, and
    # the ratio went from 3.2 (this small model does worse than PCA here) to 1.4.
    from aecli.pipeline.train import split_rows, train_bundle

    pool, _ = _with_an_extreme_row(n=800)
    names = [f"c{j}" for j in range(8)]
    wild = pool.copy()
    wild[split_rows(len(pool), 0.1, 0)[1][0], 3] = 200.0  # a validation row
    ratios = []
    for X in (pool, wild):
        s = train_bundle(X, names, {"epochs": 10, "hidden": (16, 8), "seed": 0}).summary
        ratios.append(s["validation_mse"] / s["pca_mse"])
    assert ratios[1] == pytest.approx(ratios[0], rel=0.1), ratios


def test_the_epoch_monitor_any_row_source_ends_its_epochs_with():
    # In memory, streamed and on a cluster (which brings its own validation loss from the
    # workers): patience on a plateau, improvements below tol count as none, the best
    # weights come back, and a validation loss that is not finite stops the run.
    from aecli.nn.training import Monitor, StopReason

    net, _, _ = _setup()
    losses = iter([3.0, 2.0, 2.0 - 1e-9, 2.5, 1.0])
    reports = []
    monitor = Monitor(net, _settings(patience=2), reports.append, 2, lambda: next(losses))
    stopped = []
    for epoch in range(1, 5):
        net.theta[...] = epoch
        stopped.append(monitor.end_epoch(epoch, 10.0 - epoch))
    result = monitor.finish()
    assert stopped == [False, False, False, True]
    assert result.stop_reason is StopReason.PLATEAU and result.best_epoch == 3
    assert result.val_loss_history == [3.0, 2.0, 2.0 - 1e-9, 2.5]
    assert (net.theta == 3).all()  # the best epoch's weights, restored
    assert [r.best_epoch for r in reports] == [1, 2, 3, 3]
    no_val = Monitor(net, _settings(), None, None, None)
    assert not no_val.end_epoch(1, 1.0) and no_val.finish().val_loss_history is None
    with pytest.raises(TrainingError, match="diverged at epoch 1"):
        Monitor(net, _settings(), None, None, lambda: np.inf).end_epoch(1, 1.0)
