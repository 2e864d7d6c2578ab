"""Damaged, foreign and hostile model files: a clear error (exit 2), never a traceback, never code.

SPEC, "The model file": a newer major format, a missing or mis-shaped array, a truncated file,
or anything that is not an aecli model is a clear error, never a traceback and never code
execution. Each case below starts from a real model and breaks one thing.
"""

from __future__ import annotations

import io
import json
import re
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from aecli.cli.app import app
from aecli.errors import EXIT_USAGE, ModelFileError
from aecli.pipeline import modelfile

ROWS = "".join(f"{i},{i * 2 % 7},{i % 3}\n" for i in range(30))
NOT_A_MODEL = "not a valid aecli model file"
PACKAGE = Path(modelfile.__file__).resolve().parent.parent  # the aecli package


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(model path, data path, the model's bytes) of a small real model over a, b, c."""
    d = tmp_path_factory.mktemp("model")
    data = d / "data.csv"
    data.write_text("a,b,c\n" + ROWS)
    model = d / "model.npz"
    result = run("train", data, "-o", model, "-q", "--epochs", "2", "--hidden", "4")
    assert result.exit_code == 0, result.output
    return model, data, model.read_bytes()


# -- building broken files ----------------------------------------------------------------------
def members_of(blob: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def pack(members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, array, allow_pickle=True)  # object arrays: the attack
    return out.getvalue()


def npy_header(shape, descr="<f8", payload=b"") -> bytes:
    """A .npy header declaring ``shape`` followed by ``payload`` (not what it declares)."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        out, {"descr": descr, "fortran_order": False, "shape": shape})
    return out.getvalue() + payload


def meta_of(members: dict[str, bytes]) -> dict:
    raw = np.lib.format.read_array(io.BytesIO(members["meta.npy"]), allow_pickle=False)
    return json.loads(raw.tobytes())


def meta_member(meta) -> bytes:
    text = meta if isinstance(meta, (str, bytes)) else json.dumps(meta)
    data = text.encode() if isinstance(text, str) else text
    return npy(np.frombuffer(data, dtype=np.uint8))


def with_meta(members: dict[str, bytes], **changes) -> bytes:
    return pack({**members, "meta.npy": meta_member({**meta_of(members), **changes})})


def with_member(members: dict[str, bytes], name: str, data: bytes, **meta_changes) -> bytes:
    changed = {**members, name: data}
    if meta_changes:
        changed["meta.npy"] = meta_member({**meta_of(members), **meta_changes})
    return pack(changed)


def arrays_spec(members, name, dtype, shape) -> dict:
    return {**meta_of(members)["arrays"], name: {"dtype": dtype, "shape": shape}}


def summary(members, **changes) -> dict:
    return {**meta_of(members)["summary"], **changes}


def layer(members, i: int, **changes) -> list:
    arch = meta_of(members)["architecture"]
    arch[i] = {**arch[i], **changes}
    return arch


def without_code_statistics(members, **params) -> bytes:
    meta = meta_of(members)
    kept = {k: v for k, v in members.items() if not k.startswith("score.")}
    arrays = {k: v for k, v in meta["arrays"].items() if not k.startswith("score.")}
    return with_meta(kept, params={**meta["params"], **params}, arrays=arrays)


BROKEN = {
    # -- not a zip / damaged archive
    "empty file": lambda m, b: b"",
    "truncated to half": lambda m, b: b[: len(b) // 2],
    "truncated before the end record": lambda m, b: b[:-10],
    "first 100 bytes": lambda m, b: b[:100],
    "wrong magic": lambda m, b: b"PK\x05\x09" + b[4:],
    "not a zip at all": lambda m, b: b"a,b,c\n1,2,3\n",
    "a bare .npy": lambda m, b: npy(np.arange(3.0)),
    "flipped byte in an array": lambda m, b: b[:300] + bytes([b[300] ^ 0xFF]) + b[301:],
    "flipped byte in the central directory": lambda m, b: (
        b[: len(b) - 40] + bytes([b[len(b) - 40] ^ 0x5A]) + b[len(b) - 39:]),
    "zeroed tail": lambda m, b: b[: len(b) // 3] + bytes(len(b) - len(b) // 3),
    # -- a zip, but not an aecli model
    "an npz of other arrays": lambda m, b: pack({"x.npy": npy(np.arange(3.0))}),
    "an empty zip": lambda m, b: pack({}),
    "metadata is not JSON": lambda m, b: with_member(m, "meta.npy", meta_member("{not json")),
    "metadata is not UTF-8": lambda m, b: with_member(m, "meta.npy", meta_member(b"\xff\xfe")),
    "metadata is a list": lambda m, b: with_member(m, "meta.npy", meta_member("[1, 2]")),
    "metadata of another format": lambda m, b: with_meta(m, format="other-model"),
    "metadata as float64": lambda m, b: with_member(m, "meta.npy", npy(np.zeros(4))),
    "metadata nested 100000 deep": lambda m, b: with_member(m, "meta.npy",
                                                            meta_member("[" * 100_000)),
    "metadata with NaN": lambda m, b: with_member(
        m, "meta.npy", meta_member(json.dumps(meta_of(m)).replace(
            '"threshold": ', '"threshold": NaN, "x": '))),
    "metadata with a 5000-digit number": lambda m, b: with_member(
        m, "meta.npy", meta_member(json.dumps(meta_of(m)).replace(
            '"threshold": ', '"threshold": ' + "9" * 5000 + ', "x": '))),
    # -- format version
    "no format version": lambda m, b: with_meta(m, format_version=None),
    "format version as text": lambda m, b: with_meta(m, format_version="1"),
    "format version true": lambda m, b: with_meta(m, format_version=True),
    "format version 0": lambda m, b: with_meta(m, format_version=0),
    # -- arrays
    "array missing": lambda m, b: pack({k: v for k, v in m.items() if k != "scaler.scale.npy"}),
    "array of the wrong shape": lambda m, b: with_member(m, "scaler.center.npy",
                                                         npy(np.zeros(5))),
    "array of the wrong dtype": lambda m, b: with_member(m, "scaler.center.npy",
                                                         npy(np.zeros(3, dtype=np.int64))),
    "array and metadata agree on a wrong shape": lambda m, b: with_member(
        m, "scaler.center.npy", npy(np.zeros(5)),
        arrays=arrays_spec(m, "scaler.center", "float64", [5])),
    "weights of the wrong shape": lambda m, b: with_member(
        m, "layer0.W.npy", npy(np.zeros((3, 5), np.float32)),
        arrays=arrays_spec(m, "layer0.W", "float32", [3, 5])),
    "array with NaN": lambda m, b: with_member(m, "scaler.center.npy",
                                               npy(np.array([np.nan, 0.0, 0.0]))),
    "scale of zero": lambda m, b: with_member(m, "scaler.scale.npy", npy(np.zeros(3))),
    "negative shape in a header": lambda m, b: with_member(
        m, "scaler.center.npy", npy_header((-2, -3), payload=bytes(48))),
    "garbage .npy header": lambda m, b: with_member(
        m, "scaler.center.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': zzz}   \n" + bytes(24)),
    "unknown .npy version": lambda m, b: with_member(
        m, "scaler.center.npy", b"\x93NUMPY\x07\x00" + bytes(40)),
    "structured dtype": lambda m, b: with_member(
        m, "scaler.center.npy", npy(np.zeros(3, dtype=[("x", "<f8")]))),
    "array dtype not float": lambda m, b: with_meta(
        m, arrays=arrays_spec(m, "scaler.center", "int64", [3])),
    "empty calibration": lambda m, b: with_member(
        m, "calibration.quantiles.npy", npy(np.zeros(0)),
        arrays=arrays_spec(m, "calibration.quantiles", "float64", [0])),
    "decreasing calibration": lambda m, b: with_member(
        m, "calibration.quantiles.npy", npy(np.linspace(5.0, 0.0, 101))),
    "score's code statistics missing one": lambda m, b: with_meta(m, arrays={
        k: v for k, v in meta_of(m)["arrays"].items() if k != "score.code_whitening"}),
    "score's code statistics of the wrong shape": lambda m, b: with_member(
        m, "score.code_whitening.npy", npy(np.eye(3)),
        arrays=arrays_spec(m, "score.code_whitening", "float64", [3, 3])),
    "score's code weight negative": lambda m, b: with_member(
        m, "score.code_weight.npy", npy(np.array([-1.0]))),
    "score by error+code without the code statistics": lambda m, b: without_code_statistics(
        m, score_by="error+code"),
    "ensemble factor negative": lambda m, b: with_member(
        m, "ensemble.scale.npy", npy(np.array([1.0, -1.0, 1.0, 1.0, 1.0]))),
    "ensemble of a hundred models": lambda m, b: with_member(
        m, "ensemble.scale.npy", npy(np.ones(100)),
        arrays=arrays_spec(m, "ensemble.scale", "float64", [100])),
    "ensemble model missing an array": lambda m, b: with_meta(m, arrays={
        k: v for k, v in meta_of(m)["arrays"].items() if k != "member2.layer0.W"}),
    "ensemble model array of the wrong shape": lambda m, b: with_member(
        m, "member1.layer1.b.npy", npy(np.zeros(9)),
        arrays=arrays_spec(m, "member1.layer1.b", "float64", [9])),
    "ensemble model without its code statistics": lambda m, b: with_meta(m, arrays={
        k: v for k, v in meta_of(m)["arrays"].items() if not k.startswith("member3.score")}),
    # -- metadata fields
    "features not a list": lambda m, b: with_meta(m, features="abc"),
    "features repeated": lambda m, b: with_meta(m, features=["a", "a", "c"]),
    "features empty": lambda m, b: with_meta(m, features=[]),
    "dtype object": lambda m, b: with_meta(m, dtype="object"),
    "missing policy unknown": lambda m, b: with_meta(m, missing="bogus"),
    "scaler unknown": lambda m, b: with_meta(m, scaler="bogus"),
    "threshold text": lambda m, b: with_meta(m, summary=summary(m, threshold="high")),
    "threshold negative": lambda m, b: with_meta(m, summary=summary(m, threshold=-1.0)),
    "threshold absent": lambda m, b: with_meta(m, summary={
        k: v for k, v in meta_of(m)["summary"].items() if k != "threshold"}),
    "created missing": lambda m, b: with_meta(m, created=None),
    "info a list": lambda m, b: with_meta(m, info=[1, 2]),
    "params unknown key": lambda m, b: with_meta(m, params={**meta_of(m)["params"], "evil": 1}),
    "params out of range": lambda m, b: with_meta(m, params={**meta_of(m)["params"],
                                                             "latent": "x"}),
    "params disagree with layers": lambda m, b: with_meta(m, params={**meta_of(m)["params"],
                                                                     "latent": 1}),
    "summary empty": lambda m, b: with_meta(m, summary={}),
    "summary a list": lambda m, b: with_meta(m, summary=[1]),
    "a version 1 file without metrics": lambda m, b: with_meta(m, format_version=1),
    "architecture empty": lambda m, b: with_meta(m, architecture=[]),
    "architecture of numbers": lambda m, b: with_meta(m, architecture=[1, 2]),
    "activation unknown": lambda m, b: with_meta(m, architecture=layer(m, 0, activation="exec")),
    "layer sizes do not chain": lambda m, b: with_meta(m, architecture=layer(m, 1, n_in=7)),
    "layer size a float": lambda m, b: with_meta(m, architecture=layer(m, 0, n_out=4.0)),
    "tied to a later layer": lambda m, b: with_meta(m, architecture=layer(m, 0, tied_to=3)),
    "tied to a layer it cannot mirror": lambda m, b: with_meta(m, architecture=layer(
        m, 2, tied_to=0)),
    "a billion-unit layer": lambda m, b: with_meta(m, architecture=[
        {"n_in": 3, "n_out": 10**9, "activation": "elu"},
        {"n_in": 10**9, "n_out": 3, "activation": "elu"}]),
}


def broken_file(trained, tmp_path, case: str) -> Path:
    model, _, good = trained
    path = tmp_path / "broken.npz"
    path.write_bytes(BROKEN[case](members_of(good), good))
    return path


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_model_is_a_clear_error_in_the_library(trained, tmp_path, case):
    path = broken_file(trained, tmp_path, case)
    with pytest.raises(ModelFileError) as info:
        modelfile.read_model(path)
    assert info.value.exit_code == EXIT_USAGE
    assert str(path) in info.value.message


@pytest.mark.parametrize("command", ["inspect", "encode", "score"])
@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_model_is_a_clear_error_on_the_command_line(trained, tmp_path, case, command):
    path = broken_file(trained, tmp_path, case)
    _, data, _ = trained
    args = [command, path] + ([] if command == "inspect" else [data])
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert f"{path}: {NOT_A_MODEL}" in result.stderr, result.stderr
    assert "aecli train" in result.stderr  # what to do
    assert result.stdout == ""


def test_the_good_model_still_works(trained):
    model, data, good = trained
    assert "ensemble.scale.npy" in members_of(good)  # the ensemble cases above break one
    assert run("inspect", model).exit_code == 0
    assert run("score", model, data, "-q").exit_code == 0
    assert model.read_bytes() == good


def test_a_deflated_copy_of_a_model_still_reads(trained, tmp_path):
    # Tools that repack archives may compress them; the format does not forbid it.
    _, data, good = trained
    path = tmp_path / "deflated.npz"
    path.write_bytes(pack(members_of(good), zipfile.ZIP_DEFLATED))
    assert run("encode", path, data).exit_code == 0


def test_missing_model_and_directory(tmp_path, trained):
    _, data, _ = trained
    result = run("encode", tmp_path / "nope.npz", data)
    assert result.exit_code == 2 and "model file not found" in result.stderr
    result = run("inspect", tmp_path)
    assert result.exit_code == 2 and "is a directory" in result.stderr


# -- newer format -------------------------------------------------------------------------------
def test_newer_format_says_newer_and_upgrade(trained, tmp_path):
    model, data, good = trained
    path = tmp_path / "future.npz"
    path.write_bytes(with_meta(members_of(good), format_version=99, aecli_version="9.0",
                               architecture="something new"))
    for args in (["inspect", path], ["encode", path, data]):
        result = run(*args)
        assert result.exit_code == 2
        assert "Traceback" not in result.output
        assert "newer" in result.stderr and "format 99" in result.stderr
        assert "aecli 9.0" in result.stderr and "Upgrade aecli" in result.stderr


# -- pickles are never loaded -------------------------------------------------------------------
class Payload:
    """Unpickling this opens (creates) ``marker``: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("member", ["meta", "scaler.center", "layer0.W", "extra"])
def test_a_pickle_payload_never_runs(trained, tmp_path, member):
    model, data, good = trained
    marker = tmp_path / "PWNED"
    m = members_of(good)
    evil = npy(np.array([Payload(marker), 1.0, 2.0], dtype=object))
    path = tmp_path / "evil.npz"
    path.write_bytes(pack({**m, f"{member}.npy": evil}))
    for args in (["inspect", path], ["inspect", path, "--json"], ["encode", path, data],
                 ["score", path, data], ["reconstruct", path, data]):
        result = run(*args)
        assert not marker.exists(), f"{args} unpickled the payload"
        assert "Traceback" not in result.output and "internal error" not in result.output
        if member == "extra":  # an array the metadata does not list is never read at all
            assert result.exit_code == 0, result.output
        else:
            assert result.exit_code == 2, result.output
            assert NOT_A_MODEL in result.stderr and "Python objects" in result.stderr
    # The payload is real: loading the file the careless way runs it.
    with np.load(path, allow_pickle=True) as z:
        z[member]
    assert marker.exists()


def test_a_pickle_posing_as_a_model_never_runs(tmp_path):
    import pickle

    marker = tmp_path / "PWNED"
    path = tmp_path / "model.npz"
    path.write_bytes(pickle.dumps(Payload(marker)))
    result = run("inspect", path)
    assert result.exit_code == 2 and NOT_A_MODEL in result.stderr
    assert not marker.exists()
    pickle.loads(path.read_bytes())
    assert marker.exists()


FORBIDDEN = {
    "allow_pickle=True": re.compile(r"allow_pickle\s*=\s*True"),
    "import pickle": re.compile(r"^\s*(import|from)\s+(c?pickle|dill|shelve|marshal)\b", re.M),
    "pickle.load": re.compile(r"\bpickle\.loads?\b"),
    "eval(": re.compile(r"(?<![\w.])eval\s*\("),
    "exec(": re.compile(r"(?<![\w.])exec\s*\("),
    "__import__(": re.compile(r"__import__\s*\("),
}


@pytest.mark.parametrize("name", list(FORBIDDEN))
def test_the_package_never_unpickles_or_evaluates(name):
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 20  # the package, not an empty directory
    hits = [f"{p.relative_to(PACKAGE.parent)}:{text[: m.start()].count(chr(10)) + 1}"
            for p in sources for text in [p.read_text(encoding="utf-8")]
            for m in FORBIDDEN[name].finditer(text)]
    assert hits == [], f"{name} found in {hits}"


def test_the_forbidden_patterns_do_match():
    # The grep above could pass by matching nothing; check each pattern on a sample.
    sample = ("import pickle\nx = np.load(f, allow_pickle=True)\npickle.loads(b)\n"
              "eval('1')\nexec('x')\n__import__('os')\n")
    assert all(p.search(sample) for p in FORBIDDEN.values())
    assert not FORBIDDEN["eval("].search("retrieval(x); model.eval(); safe_eval(y)")


# -- huge declared sizes ------------------------------------------------------------------------
HUGE = {
    "an 8 TB array": ("scaler.center.npy", npy_header((10**6, 10**6), payload=bytes(24))),
    "a 1 TB metadata document": ("meta.npy", npy_header((10**12,), "|u1", payload=b"{}")),
    "an exabyte array": ("layer0.W.npy", npy_header((2**31, 2**31, 2**31), "<f4")),
}


@pytest.mark.parametrize("case", list(HUGE))
def test_a_huge_declared_size_fails_fast_without_allocating(trained, tmp_path, case):
    _, _, good = trained
    name, member = HUGE[case]
    path = tmp_path / "huge.npz"
    path.write_bytes(pack({**members_of(good), name: member}))
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ModelFileError, match=NOT_A_MODEL):
            modelfile.read_model(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 1.0
    assert peak < 16 << 20, f"allocated {peak} bytes"


def test_huge_but_consistent_metadata_is_refused_before_reading(trained, tmp_path, monkeypatch):
    # A file whose metadata and header agree on an array bigger than aecli ever writes.
    _, _, good = trained
    m = members_of(good)
    path = tmp_path / "big.npz"
    path.write_bytes(with_member(m, "scaler.center.npy", npy(np.zeros(3000)),
                                 arrays=arrays_spec(m, "scaler.center", "float64", [3000])))
    monkeypatch.setattr(modelfile, "MAX_ARRAY_BYTES", 16_000)
    with pytest.raises(ModelFileError, match="declares 24000 bytes"):
        modelfile.read_model(path)


def test_reading_never_changes_the_file(trained, tmp_path):
    path = broken_file(trained, tmp_path, "truncated to half")
    before = path.read_bytes()
    run("inspect", path)
    run("score", path, trained[1])
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.npz"]
