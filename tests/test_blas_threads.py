"""The BLAS thread tuner: timing units of work, choosing, re-measuring, pinning."""

from __future__ import annotations

import numpy as np
import pytest

from aecli import blas_threads as threads
from aecli.blas_threads import ThreadTuner, candidates, pinned, tuned


class FakeBlas:
    """Stands in for threadpoolctl: a BLAS with ``most`` threads by default."""

    def __init__(self, most: int):
        self.now = most
        self.history: list[int] = []

    def set(self, n: int) -> None:
        self.now = n
        self.history.append(n)
        threads._now = n


@pytest.fixture
def blas(monkeypatch):
    fake = FakeBlas(4)
    monkeypatch.setattr(threads, "blas_threads", lambda: fake.now)
    monkeypatch.setattr(threads, "_set_blas_threads", fake.set)
    monkeypatch.setattr(threads, "_now", None)
    monkeypatch.setattr(threads, "_memory", {})
    monkeypatch.setattr(threads, "running_threads", lambda: None)  # the machine's load unknown
    return fake


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def run_units(tuner: ThreadTuner, clock: Clock, seconds_per_row: dict[int, float], units: int,
              rows: int = 100) -> list[int]:
    """Run ``units`` units, each taking ``seconds_per_row[threads] * rows``; the counts used."""
    used = []
    for _ in range(units):
        tuner.tick(rows)
        used.append(tuner.threads)
        clock.t += seconds_per_row[tuner.threads] * rows
    tuner.pause()
    return used


def test_candidates_are_one_the_powers_of_two_and_the_most():
    assert candidates(1) == [1]
    assert candidates(2) == [1, 2]
    assert candidates(6) == [1, 2, 4, 6]
    assert candidates(8) == [1, 2, 4, 8]


def test_it_settles_on_the_fastest_count_and_restores_the_default(blas):
    clock = Clock()
    speed = {1: 1e-4, 2: 6e-5, 4: 3e-5}  # four threads fastest
    with ThreadTuner(clock=clock) as tuner:
        used = run_units(tuner, clock, speed, 200)
    assert tuner.chosen == 4
    assert used[-50:] == [4] * 50
    assert blas.now == 4  # the count before the tuner, restored
    assert set(used) == {1, 2, 4}  # every candidate was measured


def test_under_load_one_thread_wins_and_slow_candidates_are_dropped_early(blas):
    clock = Clock()
    speed = {1: 1e-4, 2: 8e-4, 4: 2e-3}  # a busy machine: more threads, much slower
    with ThreadTuner(clock=clock) as tuner:
        used = run_units(tuner, clock, speed, 300)
    assert tuner.chosen == 1
    # a candidate 8x slower is abandoned after its first unit, not probed for 3+ units
    first_measurement = used[: used.index(1, used.index(4))] if 4 in used else used
    assert first_measurement.count(2) == 1 and first_measurement.count(4) == 1


def test_a_small_gain_from_more_threads_is_not_worth_them(blas):
    clock = Clock()
    speed = {1: 1e-4, 2: 0.98e-4, 4: 0.97e-4}  # within PREFER_FEWER
    with ThreadTuner(clock=clock) as tuner:
        run_units(tuner, clock, speed, 200)
    assert tuner.chosen == 1


def test_it_measures_again_and_follows_a_change_of_load(blas):
    clock = Clock()
    idle = {1: 1e-4, 2: 5e-5, 4: 3e-5}
    busy = {1: 1e-4, 2: 4e-4, 4: 8e-4}
    with ThreadTuner(clock=clock) as tuner:
        run_units(tuner, clock, idle, 300)
        assert tuner.chosen == 4
        # the neighbour arrives; within the hold time plus one measurement, one thread wins
        run_units(tuner, clock, busy, int(threads.HOLD_SECONDS[1] / (busy[4] * 100)) + 300)
        assert tuner.chosen == 1


def test_paused_time_is_not_counted(blas):
    clock = Clock()
    with ThreadTuner(clock=clock) as tuner:
        for _ in range(40):
            tuner.tick(100)
            clock.t += 1e-4 * 100 if tuner.threads == 4 else 2e-4 * 100
            tuner.pause()
            clock.t += 5.0 if tuner.threads == 4 else 0.0  # slow work between units
    assert tuner.chosen == 4


