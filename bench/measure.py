"""How the benchmark measures: wall time of a callable, and time and peak memory of a child.

Every figure is a ratio between aecli and a reference timed in the same run, the same way:
in-process work as the best of a few repeats (noise from other processes only ever adds time),
whole commands as fresh child processes whose peak RSS comes from the kernel (``wait4``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass


def best_time(fn: Callable[[], object], repeat: int) -> float:
    """Shortest wall time in seconds of ``repeat`` calls of ``fn``."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


@dataclass(frozen=True)
class ChildRun:
    """One finished child process."""

    seconds: float
    max_rss: int  # bytes: the child's peak resident set size, as the kernel counted it
    stderr: str


class ChildFailed(RuntimeError):
    """A measured command exited non-zero."""


# Runs in a small Python of its own and starts the measured command from there. Linux counts a
# forked child's peak RSS from its parent's size at the fork, so a child of this (large)
# process would report at least this process's memory; a child of the wrapper reports its own.
_WRAPPER = """
import json, os, subprocess, sys, time
started = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "maxrss": usage.ru_maxrss,
                  "code": os.waitstatus_to_exitcode(status)}))
"""


def run_child(argv: list[str]) -> ChildRun:
    """Run ``argv`` to completion in a fresh process; its stdout is discarded.

    The time is the child's wall time from start to exit; the peak RSS is the child's own
    (``wait4``'s rusage, ``getrusage(RUSAGE_CHILDREN)`` of a parent that had only this child).
    """
    with tempfile.TemporaryFile() as err:
        done = subprocess.run([sys.executable, "-c", _WRAPPER, *argv], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=err, check=False)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if done.returncode != 0:
        raise ChildFailed(f"the wrapper of {' '.join(argv)} failed:\n{stderr[-2000:]}")
    result = json.loads(done.stdout)
    if result["code"] != 0:
        raise ChildFailed(f"{' '.join(argv)} exited {result['code']}:\n{stderr[-2000:]}")
    rss_unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, else KiB
    return ChildRun(result["seconds"], result["maxrss"] * rss_unit, stderr)


def drop_into_page_cache(path: str) -> None:
    """Read a file once so that every timed run finds it in the page cache alike."""
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass
