"""Read-ahead and write-behind threads: same items, same order, failures where they belong."""

import threading
import time

import pytest

from aecli.errors import DataError, OutputError
from aecli.io.background import ReadAhead, WriteBehind


def test_read_ahead_yields_every_item_in_order():
    with ReadAhead(iter(range(100)), depth=3) as items:
        assert list(items) == list(range(100))


def test_read_ahead_raises_a_read_failure_where_the_item_would_come():
    def items():
        yield 1
        yield 2
        raise DataError("line 3: not a number")

    got = []
    with pytest.raises(DataError, match="line 3"):
        for x in ReadAhead(items()):
            got.append(x)
    assert got == [1, 2]


class Stream:
    """A stream that counts what was read and fails if closed while being read."""

    def __init__(self, n):
        self.read, self.n, self.busy, self.closed = [], n, False, False

    def __iter__(self):
        for i in range(self.n):
            self.busy = True
            time.sleep(0.02)  # a slow read: closing now would land inside it
            self.read.append(i)
            self.busy = False
            yield i

    def close(self):
        assert not self.busy, "closed while the reader was inside it"
        self.closed = True


def test_read_ahead_reads_at_most_depth_ahead_and_stops_the_thread_before_closing():
    stream = Stream(1000)
    reader = ReadAhead(stream, depth=2)
    items = iter(reader)
    assert next(items) == 0
    reader.close()
    assert stream.closed
    assert len(stream.read) <= 4  # the one taken, two queued, one waiting to be queued
    assert not any(t.name == "aecli-read" and t.is_alive() for t in threading.enumerate())


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
