"""Read-ahead and write-behind threads: same items, same order, failures where they belong."""

import threading

import pytest

from aecli.errors import DataError, OutputError
from aecli.io.background import WriteBehind, prefetch


def test_prefetch_yields_every_item_in_order():
    assert list(prefetch(iter(range(100)), depth=3)) == list(range(100))


def test_prefetch_raises_a_read_failure_where_the_item_would_come():
    def items():
        yield 1
        yield 2
        raise DataError("line 3: not a number")

    got = []
    with pytest.raises(DataError, match="line 3"):
        for x in prefetch(items()):
            got.append(x)
    assert got == [1, 2]


def test_prefetch_reads_at_most_depth_ahead_and_stops_when_closed():
    read = []

    def items():
        for i in range(1000):
            read.append(i)
            yield i

    gen = prefetch(items(), depth=2)
    assert next(gen) == 0
    gen.close()
    assert len(read) <= 4  # the one taken, two queued, one waiting to be queued
    assert not any(t.name == "aecli-prefetch" and t.is_alive() for t in threading.enumerate())


class Sink:
    def __init__(self, fail_at=None):
        self.got, self.fail_at = [], fail_at

    def write(self, item):
        if item == self.fail_at:
            raise OutputError("disk is full")
        self.got.append(item)


def test_write_behind_writes_everything_in_order_before_close_returns():
    sink = Sink()
    with WriteBehind(sink, depth=2) as out:
        for i in range(50):
            out.write(i)
    assert sink.got == list(range(50))


def test_write_behind_raises_the_writer_failure_and_writes_nothing_after():
    sink = Sink(fail_at=5)
    with pytest.raises(OutputError, match="disk is full"):
        with WriteBehind(sink, depth=1) as out:
            for i in range(50):
                out.write(i)
    assert sink.got == [0, 1, 2, 3, 4]


def test_write_behind_stops_when_the_caller_fails():
    sink = Sink()
    with pytest.raises(KeyError):
        with WriteBehind(sink) as out:
            out.write(1)
            raise KeyError("boom")
    assert sink.got in ([], [1])
