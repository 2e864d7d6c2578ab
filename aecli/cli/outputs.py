"""No output of a command overwrites its input, its model, or another of its outputs.

``encode m.npz data.csv -o data.csv`` would replace the table with its codes, and
``train ... -o x.npz --plot x.npz`` leaves a PNG where the model should be. Each command
therefore names its inputs and outputs here before it does any work, and a collision is an
``OutputError`` (exit 2) that names both roles.

Two paths are the same file when they resolve to the same place (symbolic links followed) or,
when both exist, have the same device and inode (hard links). stdin and stdout (``-``), URLs,
and devices or pipes (``/dev/null``: written in place, never replaced) never collide. A
directory input (a Parquet dataset) collides with an existing output inside it; a glob input
with each file it matches. Rows written to stdout collide with an input when stdout is that
file (``encode m.npz data.csv >> data.csv`` would read its own output without end).
"""

from __future__ import annotations

import functools
import glob
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..errors import OutputError
from ..pipeline.sinks import is_glob, is_url

Paths = Mapping[str, "str | os.PathLike | None"]
STDOUT = object()  # stands for the file descriptor 1 among a command's outputs


@dataclass(frozen=True)
class _Place:
    real: str  # the resolved path
    inode: tuple[int, int] | None  # (st_dev, st_ino) when the file exists
    is_dir: bool


def _place(path: str) -> _Place | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        st = None
    if st is not None and not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        return None  # a device or a pipe: written in place, nothing in it to lose
    return _Place(os.path.realpath(path), (st.st_dev, st.st_ino) if st else None,
                  st is not None and stat.S_ISDIR(st.st_mode))


def _places(path) -> list[_Place]:
    """Where ``path`` is on disk: none for stdin/stdout and URLs, each match of a glob."""
    if path is None:
        return []
    if path is STDOUT:  # a regular file when redirected to one (> file, >> file)
        try:
            st = os.fstat(1)
        except OSError:
            return []
        return [_Place("", (st.st_dev, st.st_ino), False)] if stat.S_ISREG(st.st_mode) else []
    text = os.fspath(path)
    if text in ("", "-") or is_url(text):
        return []
    if is_glob(text) and not os.path.exists(text):
        return [p for p in map(_place, sorted(glob.glob(text))) if p is not None]
    place = _place(text)
    return [] if place is None else [place]


def _same(out: _Place, other: _Place, other_is_input: bool) -> bool:
    if out.real == other.real or (out.inode is not None and out.inode == other.inode):
        return True
    # An existing file inside an input directory is one of that dataset's files.
    return (other_is_input and other.is_dir and out.inode is not None
            and out.real.startswith(other.real.rstrip(os.sep) + os.sep))


def refuse_collisions(inputs: Paths, outputs: Paths) -> None:
    """Refuse outputs that would overwrite an input or each other.

    Parameters
    ----------
    inputs : mapping of str to path or None
        Each input by its role as a user reads it (``"the input DATA"``,
        ``"the model MODEL"``); ``None`` or ``"-"`` (stdin) is skipped.
    outputs : mapping of str to path or None
        Each output by its option (``"-o"``, ``"--plot"``); ``None`` or ``"-"`` is skipped,
        and :data:`STDOUT` is the file stdout is redirected to, if any.

    Raises
    ------
    OutputError
        An output is the same file as an input or as an earlier output, e.g.
        ``-o data.csv is also the input DATA``.
    """
    known = [(role, place, True) for role, path in inputs.items() for place in _places(path)]
    for option, path in outputs.items():
        for place in _places(path):
            for role, other, is_input in known:
                if _same(place, other, is_input):
                    what = role if is_input else f"the {role} output"
                    if is_input and other.is_dir and place.real != other.real:
                        what = f"a file of {role} (a directory)"
                    named = "stdout" if path is STDOUT else f"{option} {os.fspath(path)}"
                    raise OutputError(
                        f"{named} is also {what}",
                        hint=("redirect stdout elsewhere" if path is STDOUT
                              else f"give {option} another path")
                        + ": aecli never writes over its input, its model, or another of "
                        "its outputs",
                    )
            known.append((option, place, False))


def refusing_stream_collisions(command: Callable) -> Callable:
    """Wrap ``encode``/``reconstruct``/``score``: refuse an ``-o`` or ``--plot`` that is the
    model, the input or the other output, before the command reads anything."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        output = getattr(kwargs.get("io"), "output", None)
        refuse_collisions({"the model MODEL": kwargs.get("model"),
                           "the input DATA": kwargs.get("data")},
                          {"-o": output, "--plot": kwargs.get("plot"),
                           "stdout": STDOUT if output in (None, "-") else None})
        return command(*args, **kwargs)

    return wrapper
