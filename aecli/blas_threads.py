"""BLAS threads chosen by timing the work as it runs (the training loop, PCA, the commands).

More BLAS threads make big matrix products faster on an idle machine, but OpenBLAS threads
spin and wait for each other: when another process keeps the cores busy, every product
waits for a thread the kernel has not scheduled, and two threads can be 3-5x slower than one
(``make bench``, "busy neighbour"). Which count is best depends on the product shapes and on
the load, which changes while a job runs, so no fixed rule picks it.

:class:`ThreadTuner` times the real work instead. Work comes in *units* (a training step, a
block of rows); the tuner runs a few units at each candidate thread count, keeps the fastest
per row, and measures again from time to time, less often while the answer stays the same.
It skips counts the machine has no free cores for (Linux counts running threads in
/proc/loadavg): under load, one unit on too many threads can cost twenty on one.
:func:`pinned` (the CLI's ``--threads``) fixes the count and turns the tuner off.

The thread count can change the last bits of a product's result (OpenBLAS splits some
products differently), so runs that must be bit-identical should pin it.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import numpy as np

T = TypeVar("T")

PROBE_SECONDS = 0.005  # time per candidate in a measurement: long enough to average out noise
PROBE_UNITS = 3  # and at least this many units, after one warm-up unit
HOLD_SECONDS = (1.0, 16.0)  # time on the winner before measuring again: first, longest
PREFER_FEWER = 0.05  # more threads must be this much faster to be chosen
# A candidate this much slower per row than the best so far is dropped at once: under load
# more threads can be 3-8x slower, and finishing their probe would cost more than it tells.
GIVE_UP = 1.5
LOAD_EVERY = 0.05  # seconds between looks at how many threads the machine is running
LOAD_SAMPLES = 8  # the fewest of the last this many counts is the other work's demand

_pinned: int | None = None
_controller = None
_ceiling: int | None = None  # the count in force before the outermost tuner started
_depth = 0  # tuners running (a loop's tuner can run inside another's)
_now: int | None = None  # the count a tuner last set
_memory: dict[str, tuple[int, float, float]] = {}  # kind -> (choice, held until, hold)


def _blas():
    """threadpoolctl's controller of the BLAS libraries loaded in this process (made once)."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController().select(user_api="blas")
    return _controller


def blas_threads() -> int:
    """The number of threads BLAS uses now (1 without a BLAS threadpoolctl knows)."""
    return max((lib.num_threads for lib in _blas().lib_controllers), default=1)


def _set_blas_threads(n: int) -> None:
    global _now
    for lib in _blas().lib_controllers:
        lib.set_num_threads(n)
    _now = n


