"""The reference of ``csv_train.py``: train as ``aecli train CSV`` does, but read the file
once, typed from its first block by pyarrow's own inference (no survey pass).

    python bench/csv_train_reference.py DATA.csv MODEL.npz [--epochs N --hidden H -k K ...]
"""

from __future__ import annotations

import sys

import numpy as np
import pyarrow.csv as pcsv

from aecli.blas_threads import pinned
from aecli.io import atomic_open, to_matrix
from aecli.pipeline import modelfile
from aecli.pipeline.train import train_bundle


def main(src: str, out: str, args: list[str]) -> None:
    options = dict(zip(args[::2], args[1::2], strict=False))
    table = pcsv.read_csv(src)
    names = table.column_names
    X = to_matrix(table, names, dtype=np.float64)
    del table
    params = {"epochs": int(options["--epochs"]), "hidden": (int(options["--hidden"]),),
              "latent": int(options["-k"])}
    with pinned(int(options["--threads"])):
        bundle = train_bundle(X, names, params)
    with atomic_open(out) as f:
        modelfile.write_model(bundle, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], [a for a in sys.argv[3:] if a != "-q"])
