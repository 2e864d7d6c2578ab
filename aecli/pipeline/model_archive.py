"""The model file's container, read without trusting it: a zip archive of ``.npy`` members.

Every size is checked before the bytes it sizes are read or inflated, so reading any file takes
bounded memory and time:

- the path must name a regular file (a FIFO, ``/dev/zero`` or another device is refused before
  one byte is read: opened without blocking, then checked with ``fstat``);
- the zip's central directory is at most :data:`MAX_DIRECTORY_BYTES` (read from the end record
  before :mod:`zipfile` parses it), its members are ``.npy`` files stored or deflated (the
  two methods NumPy writes), each named once;
- the members together inflate to at most :data:`MAX_META_BYTES` plus :data:`MAX_ARRAY_BYTES`
  (their headers aside), as the zip directory declares, and a large archive may not inflate more
  than :data:`MAX_INFLATION` times its compressed size: weights do not compress, zeros do;
- the metadata member is at most :data:`MAX_META_BYTES`;
- an array member is read only when the metadata lists it, its zip entry is the size the
  metadata's dtype and shape give, and its ``.npy`` header agrees (no object dtype, ever).

:mod:`zipfile` stops inflating a member at the size its directory entry declares, so a member
that inflates to more is a CRC error, not a larger buffer.
"""

from __future__ import annotations

import contextlib
import json
import lzma
import math
import os
import stat
import struct
import zipfile
import zlib

import numpy as np

from .. import __version__
from ..errors import ModelFileError

FORMAT_NAME = "aecli-model"
FORMAT_VERSION = 5
MAX_META_BYTES = 16 << 20
MAX_ARRAY_BYTES = 4 << 30  # all arrays together
MAX_DIRECTORY_BYTES = 1 << 20  # about 10,000 members; a model with 20 layers has ~600
MAX_INFLATION = 100  # weights deflate by a few percent; only filler inflates 100-fold
_INFLATION_FLOOR = 64 << 20  # a small archive may inflate as it likes: it stays small
_MAX_HEADER_BYTES = 65_536 + 12  # a .npy header: magic, version, length and the dict
_COMPRESSIONS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
ALLOWED_DTYPES = {"float32", "float64"}

NOT_MODEL_HINT = "Pass a model file written by 'aecli train -o MODEL.npz'."
ALTERED_HINT = ("The file was altered or damaged after aecli wrote it: use the original, or "
                "write a new one with 'aecli train DATA -o MODEL.npz'.")

# What zipfile and its decompressors raise on damaged or hostile archives (besides OSError).
_ARCHIVE_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError,
                   RuntimeError, zlib.error, lzma.LZMAError)
