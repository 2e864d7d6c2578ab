"""Damaged, foreign and hostile model files: a clear error (exit 2), never a traceback, never code.

The promise (README, "The model file"): a newer major format, a missing or mis-shaped array, a
truncated file, or anything that is not an aecli model is a clear error, never a traceback and
never code execution. Each case below starts from a real model and breaks one thing.

Grouped by threat: damaged and foreign files; newer formats; pickles; huge declared sizes;
crafted models that would score wrongly (issue 25: miscounted ensembles, absurd factors and
weights, unused arrays, mistyped fields); model text posing as markup; reading that would not
end or not fit (special files, zip bombs, huge zip directories).
"""

from __future__ import annotations

import io
import json
import os
import re
import resource
import subprocess
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import run
from typer.testing import CliRunner

from aecli.cli.app import app
from aecli.errors import EXIT_USAGE, ModelFileError
from aecli.pipeline import model_archive, modelfile

ROWS = "".join(f"{i},{i * 2 % 7},{i % 3}\n" for i in range(30))
NOT_A_MODEL = "not a valid aecli model file"
PACKAGE = Path(modelfile.__file__).resolve().parent.parent  # the aecli package




@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(model path, data path, the model's bytes) of a small real model over a, b, c."""
    d = tmp_path_factory.mktemp("model")
    data = d / "data.csv"
    data.write_text("a,b,c\n" + ROWS)
    model = d / "model.npz"
    result = run("train", data, "-o", model, "-q", "--epochs", "2", "--hidden", "4", "-k", "1")
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


def without_meta_keys(members: dict[str, bytes], *keys: str) -> bytes:
    meta = {k: v for k, v in meta_of(members).items() if k not in keys}
    return pack({**members, "meta.npy": meta_member(meta)})


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
                                                                     "latent": 3}),
    "summary empty": lambda m, b: with_meta(m, summary={}),
    "summary a list": lambda m, b: with_meta(m, summary=[1]),
    "a version 1 file without metrics": lambda m, b: with_meta(m, format_version=1),
    # Fields a format-5 file always has (older formats' are filled in by version when read):
    "categorical absent": lambda m, b: without_meta_keys(m, "categorical"),
    "bad_values absent": lambda m, b: without_meta_keys(m, "bad_values"),
    "summary without the optimizer": lambda m, b: with_meta(m, summary={
        k: v for k, v in meta_of(m)["summary"].items() if k != "optimizer"}),
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
        assert result.exit_code == 2, result.output
        if member == "extra":  # an array the metadata does not list: refused, never read
            assert "'extra.npy' is not an array the metadata lists" in result.stderr
        else:
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


def test_an_array_bigger_than_the_layers_need_is_refused_before_reading(trained, tmp_path):
    # Metadata and header agree on an array bigger than the model's columns make it.
    _, _, good = trained
    m = members_of(good)
    path = tmp_path / "big.npz"
    path.write_bytes(with_member(m, "scaler.center.npy", npy(np.zeros(3000)),
                                 arrays=arrays_spec(m, "scaler.center", "float64", [3000])))
    with pytest.raises(ModelFileError, match=r"columns and layers need \[2\]"):
        modelfile.read_model(path)


def test_a_model_bigger_than_aecli_reads_is_refused_before_reading(trained, tmp_path,
                                                                   monkeypatch):
    _, _, good = trained
    path = tmp_path / "good.npz"
    path.write_bytes(good)
    monkeypatch.setattr(model_archive, "MAX_ARRAY_BYTES", 1_000)
    read = []
    original = model_archive.Archive._read
    monkeypatch.setattr(model_archive.Archive, "_read",
                        lambda self, name, *a: read.append(name) or original(self, name, *a))
    with pytest.raises(ModelFileError, match="declares [0-9,]+ bytes of arrays"):
        modelfile.read_model(path)
    assert read == ["meta"]  # not one array was read


