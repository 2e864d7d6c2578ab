"""Epoch sources for the mini-batch step of :func:`aecli.nn.training.run_epochs`: callables
that take the random generator and yield one epoch's batches, over rows in memory or over
rows read anew each epoch through a shuffle buffer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np


def in_memory_batches(X: np.ndarray, batch_size: int) -> Callable:
    """Epoch source over rows held in memory: a fresh permutation each epoch, each batch
    gathered into one reused buffer, so no epoch copies the data set."""
    n, d = X.shape
    bs = min(batch_size, n)
    batch = np.empty((bs, d), dtype=X.dtype)

    def epoch(rng: np.random.Generator) -> Iterator[np.ndarray]:
        order = rng.permutation(n)
        for start in range(0, n, bs):
            rows = order[start : start + bs]
            yield np.take(X, rows, axis=0, out=batch[: len(rows)])  # (b, d)

    epoch.batches = -(-n // bs)  # known in advance, for the learning-rate schedule
    return epoch


SHUFFLE_BUFFER_BYTES = 128 << 20  # rows held to mix a streamed file's order


def chunked_batches(chunks: Callable[[], Iterable[np.ndarray]], batch_size: int,
                    buffer_bytes: int = SHUFFLE_BUFFER_BYTES) -> Callable:
    """Epoch source over rows read anew each epoch, for data larger than memory.

    ``chunks()`` yields arrays of rows in the file's order, which may be sorted (by date, by
    customer): shuffling each chunk alone would train on one part of the file after another.
    The rows pass through a shuffle buffer instead (as ``tf.data``'s): it holds up to
    ``buffer_bytes`` of rows (at least two chunks' worth); once full, each arriving row takes
    the place of one drawn at random, and the rows drawn go out in batches. A table that fits
    the buffer is shuffled whole, as in memory; a larger one is mixed across the buffer's
    span of the file. Memory holds the buffer and one chunk. After a whole epoch, the
    source's ``rows`` says how many rows it held.
    """

    def epoch(rng: np.random.Generator) -> Iterator[np.ndarray]:
        buffer, held, carry, seen = None, 0, None, 0
        for chunk in chunks():
            m = len(chunk)
            seen += m
            if buffer is None:
                rows = max(2 * m, buffer_bytes // max(chunk[0].nbytes, 1))
                buffer = np.empty((rows, chunk.shape[1]), dtype=chunk.dtype)  # (S, d)
            if m > len(buffer) - held:  # full: draw rows out to make room
                out = min(held + m - len(buffer), held)
                drawn = rng.choice(held, size=out, replace=False)
                carry = yield from cut_batches(buffer[drawn], carry, batch_size)
                buffer[drawn] = chunk[:out]
                chunk = chunk[out:]
                extra = len(chunk) - (len(buffer) - held)  # a chunk larger than the buffer
                if extra > 0:
                    carry = yield from cut_batches(chunk[rng.permutation(extra)], carry,
                                                batch_size)
                    chunk = chunk[extra:]
            buffer[held : held + len(chunk)] = chunk
            held += len(chunk)
        if buffer is not None:
            rest = buffer[:held][rng.permutation(held)]
            carry = yield from cut_batches(rest, carry, batch_size)
        if carry is not None and len(carry):
            yield carry
        epoch.rows = seen

    epoch.rows = None  # not known before the first epoch
    return epoch


def cut_batches(rows: np.ndarray, carry: np.ndarray | None, batch_size: int):
    """Yield full batches of ``carry`` then ``rows``; return the rows left over (an epoch
    source yields them last, as its one short batch)."""
    if carry is not None and len(carry):
        rows = np.concatenate([carry, rows])
    full = len(rows) // batch_size * batch_size
    for start in range(0, full, batch_size):
        yield rows[start : start + batch_size]  # (b, d)
    return rows[full:].copy()