_SPECIAL = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
            (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def bad(path, what: str, hint: str = NOT_MODEL_HINT) -> ModelFileError:
    """The error for a file that is not a valid model: ``what`` says what and where."""
    return ModelFileError(f"{path}: not a valid aecli model file: {what}", hint)


def is_int(x) -> bool:
    """Whether a JSON value is an integer (``true`` is not)."""
    return isinstance(x, int) and not isinstance(x, bool)


def array_bytes(spec: dict) -> int:
    """The bytes of data a checked metadata array entry (dtype and shape) declares."""
    return math.prod(spec["shape"]) * np.dtype(spec["dtype"]).itemsize


class Archive:
    """An open model file whose path and zip directory have been checked; read the metadata
    with :meth:`meta`, then the arrays it lists with :meth:`arrays`. A context manager."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self._file = _open_regular(self.path)
        try:
            self._zip = _checked_zip(self._file, self.path)
        except BaseException:
            self._file.close()
            raise

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc) -> None:
        self._zip.close()
        self._file.close()

    def meta(self) -> dict:
        """The metadata document, decoded, of a known format version (brought to this
        version's terms), with its ``arrays`` listing checked for dtypes and shapes."""
        if "meta.npy" not in self._zip.NameToInfo:
            raise bad(self.path, "it has no aecli metadata (no member 'meta.npy')")
        with _reading(self.path):
            raw = self._read("meta", None, MAX_META_BYTES)
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise bad(self.path, "its metadata (member 'meta.npy') is not a byte string")
        return parse_meta(raw, self.path)

    def arrays(self, specs: dict[str, dict]) -> dict[str, np.ndarray]:
        """The arrays ``specs`` lists (name → dtype and shape, from checked metadata), each
        refused before it is read when its zip entry or header disagrees with its spec; the
        archive may hold nothing else."""
        members = {n[: -len(".npy")] for n in self._zip.NameToInfo} - {"meta"}
        unknown = sorted(members - set(specs))
        if unknown:
            raise bad(self.path, f"member '{unknown[0]}.npy' is not an array the metadata "
                      "lists", ALTERED_HINT)
        missing = sorted(set(specs) - members)
        if missing:
            raise bad(self.path, f"array {missing[0]!r} is missing", ALTERED_HINT)
        total = sum(array_bytes(s) for s in specs.values())
        if total > MAX_ARRAY_BYTES:
            raise bad(self.path, f"its metadata declares {total:,} bytes of arrays, more than "
                      f"the {MAX_ARRAY_BYTES:,} aecli reads", ALTERED_HINT)
        for name, spec in specs.items():  # every entry's size, before any is inflated
            stored = self._zip.getinfo(name + ".npy").file_size - array_bytes(spec)
            if not 0 < stored <= _MAX_HEADER_BYTES:
                raise bad(self.path, f"array {name!r} (member '{name}.npy') inflates to "
                          f"{stored + array_bytes(spec):,} bytes, but its metadata entry "
                          f"({spec['dtype']} {spec['shape']}) needs {array_bytes(spec):,} "
                          "and a header", ALTERED_HINT)
        with _reading(self.path):
            return {name: self._read(name, spec, array_bytes(spec))
                    for name, spec in specs.items()}

    def _read(self, name: str, spec: dict | None, max_bytes: int) -> np.ndarray:
        """One ``.npy`` member, its header checked (and against ``spec``) before its data."""
        path = self.path
        info = self._zip.getinfo(name + ".npy")
        with self._zip.open(info) as fp:
            try:
                version = np.lib.format.read_magic(fp)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
                else:
                    raise ValueError(f"unsupported .npy version {version}")
            except (ValueError, TypeError, SyntaxError, RecursionError) as e:
                raise bad(path, f"array {name!r} has a damaged header ({e})") from None
            if dtype.hasobject:
                raise bad(path, f"array {name!r} holds Python objects, which aecli never loads")
            if any(n < 0 for n in shape):
                raise bad(path, f"array {name!r} has a damaged header (shape {list(shape)})")
            if spec is not None and (dtype.name != spec["dtype"] or list(shape) != spec["shape"]):
                raise bad(path, f"array {name!r} is {dtype.name} {list(shape)}, metadata says "
                          f"{spec['dtype']} {spec['shape']}", ALTERED_HINT)
            nbytes = math.prod(shape) * dtype.itemsize
            stored = info.file_size - fp.tell()
            if nbytes > max_bytes or nbytes != stored:
                raise bad(path, f"array {name!r} declares {nbytes} bytes but stores {stored}")
            data = fp.read(nbytes)
        if len(data) != nbytes:
            raise bad(path, f"array {name!r} is truncated")
        return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")


@contextlib.contextmanager
def _reading(path: str):
    """Turn what zipfile and the file system raise while reading into ModelFileError."""
    try:
        yield
    except _ARCHIVE_ERRORS as e:
        raise bad(path, f"the archive is damaged or truncated ({e})") from None
    except OSError as e:
        raise ModelFileError(f"{path}: cannot read the model file ({e.strerror or e})",
                             "Check that the file is readable and whole.") from None


def _open_regular(path: str):
    """``path`` opened for reading once it is known to be a regular file that is not a table.

    Opened without blocking, so a FIFO with no writer cannot hang the open; ``fstat`` then
    refuses anything but a regular file before a byte is read."""
    if not os.path.exists(path):
        raise ModelFileError(f"{path}: model file not found", "Check the path, or train one "
                             "with 'aecli train DATA -o MODEL.npz'.")
    if os.path.isdir(path):
        raise ModelFileError(f"{path}: is a directory, not a model file", NOT_MODEL_HINT)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(
            os, "O_BINARY", 0))
    except OSError as e:
        raise ModelFileError(f"{path}: cannot read the model file ({e.strerror or e})",
                             "Check the file's permissions.") from None
    f = os.fdopen(fd, "rb")
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _SPECIAL if test(mode)), "not a regular file")
            raise ModelFileError(
                f"{path}: is {kind}, not a model file: aecli reads models only from regular "
                "files", NOT_MODEL_HINT)
        table = _looks_like_a_table(f)
        if table:
            raise ModelFileError(
                f"{path}: not a valid aecli model file: it is {table}",
                "The model comes first: aecli encode MODEL.npz DATA (and likewise reconstruct, "
                "score, inspect, export); 'aecli train DATA -o MODEL.npz' writes one.")
    except OSError as e:
        f.close()
        raise ModelFileError(f"{path}: cannot read the model file ({e.strerror or e})") from None
    except BaseException:
        f.close()
        raise
    return f


