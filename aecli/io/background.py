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


class ReadAhead:
    """Iterate ``stream`` while a thread reads up to ``depth`` items ahead of the consumer.

    Memory holds at most ``depth + 1`` items. An exception raised while reading is raised to
    the consumer at the point its item would have come. ``close`` (or leaving the ``with``
    block) stops the thread first and only then closes ``stream``, so the stream is never
    closed while the thread is inside it.
    """

    def __init__(self, stream: Iterable[T], depth: int = 1):
        self.stream = stream
        self._ahead: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._ahead.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _read(self) -> None:
        try:
            for item in self.stream:
                if not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as e:  # handed over to the consumer, which raises it
            self._put(_Failed(e))

    def __iter__(self) -> Iterator[T]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._read, name="aecli-read", daemon=True)
            self._thread.start()
        while True:
            item = self._ahead.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item

    def close(self) -> None:
        """Stop the reading thread, then close the stream."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            if self._thread.is_alive():
                return  # still blocked in a read (a silent pipe): the process is ending
        close = getattr(self.stream, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
