"""compare-pca's sweep and suggested k, and every --plot option (issue 6)."""

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from aecli.cli import app
from aecli.pipeline.compare import suggest_k

CURVE = Path(__file__).resolve().parent.parent / "sample_data" / "curve.csv"
DIGITS = Path(__file__).resolve().parent.parent / "sample_data" / "digits.csv"


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    return struct.unpack(">II", data[16:24])


def test_suggest_k_takes_the_smallest_k_close_to_the_best():
    rows = [{"k": 1, "ae_mse": 0.30}, {"k": 2, "ae_mse": 0.012}, {"k": 4, "ae_mse": 0.010}]
    s = suggest_k(rows, baseline=1.0, tolerance=0.01)
    assert s["k"] == 2 and "1%" in s["rule"]
    assert suggest_k(rows, baseline=1.0, tolerance=0.0)["k"] == 4
    assert suggest_k([], baseline=1.0) is None


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    r = CliRunner().invoke(app, ["compare-pca", str(CURVE), "-k", "1,2,3", "--epochs", "60",
                                 "--json", "--plot", str(out / "curve.png"), "-q"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout), out


def test_compare_pca_json_carries_every_figure(sweep):
    report, _ = sweep
    assert [row["k"] for row in report["rows"]] == [1, 2, 3]
    for row in report["rows"]:
        for key in ("pca_explained_variance", "pca_mse", "ae_mse", "ratio"):
            assert isinstance(row[key], float)
        assert row["ratio"] == pytest.approx(row["ae_mse"] / row["pca_mse"])
    # The curve is a 1-D manifold bent through 10 columns: PCA needs more k than the AE.
    assert report["rows"][1]["ae_mse"] < 0.5 * report["rows"][1]["pca_mse"]
    assert report["suggestion"]["k"] in (1, 2, 3)
    assert "smallest k" in report["suggestion"]["rule"]


def test_compare_pca_table_and_csv():
    runner = CliRunner()
    r = runner.invoke(app, ["compare-pca", str(CURVE), "-k", "1-2", "--epochs", "5", "--csv"])
    assert r.exit_code == 0, r.output
    header = r.stdout.splitlines()[0].split(",")
    assert {"k", "pca_explained_variance", "pca_mse", "ae_mse", "ratio"} <= set(header)
    assert len(r.stdout.splitlines()) == 3
    assert "suggested k" in r.stderr


def test_compare_plot_is_a_png(sweep):
    _, out = sweep
    w, h = png_size(out / "curve.png")
    assert w > 300 and h > 200


def test_train_encode_score_plots(tmp_path):
    runner = CliRunner()
    model = tmp_path / "m.npz"
    r = runner.invoke(app, ["train", str(DIGITS), "--exclude", "label", "-o", str(model),
                            "--epochs", "5", "--plot", str(tmp_path / "loss.png"), "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["encode", str(model), str(DIGITS), "--keep", "label", "-o",
                            str(tmp_path / "codes.csv"), "--plot", str(tmp_path / "codes.png"),
                            "--color-by", "label", "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["score", str(model), str(DIGITS), "-o", str(tmp_path / "s.csv"),
                            "--plot", str(tmp_path / "scores.png"), "-q"])
    assert r.exit_code == 0, r.output
    for name in ("loss.png", "codes.png", "scores.png"):
        w, h = png_size(tmp_path / name)
        assert w > 300 and h > 200, name


def test_color_by_must_name_a_column(tmp_path):
    runner = CliRunner()
    model = tmp_path / "m.npz"
    runner.invoke(app, ["train", str(DIGITS), "--exclude", "label", "-o", str(model),
                        "--epochs", "2", "-q"])
    r = runner.invoke(app, ["encode", str(model), str(DIGITS), "--plot",
                            str(tmp_path / "c.png"), "--color-by", "nope"])
    assert r.exit_code == 2
    assert "nope" in r.stderr
    assert not (tmp_path / "c.png").exists()


def test_plot_without_matplotlib_is_a_clear_error(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    r = CliRunner().invoke(app, ["train", str(DIGITS), "--exclude", "label", "-o",
                                 str(tmp_path / "m.npz"), "--plot", str(tmp_path / "l.png")])
    assert r.exit_code == 2
    assert "aecli[plot]" in r.stderr
    assert not (tmp_path / "m.npz").exists()


def test_a_narrow_table_gets_a_sweep_clipped_to_it_and_k_must_stay_below_its_width(tmp_path):
    data = tmp_path / "three.csv"
    X = np.random.default_rng(0).normal(size=(120, 3))
    np.savetxt(data, X, delimiter=",", header="a,b,c", comments="")
    runner = CliRunner()
    r = runner.invoke(app, ["compare-pca", str(data), "--epochs", "2", "--json", "-q"])
    assert r.exit_code == 0, r.output
    assert [row["k"] for row in json.loads(r.stdout)["rows"]] == [1, 2]  # not 4 or 8
    r = runner.invoke(app, ["compare-pca", str(data), "-k", "3", "--epochs", "2"])
    assert r.exit_code == 2 and "k=3 is not smaller than the number of features (3)" in r.stderr
    assert "-k 1-2" in r.stderr


def test_quiet_compare_still_gives_its_result(tmp_path):
    r = CliRunner().invoke(app, ["compare-pca", str(CURVE), "-k", "1", "--epochs", "2", "-q"])
    assert r.exit_code == 0, r.output
    assert "Autoencoder vs PCA" in r.stdout and r.stderr == ""


def test_sixteen_categories_get_sixteen_colours(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pyarrow as pa

    from aecli.report import plots

    drawn = []
    real = plt.Axes.scatter

    def record(ax, *args, **kwargs):
        drawn.append(kwargs.get("color"))
        return real(ax, *args, **kwargs)

    rng = np.random.default_rng(0)
    batch = pa.RecordBatch.from_pydict({"z1": rng.normal(size=160), "z2": rng.normal(size=160),
                                        "group": [f"g{i % 16}" for i in range(160)]})
    collector = plots.CodeCollector([batch], "group")
    list(collector)
    plt.Axes.scatter = record
    try:
        collector.save(tmp_path / "codes.png")
    finally:
        plt.Axes.scatter = real
    assert len(drawn) == 16 and len({tuple(c) for c in drawn}) == 16