def _looks_like_a_table(f) -> str | None:
    """``"a Parquet file"`` or ``"a text file (a table?)"`` when the file plainly holds data
    rather than a model archive, for a message that says so; None otherwise."""
    try:
        head = f.read(512)
        f.seek(0)
    except OSError:
        return None
    if head.startswith(b"PK"):
        return None  # a zip archive: checked as a model
    if head.startswith(b"PAR1"):
        return "a Parquet file"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text.strip() and all(c.isprintable() or c in "\r\n\t" for c in text):
        return "a text file (a table?)"
    return None


def _directory_size(f) -> int | None:
    """The size of the zip's central directory as its end record says (the zip64 record's when
    there is one); None when there is no end record, which zipfile then reports."""
    size = f.seek(0, os.SEEK_END)
    tail_len = min(size, 22 + 65_535)  # the end record and the longest comment
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    f.seek(0)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return None
    (cd_size,) = struct.unpack("<I", tail[at + 12: at + 16])
    if at >= 20 and tail[at - 20: at - 16] == b"PK\x06\x07":  # zip64 locator
        (offset,) = struct.unpack("<Q", tail[at - 12: at - 4])
        if offset + 56 <= size:
            f.seek(offset)
            record = f.read(56)
            f.seek(0)
            if record[:4] == b"PK\x06\x06":
                (cd_size,) = struct.unpack("<Q", record[40:48])
    return cd_size


def _checked_zip(f, path: str) -> zipfile.ZipFile:
    """The archive in ``f``, its directory checked: bounded in size, ``.npy`` members stored or
    deflated, each named once, inflating to a bounded total."""
    with _reading(path):
        cd_size = _directory_size(f)
        if cd_size is not None and cd_size > MAX_DIRECTORY_BYTES:
            raise bad(path, f"its zip directory is {cd_size:,} bytes, more than the "
                      f"{MAX_DIRECTORY_BYTES:,} an aecli model needs")
        zf = zipfile.ZipFile(f)
    try:
        infos = zf.infolist()
        seen: set[str] = set()
        for info in infos:
            name = info.filename
            if not name.endswith(".npy") or name in seen:
                what = "is not a .npy array" if name not in seen else "appears twice"
                raise bad(path, f"member {name!r} {what}")
            seen.add(name)
            if info.compress_type not in _COMPRESSIONS:
                raise bad(path, f"member {name!r} is compressed with method "
                          f"{info.compress_type}; aecli reads stored or deflated members")
        meta = zf.NameToInfo.get("meta.npy")
        if meta is not None and meta.file_size > MAX_META_BYTES + _MAX_HEADER_BYTES:
            raise bad(path, f"its metadata (member 'meta.npy') inflates to "
                      f"{meta.file_size:,} bytes, more than the {MAX_META_BYTES:,} aecli reads")
        total = sum(i.file_size for i in infos)
        packed = sum(i.compress_size for i in infos)
        limit = MAX_META_BYTES + MAX_ARRAY_BYTES + len(infos) * _MAX_HEADER_BYTES
        if total > limit:
            raise bad(path, f"its members inflate to {total:,} bytes, more than the "
                      f"{limit:,} an aecli model can hold")
        if total > _INFLATION_FLOOR and total > MAX_INFLATION * max(packed, 1):
            raise bad(path, f"its members inflate {total / max(packed, 1):,.0f}-fold, to "
                      f"{total:,} bytes: a model's weights do not compress like that")
    except BaseException:
        zf.close()
        raise
    return zf


