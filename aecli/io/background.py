"""Read ahead and write behind on background threads, so I/O overlaps the work on a batch.

pyarrow parses and decompresses with the GIL released, and so does NumPy's arithmetic; on two
cores, reading the next batch while the model encodes this one brings a stream's time down to
the slower of the two instead of their sum.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


def prefetch(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """Yield ``items`` while a thread reads up to ``depth`` of them ahead.

    Memory holds at most ``depth + 1`` items. An exception raised while reading is raised
    here, in the consumer's thread, at the point the item would have come. Closing the
    generator early stops the reader.
    """
    ahead: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as e:  # handed over to the consumer, which raises it
            put(_Failed(e))

    reader = threading.Thread(target=read, name="aecli-prefetch", daemon=True)
    reader.start()
    try:
        while True:
            item = ahead.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        reader.join(timeout=5)


class WriteBehind:
    """Hand batches to ``writer.write`` on a background thread, ``depth`` at most in flight.

    A failure on the thread (a full disk, a closed pipe) is raised in the caller's thread at
    its next ``write`` or at ``close``; after one, nothing more is written.
    """

    def __init__(self, writer, depth: int = 1):
        self._writer = writer
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="aecli-write", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if self._error is None:
                try:
                    self._writer.write(item)
                except BaseException as e:  # handed over to the caller, which raises it
                    self._error = e

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def write(self, batch) -> None:
        """Queue ``batch`` for writing (blocks while ``depth`` batches wait)."""
        self._raise()
        self._queue.put(batch)

    def close(self) -> None:
        """Wait until every queued batch is written; raise the thread's failure, if any."""
        self._queue.put(_DONE)
        self._thread.join()
        self._raise()

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:  # the caller failed: stop the thread, keep the caller's exception
            self._error = self._error or exc
            self._queue.put(_DONE)
            self._thread.join()