def test_pinned_turns_tuning_off_and_restores(blas):
    with pinned(2):
        assert blas.now == 2
        with ThreadTuner(clock=Clock()) as tuner:
            assert not tuner.active
            tuner.tick(10)
            tuner.pause()
        assert blas.now == 2
    assert blas.now == 4


def test_one_thread_means_nothing_to_tune(blas):
    blas.now = 1
    with ThreadTuner(clock=Clock()) as tuner:
        assert not tuner.active
        tuner.tick(5)
    assert blas.history == []


def test_nested_tuners_keep_their_own_choice(blas):
    clock = Clock()
    with ThreadTuner(clock=clock) as outer, ThreadTuner(clock=clock) as inner:
        for _ in range(300):
            outer.tick(100)
            clock.t += {1: 1e-4, 2: 6e-5, 4: 3e-5}[blas.now] * 100
            outer.pause()
            inner.tick(100)
            clock.t += {1: 1e-5, 2: 5e-5, 4: 9e-5}[blas.now] * 100
            inner.pause()
        assert (outer.chosen, inner.chosen) == (4, 1)
    assert blas.now == 4


def test_tuned_passes_every_item_through(blas):
    assert list(tuned(range(7), lambda _: 3)) == list(range(7))


def test_the_real_blas_is_left_as_it_was():
    before = threads.blas_threads()
    with ThreadTuner() as tuner:
        for _ in range(50):
            tuner.tick(64)
            np.ones((64, 64)) @ np.ones((64, 64))
    assert threads.blas_threads() == before


def test_a_tuner_starts_with_the_recent_choice_of_its_kind(blas):
    clock = Clock()
    speed = {1: 1e-4, 2: 4e-4, 4: 8e-4}
    with ThreadTuner("gram", clock=clock) as first:
        run_units(first, clock, speed, 100)
    assert first.chosen == 1
    with ThreadTuner("gram", clock=clock) as again:
        assert run_units(again, clock, speed, 10) == [1] * 10  # no new measurement
    with ThreadTuner("other", clock=clock) as other:
        assert set(run_units(other, clock, speed, 10)) != {1}  # another kind measures
    clock.t += threads.HOLD_SECONDS[1]
    with ThreadTuner("gram", clock=clock) as later:
        assert set(run_units(later, clock, speed, 10)) != {1}  # too long ago: measure


def test_counts_the_machine_has_no_free_cores_for_are_not_tried(blas, monkeypatch):
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 4)
    clock = Clock()
    speed = {1: 1e-4, 2: 6e-5, 4: 3e-5}
    # two threads of other work running beside ours: room for 2 threads, not for 4
    with ThreadTuner(clock=clock, running=lambda: 2 + blas.now) as tuner:
        used = run_units(tuner, clock, speed, 100)
    assert 4 not in used and tuner.chosen == 2
    # the machine is full: one thread, with no measurement of more
    with ThreadTuner("full", clock=clock, running=lambda: 4 + blas.now) as tuner:
        assert run_units(tuner, clock, speed, 50) == [1] * 50


def test_tuned_products_equal_the_plain_ones():
    from aecli.blas_threads import tuned_matmul
    from aecli.estimators.eigen import gram

    rng = np.random.default_rng(0)
    A = rng.standard_normal((70_000, 9)).astype(np.float32)  # several blocks of rows
    B = rng.standard_normal((9, 300))
    out = tuned_matmul(A, B, np.float64)
    assert out.dtype == np.float64 and out.shape == (70_000, 300)
    np.testing.assert_allclose(out, A.astype(np.float64) @ B, rtol=1e-12, atol=1e-12)
    X = rng.standard_normal((50_000, 40))
    mean = X.mean(axis=0)
    np.testing.assert_allclose(gram(X), X.T @ X, rtol=1e-10)
    np.testing.assert_allclose(gram(X, mean), (X - mean).T @ (X - mean), rtol=1e-10)