def _reject_constant(name: str):
    # JSON's NaN and Infinity: the writer never emits them (allow_nan=False).
    raise ValueError(f"{name} is not a JSON number")


def parse_meta(raw: np.ndarray, path) -> dict:
    """The metadata document from its bytes: an aecli model's, of a format this aecli reads
    (an older version's brought to this version's terms, see :data:`_MIGRATIONS`), with every
    ``arrays`` entry a float dtype and a shape."""
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise bad(path, f"its metadata is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise bad(path, "its metadata does not describe an aecli model")
    version = meta.get("format_version")
    if not is_int(version) or version < 1:
        raise bad(path, "its metadata has no valid format version ('format_version')")
    if version > FORMAT_VERSION:
        written_by = meta.get("aecli_version")
        raise ModelFileError(
            f"{path}: written in model format {version} (by aecli "
            f"{written_by if isinstance(written_by, str) else '?'}), which is newer than this "
            f"aecli ({__version__}) can read: it reads model format {FORMAT_VERSION} and older",
            "Upgrade aecli (pip install -U aecli) to read this model.",
        )
    if not isinstance(meta.get("arrays"), dict):
        raise bad(path, "its metadata lists no arrays ('arrays')")
    for older in range(version, FORMAT_VERSION):  # each step brings one version to the next
        meta = _MIGRATIONS[older](meta, path)
    for name, spec in meta["arrays"].items():
        if not isinstance(spec, dict) or spec.get("dtype") not in ALLOWED_DTYPES:
            raise bad(path, f"array {name!r} has a dtype aecli does not use "
                      f"(metadata 'arrays.{name}.dtype')")
        shape = spec.get("shape")
        if not isinstance(shape, list) or not all(is_int(n) and n >= 0 for n in shape) or (
                len(shape) > 2):
            raise bad(path, f"array {name!r} has no valid shape in the metadata "
                      f"('arrays.{name}.shape')")
    return meta


def _from_version_1(meta: dict, path) -> dict:
    """A version-1 document in version 2's terms: its ``metrics``, ``threshold`` and
    ``info.summary`` become the one ``summary`` record, with what version 2 added to it:
    aecli 0.1 ran Adam for the epochs it records, and kept no count of calibration rows."""
    info = meta.get("info", {})
    if not isinstance(meta.get("metrics"), dict) or not isinstance(info, dict):
        raise bad(path, "its metadata has no valid 'metrics'")
    old = info.get("summary", {})
    summary = {k: v for k, v in old.items() if k != "early_stopped"} if isinstance(
        old, dict) else {}
    summary.update(meta["metrics"], threshold=meta.get("threshold"))
    loss = summary.get("loss_history")
    summary = {"optimizer": "adam", "epochs_budget": len(loss) if isinstance(loss, list) else None,
               "stop_reason": "plateau" if summary.get("stopped_early") else "budget",
               "calibration_rows": None, **summary}
    rest = {k: v for k, v in meta.items() if k not in ("metrics", "threshold")}
    return {**rest, "summary": summary, "info": {k: v for k, v in info.items()
                                                   if k != "summary"}}


def _from_version_2(meta: dict, path) -> dict:
    """Version 3 added categorical columns and ``bad_values``: a version-2 model has none and
    refused bad values."""
    return {"categorical": [], "bad_values": "error", **meta}


def _from_version_3(meta: dict, path) -> dict:
    """Version 4 added the code term of the score: an older model scores by the error alone,
    as it did when written."""
    if isinstance(meta.get("params"), dict):
        meta = {**meta, "params": {**meta["params"], "score_by": "error"}}
    return meta


def _from_version_4(meta: dict, path) -> dict:
    """Version 5 added the fold models of a small table's ensemble, which a model may lack:
    nothing to fill in."""
    return meta


# Format version -> the step that brings its documents to the next version's terms.
_MIGRATIONS = {1: _from_version_1, 2: _from_version_2, 3: _from_version_3, 4: _from_version_4}