def test_reading_never_changes_the_file(trained, tmp_path):
    path = broken_file(trained, tmp_path, "truncated to half")
    before = path.read_bytes()
    run("inspect", path)
    run("score", path, trained[1])
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.npz"]


# -- crafted models that would score wrongly: refused, not scored (issue 25) --------------------
def array_of(members, name: str) -> np.ndarray:
    return np.lib.format.read_array(io.BytesIO(members[name + ".npy"]), allow_pickle=False)


def with_value(members, name: str, value: float) -> bytes:
    """The model with one value of array ``name`` replaced by ``value``."""
    a = array_of(members, name).copy()
    a.flat[0] = value
    return with_member(members, name + ".npy", npy(a))


def with_factors(members, factors) -> bytes:
    return with_member(members, "ensemble.scale.npy", npy(np.array(factors, dtype=np.float64)),
                       arrays=arrays_spec(members, "ensemble.scale", "float64",
                                          [len(factors)]))


def without_listing(members, *prefixes) -> bytes:
    """The model with arrays left out of the metadata's listing, but still in the archive."""
    return with_meta(members, arrays={k: v for k, v in meta_of(members)["arrays"].items()
                                      if not k.startswith(prefixes)})


# case: (the broken file, what the message names)
CRAFTED = {
    "3 ensemble factors for 5 stored fold models": (
        lambda m: with_factors(m, [1.0, 1.0, 1.0]), "'member4."),
    "3 ensemble factors, the other fold models unlisted but stored": (
        lambda m: with_factors(members_of(without_listing(m, "member4.", "member5.")),
                               [1.0, 1.0, 1.0]), "'member4."),
    "ensemble factor 1e308 (flags every row)": (
        lambda m: with_factors(m, [1.0, 1e308, 1.0, 1.0, 1.0]), "'ensemble.scale'"),
    "ensemble factor 5e-324 (flags none)": (
        lambda m: with_factors(m, [5e-324, 1.0, 1.0, 1.0, 1.0]), "'ensemble.scale'"),
    "ensemble factor 1e9": (
        lambda m: with_factors(m, [1.0, 1.0, 1.0, 1.0, 1e9]), "'ensemble.scale'"),
    "a finite weight of 3e38 (NaN scores)": (
        lambda m: with_value(m, "layer0.W", 3e38), "'layer0.W'"),
    "a bias of -1e7": (lambda m: with_value(m, "layer3.b", -1e7), "'layer3.b'"),
    "a fold model's weight of 1e30": (
        lambda m: with_value(m, "member2.layer1.W", 1e30), "'member2.layer1.W'"),
    "summary.score_models 99 while 6 score": (
        lambda m: with_meta(m, summary=summary(m, score_models=99)), "'summary.score_models'"),
    "summary.score_models as text": (
        lambda m: with_meta(m, summary=summary(m, score_models="6")), "'summary.score_models'"),
    "an extra array the metadata names": (
        lambda m: with_member(m, "extra.npy", npy(np.zeros(10)),
                              arrays=arrays_spec(m, "extra", "float64", [10])), "'extra'"),
    "an extra numeric member the metadata does not name": (
        lambda m: pack({**m, "extra.npy": npy(np.zeros(10))}), "'extra.npy'"),
    "a nested list in info.roles": (
        lambda m: with_meta(m, info={**meta_of(m)["info"], "roles": {
            **meta_of(m)["info"]["roles"], "identifiers": [["a", ["b"]]]}}), "'info.roles"),
    "info.roles a list": (
        lambda m: with_meta(m, info={**meta_of(m)["info"], "roles": [["a"]]}), "'info.roles'"),
    "summary.calibration_rows as text": (
        lambda m: with_meta(m, summary=summary(m, calibration_rows="[/]")),
        "'summary.calibration_rows'"),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_a_crafted_model_is_refused_naming_what_is_wrong(trained, tmp_path, case):
    _, data, good = trained
    craft, where = CRAFTED[case]
    path = tmp_path / "crafted.npz"
    path.write_bytes(craft(members_of(good)))
    with pytest.raises(ModelFileError) as info:
        modelfile.read_model(path)
    assert info.value.exit_code == EXIT_USAGE
    assert f"{path}: {NOT_A_MODEL}" in info.value.message and where in info.value.message
    for args in (["inspect", path], ["inspect", path, "--json"], ["score", path, data]):
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "internal error" not in result.output and result.stdout == ""
        assert where in result.stderr and "aecli train" in result.stderr  # what to do


# -- model text is data, never markup -----------------------------------------------------------
@pytest.mark.parametrize("text", ["[/]", "[bold red]x[/]", "[link=file:///etc]y"])
def test_model_text_is_shown_as_written_never_as_markup(trained, tmp_path, text):
    _, _, good = trained
    m = members_of(good)
    path = tmp_path / "text.npz"
    meta = meta_of(m)
    path.write_bytes(with_meta(m, aecli_version=text, created=text, info={
        **meta["info"], "roles": {**meta["info"]["roles"], "identifiers": [text]}}))
    result = CliRunner().invoke(app, ["inspect", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f"written by aecli {text}" in result.stdout
    assert result.stdout.count(text) >= 3  # the version, the date and the unused column


def test_inspect_counts_the_models_that_score(trained, tmp_path):
    # A format-5 file without the count in its summary: inspect counts the stored models.
    _, _, good = trained
    m = members_of(good)
    path = tmp_path / "uncounted.npz"
    path.write_bytes(with_meta(m, summary={k: v for k, v in meta_of(m)["summary"].items()
                                           if k != "score_models"}))
    result = run("inspect", path)
    assert result.exit_code == 0, result.output
    words = " ".join(result.stdout.replace("│", " ").split())  # the panel wraps its lines
    assert "mean of 6 models'" in words


# -- reading is bounded: special files, bombs, huge declarations --------------------------------
MODEL_COMMANDS = {  # each command that reads a model, with what it needs besides
    "inspect": lambda data, out: [],
    "encode": lambda data, out: [data],
    "reconstruct": lambda data, out: [data],
    "score": lambda data, out: [data],
    "export": lambda data, out: ["-o", out],
}


def run_bounded(args, seconds=30) -> subprocess.CompletedProcess:
    """``aecli args`` in a subprocess held to 1 GiB of memory and ``seconds``: the old reader
    hung on a FIFO and grew without end on /dev/zero."""
    limit = 1 << 30

    def hold():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    try:
        return subprocess.run([sys.executable, "-m", "aecli", *map(str, args)],
                              capture_output=True, text=True, timeout=seconds,
                              preexec_fn=hold, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"aecli {args[0]} still reading after {seconds} s")


SPECIAL_CASES = [(command, "a FIFO") for command in MODEL_COMMANDS] + [
    ("inspect", "/dev/zero"), ("encode", "/dev/zero")]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and /dev/zero")
@pytest.mark.parametrize(("command", "special"), SPECIAL_CASES)
def test_a_special_file_as_the_model_is_refused_before_reading(trained, tmp_path, command,
                                                              special):
    _, data, _ = trained
    if special == "a FIFO":
        path = tmp_path / "model.npz"
        os.mkfifo(path)  # no writer: the first read would wait for ever
        kind = "is a FIFO (named pipe), not a model file"
    else:
        path, kind = Path("/dev/zero"), "is a character device, not a model file"
    started = time.perf_counter()
    result = run_bounded([command, path, *MODEL_COMMANDS[command](data, tmp_path / "m.onnx")])
    assert result.returncode == 2, result.stderr
    assert f"{path}: {kind}" in result.stderr and "regular files" in result.stderr
    assert "aecli train" in result.stderr and "internal error" not in result.stderr
    assert result.stdout == "" and time.perf_counter() - started < 20


def test_a_listed_array_no_model_uses_is_never_inflated(trained, tmp_path):
    # The 1.7 MB model whose metadata names an extra 1.6 GB array of zeros, in small: the
    # member declares 1.6 GB (the header says so, the metadata agrees) and is refused by name.
    _, _, good = trained
    m = members_of(good)
    path = tmp_path / "extra.npz"
    path.write_bytes(with_member(m, "zeros.npy", npy_header((200_000_000,), payload=bytes(64)),
                                 arrays=arrays_spec(m, "zeros", "float64", [200_000_000])))
    with pytest.raises(ModelFileError, match="'zeros' is listed in the metadata, but no part"):
        modelfile.read_model(path)


def with_deflated_zeros(members: dict[str, bytes], name: str, size: int,
                       compression=zipfile.ZIP_DEFLATED) -> bytes:
    """The archive of ``members`` plus a member ``name`` of ``size`` zero bytes, compressed
    (80 MB of zeros deflate to 80 kB)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for member, data in members.items():
            zf.writestr(member, data)
        info = zipfile.ZipInfo(name)
        info.compress_type = compression
        with zf.open(info, "w", force_zip64=True) as f:
            chunk = bytes(1 << 20)
            for _ in range(size >> 20):
                f.write(chunk)
    return out.getvalue()


@pytest.mark.parametrize("name", ["padding.npy", "layer0.W.npy", "meta.npy"])
def test_a_zip_bomb_is_refused_from_the_zip_directory_before_inflating(trained, tmp_path,
                                                                       monkeypatch, name):
    # 80 MB of zeros in an 80 kB member: refused from the zip directory's sizes before any
    # member is opened (the old reader ignored an unlisted member, and inflated a listed one
    # to its header before finding it the wrong size).
    _, _, good = trained
    path = tmp_path / "bomb.npz"
    path.write_bytes(with_deflated_zeros(
        {k: v for k, v in members_of(good).items() if k != name}, name, 80 << 20))
    assert path.stat().st_size < 1 << 20
    opened = []
    original = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open",
                        lambda self, member, *a, **k: opened.append(
                            getattr(member, "filename", member)) or original(
                            self, member, *a, **k))
    with pytest.raises(ModelFileError, match=r"inflate|inflates to [0-9,]+ bytes"):
        modelfile.read_model(path)
    assert opened == []


def test_a_listed_array_that_inflates_to_more_than_it_declares_is_never_inflated(
        trained, tmp_path, monkeypatch):
    # Calibration quantiles the metadata lists as 101 values, whose member inflates to 8 MB.
    _, _, good = trained
    name = "calibration.quantiles.npy"
    path = tmp_path / "bomb.npz"
    path.write_bytes(with_deflated_zeros(
        {k: v for k, v in members_of(good).items() if k != name}, name, 8 << 20))
    opened = []
    original = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open",
                        lambda self, member, *a, **k: opened.append(
                            getattr(member, "filename", member)) or original(
                            self, member, *a, **k))
    with pytest.raises(ModelFileError, match="'calibration.quantiles' .* inflates to 8,388,608"):
        modelfile.read_model(path)
    assert opened == ["meta.npy"]


def test_a_member_compressed_other_than_numpy_writes_is_refused(trained, tmp_path):
    # bzip2 and lzma inflate without a bound per call; NumPy writes stored or deflated.
    _, data, good = trained
    path = tmp_path / "bz.npz"
    path.write_bytes(pack(members_of(good), zipfile.ZIP_BZIP2))
    result = run("score", path, data)
    assert result.exit_code == 2 and "compressed with method 12" in result.stderr
    assert "stored or deflated" in result.stderr


def test_a_huge_zip_directory_is_refused_before_it_is_parsed(trained, tmp_path):
    # 6,000 members with long names: a 1.3 MB directory (a model with 20 layers has ~600).
    _, _, good = trained
    filler = {f"{'x' * 180}{i}.npy": b"" for i in range(6_000)}
    path = tmp_path / "wide.npz"
    path.write_bytes(pack({**members_of(good), **filler}))
    with pytest.raises(ModelFileError, match="zip directory is [0-9,]+ bytes"):
        modelfile.read_model(path)
