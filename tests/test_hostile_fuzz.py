"""Property-based fuzzing: whatever bytes arrive as a table or as a model file, aecli either works
or says clearly why not (exit 0 or 2), never with an internal error, and never leaves a model or
a temporary file behind when it fails."""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from conftest import run
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

FUZZ = settings(max_examples=50, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])




def assert_handled(result, allowed=(0, 2)) -> None:
    text = result.output
    assert result.exit_code in allowed, text
    assert "Traceback" not in text, text
    assert "internal error" not in text, text
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception)


# -- tables -------------------------------------------------------------------------------------
NAMES = st.one_of(
    st.sampled_from(["a", "b", "x1", "price", "é", "日本", "", " ", "a", "[/]", '"q"', "NA",
                     "1", "a b", "\ufeffa"]),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=6),
)
CELLS = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "NA", "nan", "inf", "-inf", "1e400", "-1e39", "1e300", "x", '"3"',
                     '"1,5"', "1,5", "0x10", " 7 ", "true", "None", "#N/A", '"', "''"]),
    st.text(max_size=5),
)


NUMBERS = st.one_of(st.integers(-1000, 1000).map(str),
                    st.floats(-1e6, 1e6, allow_nan=False).map(repr))
WORDS = st.sampled_from(["x", "y", "red", "a b", "é", ""])


@st.composite
def tables(draw) -> bytes:
    """Delimited text, about half of it usable: each column is numbers, words, or anything."""
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    n_cols = draw(st.integers(1, 5))
    tidy = draw(st.booleans())
    if tidy:
        header = draw(st.lists(st.sampled_from(["a", "b", "x1", "price", "é", "日本", "[/]",
                                                "a b", "NA", "1"]),
                               min_size=n_cols, max_size=n_cols, unique=True))
        kinds = draw(st.lists(st.sampled_from([NUMBERS, NUMBERS, NUMBERS, WORDS, CELLS]),
                              min_size=n_cols, max_size=n_cols))
    else:
        header = [draw(NAMES) for _ in range(n_cols)]
        kinds = [CELLS] * n_cols
    rows = []
    for _ in range(draw(st.integers(0, 25))):
        if tidy or draw(st.integers(0, 9)):
            rows.append([draw(kind) for kind in kinds])
        else:  # ragged
            rows.append([draw(CELLS) for _ in range(draw(st.integers(0, n_cols + 2)))])
    quote = draw(st.booleans()) and tidy
    lines = [delimiter.join(f'"{c}"' if quote else c for c in r) for r in [header, *rows]]
    text = "\n".join(lines) + ("\n" if draw(st.booleans()) else "")
    data = text.encode("utf-8")
    if draw(st.integers(0, 9)) == 0:
        data = b"\xef\xbb\xbf" + data
    if not tidy and draw(st.integers(0, 4)) == 0:  # garbage spliced in
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
    return data


@FUZZ
@given(data=tables(), stdin=st.booleans())
def test_train_survives_any_table(data, stdin):
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "model.npz"
        args = ["train", "-o", out, "--epochs", "1", "--hidden", "2", "-k", "1", "-q",
                "--batch-size", "8"]
        if stdin:
            result = run(*args, "-", input=data)
        else:
            (Path(d) / "in.csv").write_bytes(data)
            result = run(*args, Path(d) / "in.csv")
        assert_handled(result)
        event(f"exit {result.exit_code}")  # see --hypothesis-show-statistics
        assert out.exists() == (result.exit_code == 0)
        leftovers = sorted(set(os.listdir(d)) - {"model.npz", "in.csv"})
        assert leftovers == [], leftovers


# -- model files --------------------------------------------------------------------------------
def _real_model() -> tuple[bytes, bytes]:
    """The bytes of a small real model, and data it can encode."""
    rows = "".join(f"{i * 5 % 31},{i * 2 % 7},{i % 3}\n" for i in range(30))  # no row number
    data = ("a,b,c\n" + rows).encode()
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "m.npz"
        result = run("train", "-", "-o", out, "--epochs", "2", "--hidden", "4", "-q", input=data)
        assert result.exit_code == 0, result.output
        return out.read_bytes(), data


MODEL, DATA = _real_model()


@st.composite
def mutated_models(draw) -> bytes:
    blob = bytearray(MODEL)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "overwrite"]))
        at = draw(st.integers(0, max(len(blob) - 1, 0)))
        if kind == "flip" and blob:
            blob[at] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del blob[at:]
        elif kind == "insert":
            blob[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete":
            del blob[at:at + draw(st.integers(1, 64))]
        else:
            chunk = draw(st.binary(min_size=1, max_size=8))
            blob[at:at + len(chunk)] = chunk
    return bytes(blob)


@st.composite
def models_with_valid_crc(draw) -> bytes:
    """A model whose one array was replaced by random bytes of the same length, repacked so the
    archive itself is sound: the checks below the zip layer must catch it."""
    with zipfile.ZipFile(io.BytesIO(MODEL)) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    name = draw(st.sampled_from(sorted(members)))
    original = members[name]
    mode = draw(st.sampled_from(["header", "data", "all"]))
    if mode == "header":  # damage the .npy header only
        cut = original.index(b"\n") + 1
        noise = draw(st.binary(min_size=cut, max_size=cut))
        members[name] = noise + original[cut:]
    elif mode == "data":
        cut = original.index(b"\n") + 1
        tail = draw(st.binary(min_size=0, max_size=len(original) - cut + 8))
        members[name] = original[:cut] + tail
    else:
        members[name] = draw(st.binary(max_size=len(original) + 8))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for n, b in members.items():
            zf.writestr(n, b)
    return out.getvalue()


def _check_model(blob: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.npz"
        path.write_bytes(blob)
        result = run("inspect", path)
        assert_handled(result)
        event(f"inspect exit {result.exit_code}")
        result = run("encode", path, "-", input=DATA)
        assert_handled(result)
        if result.exit_code == 2:
            assert result.stdout == ""
        assert_handled(run("score", path, "-", "-q", "--json", input=DATA))


@FUZZ
@given(blob=mutated_models())
def test_inspect_and_encode_survive_any_damaged_model(blob):
    _check_model(blob)


@FUZZ
@given(blob=models_with_valid_crc())
def test_inspect_and_encode_survive_damaged_arrays_in_a_sound_archive(blob):
    _check_model(blob)


def test_the_fuzzed_model_is_sound():
    # The mutations start from a model that works, so a failure is the mutation's doing.
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.npz"
        path.write_bytes(MODEL)
        assert run("inspect", path).exit_code == 0
        result = run("encode", path, "-", input=DATA)
        assert result.exit_code == 0 and result.stdout.startswith("z1,z2\n")
        with np.load(path, allow_pickle=False) as z:
            assert "meta" in z.files
