"""Where a cluster run connects: the ``--scheduler`` address checked before anything is
tried, the scheduler reached within a time limit, and ``local:N`` started here.

Dask's own client waits without limit for the greeting of whatever answers on the port (an
HTTP server sends none: a run hung until it was killed), and reads the first eight bytes of
any other greeting as the size of a message to allocate (an SSH banner asked for 2.82 EiB).
So before Dask connects, :func:`probe` opens the port itself and reads the greeting with a
deadline: a Dask scheduler sends a small, framed handshake at once, and anything else is
named for what it is. Dask's connection then runs under the same deadline as a backstop.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import AecliError, InvalidParameterError

SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"  # the address distributed.Client() reads too
TIMEOUT_ENV = "AECLI_CONNECT_TIMEOUT"  # seconds to reach the scheduler
CONNECT_TIMEOUT = 5.0  # a scheduler greets within milliseconds, even across a region
SCHEMES = ("tcp", "tls")  # the transports a scheduler listens on without extra packages
WORKERS_PER_CORE = 4  # local:N beyond this many processes per core only thrashes
GREETING_MOST = 1 << 20  # a Dask handshake is about 60 bytes; anything near this is not one
EXAMPLES = "tcp://HOST:8786, HOST:8786, or local:N to start N worker processes here"

_HOST = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]+\]", re.ASCII)
_DIGITS = re.compile(r"[0-9]{1,6}", re.ASCII)


@dataclass(frozen=True)
class Address:
    """A checked scheduler address: ``scheme`` "local" (``workers`` processes here), or a
    transport with a host and a port."""

    scheme: str
    host: str = ""
    port: int = 0
    workers: int = 0

    def __str__(self) -> str:
        if self.scheme == "local":
            return f"local:{self.workers}"
        return f"{self.scheme}://{self.host}:{self.port}"


def parse_address(text: str, source: str = "--scheduler") -> Address:
    """``text`` as a scheduler address: ``local``, ``local:N``, ``tcp://HOST:PORT``,
    ``tls://HOST:PORT`` or ``HOST:PORT`` (tcp). ``source`` names where it came from.

    Raises
    ------
    InvalidParameterError
        Anything else, before any connection is tried.
    """
    def bad(why: str) -> InvalidParameterError:
        return InvalidParameterError(f"{source} {text!r}: {why}", hint=f"give {EXAMPLES}")

    text = text.strip()
    if text == "local" or text.startswith("local:"):
        count = text.partition(":")[2]
        most = WORKERS_PER_CORE * (os.cpu_count() or 1)
        if not count:
            return Address("local", workers=os.cpu_count() or 1)
        if not _DIGITS.fullmatch(count) or not 1 <= int(count) <= most:
            raise bad(f"local:N takes a number of worker processes from 1 to {most} "
                      f"({WORKERS_PER_CORE} per core here)")
        return Address("local", workers=int(count))
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "tcp", text
    elif scheme.lower() not in SCHEMES:
        raise bad(f"{scheme}:// is not a transport of a Dask scheduler "
                  f"({', '.join(s + '://' for s in SCHEMES)})")
    host, colon, port = rest.rstrip("/").rpartition(":")
    if not colon or not host:
        raise bad("no port: a scheduler's address ends in :PORT (Dask's default is 8786)"
                  if rest and ":" not in rest.strip("[]") else "not HOST:PORT")
    if not _HOST.fullmatch(host):
        raise bad(f"{host!r} is not a host name or IP address")
    if not _DIGITS.fullmatch(port) or not 1 <= int(port) <= 65535:
        raise bad(f"the port {port!r} is not a number from 1 to 65535")
    return Address(scheme.lower(), host, int(port))


def connect_timeout() -> float:
    """Seconds to reach the scheduler: ``AECLI_CONNECT_TIMEOUT``, else ``CONNECT_TIMEOUT``."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return CONNECT_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds <= 3600:
        raise InvalidParameterError(f"{TIMEOUT_ENV}={text!r}: not a number of seconds",
                                    hint=f"give seconds from 0.1 to 3600, e.g. "
                                    f"{TIMEOUT_ENV}=30; unset, it is {CONNECT_TIMEOUT:g}")
    return seconds


def _unreachable(address: Address, why: str, hint: str | None = None) -> AecliError:
    return AecliError(f"cannot reach the Dask scheduler at {address} ({why})",
                      hint=hint or "check the address (tcp://HOST:8786, as `dask scheduler` "
                      "prints it) and that the scheduler runs; --scheduler local:2 starts "
                      "one here")


def _shown(data: bytes) -> str:
    """The start of what a port sent, printable."""
    text = data[:40].decode("ascii", "replace")
    return "".join(c if c.isprintable() and c != "\ufffd" else "." for c in text).strip()


