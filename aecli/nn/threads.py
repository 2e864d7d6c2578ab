"""BLAS threads chosen by timing the work as it runs.

More BLAS threads make big matrix products faster on an idle machine, but OpenBLAS threads
spin and wait for each other: when another process keeps the cores busy, every product
waits for a thread the kernel has not scheduled, and two threads can be 3-5x slower than one
(``make bench``, "busy neighbour"). Which count is best depends on the product shapes and on
the load, which changes while a job runs, so no fixed rule picks it.

:class:`ThreadTuner` times the real work instead. Work comes in *units* (a training step, a
block of rows); the tuner runs a few units at each candidate thread count, keeps the fastest
per row, and measures again from time to time, less often while the answer stays the same.
:func:`pinned` (the CLI's ``--threads``) fixes the count and turns the tuner off.

The thread count can change the last bits of a product's result (OpenBLAS splits some
products differently), so runs that must be bit-identical should pin it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

PROBE_SECONDS = 0.02  # time per candidate in a measurement: long enough to average out noise
PROBE_UNITS = 3  # and at least this many units, after one warm-up unit
HOLD_SECONDS = (1.0, 16.0)  # time on the winner before measuring again: first, longest
PREFER_FEWER = 0.05  # more threads must be this much faster to be chosen
# A candidate this much slower per row than the best so far is dropped at once: under load
# more threads can be 3-8x slower, and finishing their probe would cost more than it tells.
GIVE_UP = 1.5

_pinned: int | None = None
_controller = None
_ceiling: int | None = None  # the count in force before the outermost tuner started
_depth = 0  # tuners running (a loop's tuner can run inside another's)
_now: int | None = None  # the count a tuner last set


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
    thread, or inside :func:`pinned`, it does nothing.
    """

    def __init__(self, clock=time.perf_counter):
        self.clock = clock
        self.choices: list[int] = []
        self.chosen: int | None = None
        self.threads = 0
        self._open: tuple[float, float] | None = None  # (start, rows) of the unit running

    def __enter__(self) -> ThreadTuner:
        global _ceiling, _depth, _now
        if _depth == 0:
            _ceiling = _now = blas_threads()
        _depth += 1
        most = _ceiling if _pinned is None else 1
        self.choices = candidates(most) if most > 1 else []
        if self.choices:
            self._hold = HOLD_SECONDS[0]
            self._measure()
        return self

    def __exit__(self, *exc) -> None:
        global _depth
        self._open = None
        _depth -= 1
        if _depth == 0 and _ceiling is not None and _now not in (None, _ceiling):
            _set_blas_threads(_ceiling)

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
        self._next_candidate()

    def _next_candidate(self) -> None:
        self._current = self._queue.pop(0)
        self._times[self._current] = [0.0, 0.0, -1]  # the first unit after a switch warms up
        self._set(self._current)

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
        if self._queue:
            self._next_candidate()
        else:
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
        self._set(best)


def tuned(items: Iterable[T], rows: Callable[[T], int]) -> Iterator[T]:
    """``items`` as they come, each the start of a unit of ``rows(item)`` rows that lasts
    until the next is asked for (so its processing downstream, and the reading of the next,
    are timed with it)."""
    with ThreadTuner() as tuner:
        for item in items:
            tuner.tick(rows(item))
            yield item