def running_threads() -> int | None:
    """Threads running on the machine now (Linux's /proc/loadavg), None where unknown."""
    try:
        with open("/proc/loadavg", "rb") as f:
            return int(f.read().split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return None


@contextmanager
def pinned(threads: int | None) -> Iterator[None]:
    """Fix BLAS at ``threads`` threads for the block, with no tuning; None leaves both as
    they are."""
    global _pinned
    if threads is None:
        yield
        return
    before, saved = _pinned, blas_threads()
    _pinned = threads
    _set_blas_threads(threads)
    try:
        yield
    finally:
        _pinned = before
        _set_blas_threads(saved)


def _enter_scope() -> None:
    global _ceiling, _depth, _now
    if _depth == 0:
        _ceiling = _now = blas_threads()
    _depth += 1


def _exit_scope() -> None:
    global _depth
    _depth -= 1
    if _depth == 0 and _ceiling is not None and _now not in (None, _ceiling):
        _set_blas_threads(_ceiling)


@contextmanager
def scope() -> Iterator[None]:
    """Keep the tuners' latest choice in force between them until the block ends, then
    restore the thread count in force before it.

    The work between two tuned passes (an eigendecomposition, small products) runs on the
    last pass's choice rather than the default: on a busy machine the default's threads
    would wait for cores at every call."""
    _enter_scope()
    try:
        yield
    finally:
        _exit_scope()


def candidates(most: int) -> list[int]:
    """Thread counts worth trying up to ``most``: 1, the powers of two, and ``most``."""
    counts, n = [], 1
    while n < most:
        counts.append(n)
        n *= 2
    return [*counts, most] if most >= 1 else [1]


class ThreadTuner:
    """Pick the BLAS thread count for a stream of work units by timing them.

    Use it as a context manager; on exit the thread count in force before the first tuner
    started is restored. Tuners can nest, one per kind of unit (training steps, validation
    blocks), each with its own choice. Call :meth:`tick` at the start of every unit with its
    size (rows): it closes the previous unit, records its time per row against the thread
    count it ran with, and sets the count for the next. :meth:`pause` closes a unit without
    opening one, so that work which is not a unit (an epoch's validation) is not timed.

    It tunes between 1 and the thread count in force when the first tuner started; with one
    thread, or inside :func:`pinned`, it does nothing. A tuner of a ``kind`` whose last tuner
    decided less than its hold time ago starts with that choice (a PCA's passes, one command
    after another's work), so that short passes do not each pay for a measurement.
    """

    def __init__(self, kind: str = "", clock=time.perf_counter, running=None):
        self.kind, self.clock = kind, clock
        self.running = running if running is not None else running_threads
        self._others: deque[int] = deque(maxlen=LOAD_SAMPLES)
        self._looked = -math.inf
        self.choices: list[int] = []
        self.chosen: int | None = None
        self.threads = 0
        self._open: tuple[float, float] | None = None  # (start, rows) of the unit running

    def __enter__(self) -> ThreadTuner:
        _enter_scope()
        most = _ceiling if _pinned is None else 1
        self.choices = candidates(most) if most > 1 else []
        if not self.choices:
            return self
        self._look(self.clock())
        chosen, until, hold = _memory.get(self.kind, (None, -math.inf, HOLD_SECONDS[0]))
        if until > self.clock() and chosen in self.choices:
            # the last tuner of this kind decided a moment ago: hold its choice, not measure
            self.chosen, self._times, self._hold_until, self._hold = chosen, {}, until, hold
            self._set(chosen)
        else:
            self._hold = HOLD_SECONDS[0]
            self._measure()
        return self

    def __exit__(self, *exc) -> None:
        self._open = None
        _exit_scope()

    @property
    def active(self) -> bool:
        """Whether the tuner is choosing (False when pinned or with one thread)."""
        return bool(self.choices)

    # -- the units --------------------------------------------------------------------------
    def tick(self, rows: float) -> None:
        """A unit of ``rows`` rows starts now (and the previous one, if open, ends)."""
        if not self.choices:
            return
        now = self.clock()
        self._close(now)
        if now - self._looked >= LOAD_EVERY:
            self._look(now)
        if _now != self.threads:  # another tuner's unit ran in between
            _set_blas_threads(self.threads)
        self._open = (now, max(float(rows), 1e-9))

    def pause(self) -> None:
        """The unit running ends now, and none starts."""
        if self.choices and self._open is not None:
            self._close(self.clock())
            self._open = None

    # -- the choice -------------------------------------------------------------------------
    def _measure(self) -> None:
        """Start a measurement: the last winner, then the other candidates, then the new
        winner."""
        first = [self.chosen] if self.chosen is not None else []
        self._queue = first + [n for n in self.choices if n not in first]
        self._times: dict[int, list[float]] = {}  # per candidate: seconds, rows, units
        self._best = float("inf")  # the best time per row measured so far
        self._next_candidate()  # one thread always has room

    def _next_candidate(self) -> bool:
        """Switch to the next candidate the machine has room for; False when none is left.

        More threads than there are cores free of other work would wait for each other:
        measuring them costs 3-20x a unit's time and tells what is known already."""
        while self._queue:
            n = self._queue.pop(0)
            if n > 1 and n > self._room():
                continue
            self._current = n
            self._times[n] = [0.0, 0.0, -1]  # the first unit after a switch warms up
            self._set(n)
            return True
        return False

    def _look(self, now: float) -> None:
        """Note how many threads other than this one's BLAS threads are running."""
        self._looked = now
        running = self.running()
        if running is not None:
            self._others.append(max(0, running - (_now or 1)))

    def _room(self) -> float:
        """Cores free of other work, judged by the quietest recent look (inf if unknown)."""
        if not self._others:
            return math.inf
        return (os.cpu_count() or 1) - min(self._others)

    def _set(self, n: int) -> None:
        self.threads = n
        _set_blas_threads(n)

    def _close(self, now: float) -> None:
        if self._open is None:
            return
        start, rows = self._open
        if self.chosen is not None and not self._times:  # holding the winner
            if now >= self._hold_until:
                self._measure()
            return
        record = self._times[self._current]
        record[2] += 1
        if record[2] > 0:
            record[0] += now - start
            record[1] += rows
        # the warm-up unit (waking threads) is judged with a wider margin
        margin = GIVE_UP if record[2] > 0 else 3 * GIVE_UP
        if (now - start) / rows > margin * self._best:
            record[:2] = [math.inf, 1.0]
        elif record[2] < PROBE_UNITS or record[0] < PROBE_SECONDS:
            return
        self._best = min(self._best, record[0] / record[1])
        if not self._next_candidate():
            self._decide(now)

    def _decide(self, now: float) -> None:
        per_row = {n: s / r for n, (s, r, _) in self._times.items()}
        best = min(per_row, key=per_row.get)
        # fewer threads unless more are clearly faster: kinder to the other work on the box
        for n in sorted(per_row):
            if per_row[n] <= per_row[best] * (1 + PREFER_FEWER):
                best = n
                break
        same = best == self.chosen
        self._hold = min(self._hold * 2, HOLD_SECONDS[1]) if same else HOLD_SECONDS[0]
        self.chosen, self._times = best, {}
        self._hold_until = now + self._hold
        _memory[self.kind] = (best, self._hold_until, self._hold)
        self._set(best)


def tuned(items: Iterable[T], rows: Callable[[T], int], kind: str = "") -> Iterator[T]:
    """``items`` as they come, each the start of a unit of ``rows(item)`` rows that lasts
    until the next is asked for (so its processing downstream, and the reading of the next,
    are timed with it)."""
    with ThreadTuner(kind) as tuner:
        for item in items:
            tuner.tick(rows(item))
            yield item


BLOCK_BYTES = 4 << 20  # rows of a tuned product per unit: about 4 MiB of the left operand


def block_rows(row_bytes: int) -> int:
    """Rows per block of a tuned pass over rows of ``row_bytes`` bytes each."""
    return max(64, BLOCK_BYTES // max(row_bytes, 1))


def tuned_matmul(A: np.ndarray, B: np.ndarray, dtype=None) -> np.ndarray:
    """``A @ B`` (n, m) computed a block of rows of ``A`` at a time, each block a unit of a
    :class:`ThreadTuner`, so that one big product does not run on threads a busy machine has
    no room for. ``A`` is cast to ``dtype`` block by block when given."""
    dtype = np.result_type(A.dtype if dtype is None else dtype, B.dtype)
    out = np.empty((A.shape[0], B.shape[1]), dtype=dtype)
    rows = block_rows(max(A.shape[1], B.shape[1]) * dtype.itemsize)  # the wider side
    with ThreadTuner("matmul") as tuner:
        for start in range(0, A.shape[0], rows):
            tuner.tick(min(rows, A.shape[0] - start))
            block = A[start : start + rows]
            np.matmul(block.astype(dtype, copy=False), B, out=out[start : start + rows])
        tuner.pause()
    return out