def probe(address: Address, timeout: float) -> None:
    """Open ``address`` and read its greeting within ``timeout`` seconds: a Dask
    scheduler's is one small framed message, sent as soon as it accepts.

    Raises
    ------
    AecliError
        Nothing listens, nothing answers in time, or the answer is not Dask's.
    """
    deadline = time.monotonic() + timeout
    not_dask = ("check the port: a Dask scheduler listens on 8786 by default, its dashboard "
                "(HTTP) on 8787")
    try:
        sock = socket.create_connection((address.host.strip("[]"), address.port),
                                        timeout=timeout)
    except TimeoutError:
        raise _unreachable(address, f"no answer within {timeout:g} s") from None
    except OSError as e:
        raise _unreachable(address, e.strerror or str(e)) from None
    data = b""
    with sock:
        try:
            while len(data) < 8 or len(data) < 8 + _size(data):
                if len(data) >= 8 and not 8 <= _size(data) <= GREETING_MOST:
                    raise _unreachable(address, f"it answered, but not as a Dask scheduler: "
                                       f"it sent {_shown(data)!r}", not_dask)
                sock.settimeout(max(deadline - time.monotonic(), 1e-3))
                chunk = sock.recv(65536)
                if not chunk:
                    raise _unreachable(address, "it closed the connection without a Dask "
                                       "greeting" + (f", after {_shown(data)!r}" if data
                                                     else ""), not_dask)
                data += chunk
        except TimeoutError:
            said = f"; it sent {_shown(data)!r}" if data else ""
            raise _unreachable(address, f"a service answers on the port but sent no Dask "
                               f"greeting within {timeout:g} s{said}: an HTTP server, or a "
                               "scheduler that wants tls://?",
                               not_dask + f"; a slow network may need {TIMEOUT_ENV}=30"
                               ) from None
        except OSError as e:
            raise _unreachable(address, e.strerror or str(e)) from None


def _size(data: bytes) -> int:
    return struct.unpack("<Q", data[:8])[0]


def require_dask():
    """The ``distributed`` module, or an error naming the extra that installs it."""
    try:
        import distributed
    except ImportError:
        raise AecliError("running on a Dask cluster needs the dask extra, which is not "
                         "installed", hint="pip install 'aecli[dask]'") from None
    return distributed


def _client(distributed, address: Address, timeout: float):
    """Dask's client of ``address``, given up on after about twice ``timeout`` (its own
    connect limit, then the handshake, whose read has no limit of its own)."""
    box: dict = {}

    def attempt():
        try:
            box["client"] = distributed.Client(str(address), timeout=f"{timeout}s")
        except BaseException as e:  # handed to the caller, whatever it is
            box["error"] = e

    thread = threading.Thread(target=attempt, name="aecli-connect", daemon=True)
    thread.start()
    most = 2 * timeout + 1.0
    thread.join(most)
    if thread.is_alive():  # left behind as a daemon: the command ends with this error
        raise _unreachable(address, f"no Dask handshake within {most:g} s")
    error = box.get("error")
    if isinstance(error, (KeyboardInterrupt, SystemExit)):
        raise error
    if error is not None:  # Dask's own failure, whatever its type: the port said something odd
        hint = ("tls:// needs Dask's TLS settings (distributed.comm.tls in the Dask "
                "configuration, or DASK_DISTRIBUTED__COMM__TLS__* variables)"
                if address.scheme == "tls" else None)
        raise _unreachable(address, f"{type(error).__name__}: {error}"[:300], hint) from None
    return box["client"]


@contextmanager
def connect(scheduler: str | Address, verbose: Callable[[str], None] | None = None,
            source: str = "--scheduler"):
    """A Dask client for ``scheduler`` (see :func:`parse_address`), or, for ``local`` /
    ``local:N``, of a cluster of N worker processes on this machine for the duration."""
    address = scheduler if isinstance(scheduler, Address) else parse_address(scheduler, source)
    distributed = require_dask()
    cluster = None
    try:
        if address.scheme == "local":
            # silence_logs: a worker logs each failed task with its traceback; the error
            # itself reaches the user once, as a message, from the client
            cluster = distributed.LocalCluster(n_workers=address.workers, threads_per_worker=1,
                                               processes=True, dashboard_address=":0",
                                               silence_logs=logging.CRITICAL)
            client = distributed.Client(cluster)
        else:
            timeout = connect_timeout()
            if address.scheme == "tcp":  # a TLS greeting comes after a handshake of its own
                probe(address, timeout)
            client = _client(distributed, address, timeout)
        if verbose is not None:
            link = getattr(client, "dashboard_link", None)
            verbose(f"Dask scheduler {client.scheduler.address}"
                    + (f", dashboard {link}" if link else ""))
        try:
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()
