"""aecli's benchmark: every figure a ratio to a reference measured in the same run.

    .venv/bin/python bench/run.py            # full run, 3-5 minutes on 2 cores
    .venv/bin/python bench/run.py --quick    # smoke run, about a minute
    .venv/bin/python bench/run.py --only training,pca

Prints a table (figure, aecli, reference, ratio, target, PASS/MISS) and writes the same
figures as JSON to bench/results/latest.json (quick.json for --quick). The training
reference needs PyTorch (``pip install torch``, CPU build), which aecli itself never uses;
without it that figure is skipped. See bench/README.md for what each figure measures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import busy
import cluster
import detection
import encode_speed
import numpy as np
import pca_speed
import quality
import stream_order
import train_speed
from figures import Figure, table
from threadpoolctl import threadpool_info, threadpool_limits

SECTIONS = ("training", "busy", "encode", "memory", "stream", "pca", "quality", "detection",
            "cluster")
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Sizes:
    """How big each part of a run is."""

    train_rows: dict[str, int]
    epochs: int
    train_rounds: int
    encode_rows: int
    encode_rounds: int
    memory_rows: tuple[int, int]
    pca_rows: int
    pca_repeat: int


FULL = Sizes({"small": 131072, "wide": 32768}, epochs=6, train_rounds=5,
             encode_rows=1_000_000, encode_rounds=5, memory_rows=(200_000, 2_000_000),
             pca_rows=100_000, pca_repeat=9)
QUICK = Sizes({"small": 8192, "wide": 2048}, epochs=2, train_rounds=1,
              encode_rows=100_000, encode_rounds=1, memory_rows=(20_000, 200_000),
              pca_rows=20_000, pca_repeat=1)


def blas_threads() -> int:
    """Threads NumPy's BLAS uses (what the PyTorch reference is given too)."""
    return max((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"),
               default=1)


def environment(threads: int) -> dict:
    """What the figures were measured on."""
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
    return {
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": [f"{p['internal_api']} {p['version']} ({p.get('architecture')})" for p in blas],
        "threads": threads,
        "torch": torch_version,
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
    }


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(sections: list[str], sizes: Sizes, threads: int) -> list[Figure]:
    """Measure the chosen sections and return their figures."""
    figures: list[Figure] = []
    if "encode" in sections or "memory" in sections:
        rows = [sizes.encode_rows] if "encode" in sections else []
        rows += [sizes.encode_rows, *sizes.memory_rows] if "memory" in sections else []
        encode_speed.ensure_data(encode_speed.files(*rows), log)
        encode_speed.compile_aecli()
    for section in sections:
        started = time.perf_counter()
        log(f"measuring {section} ...")
        if section == "training":
            figures += train_speed.measure(sizes.train_rows, sizes.epochs, sizes.train_rounds,
                                           threads)
            figures += train_speed.fit_figures(sizes.train_rows, sizes.train_rounds, threads)
        elif section == "busy":
            figures += busy.measure(quick=sizes is QUICK, log=log)
        elif section == "encode":
            figures += encode_speed.encode_figures(sizes.encode_rows, sizes.encode_rounds)
        elif section == "memory":
            figures += encode_speed.memory_figures(*sizes.memory_rows)
            figures.append(encode_speed.row_group_figure(sizes.memory_rows[1]))
            figures.append(encode_speed.stream_training_figure(sizes.encode_rows,
                                                               sizes.memory_rows[1]))
        elif section == "stream":
            figures += stream_order.measure(quick=sizes is QUICK)
        elif section == "pca":
            figures += pca_speed.measure(sizes.pca_rows, 256, sizes.pca_repeat)
        elif section == "quality":
            figures += quality.figures(quick=sizes is QUICK, log=log)
        elif section == "detection":
            figures += detection.figures(quick=sizes is QUICK, log=log)
        elif section == "cluster":
            figures += cluster.figures(quick=sizes is QUICK, log=log)
        log(f"  {section}: {time.perf_counter() - started:.0f} s")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections of {', '.join(SECTIONS)}")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS and PyTorch threads (default: NumPy's BLAS default)")
    parser.add_argument("--json", type=Path, default=None,
                        help="where to write the results (default: bench/results/latest.json, "
                        "or quick.json with --quick, so a smoke run keeps the full results)")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {SECTIONS}")
    sizes = QUICK if args.quick else FULL
    json_path = args.json or RESULTS / ("quick.json" if args.quick else "latest.json")

    started = time.perf_counter()
    with threadpool_limits(limits=args.threads):
        threads = blas_threads()
        env = environment(threads)
        log(f"aecli bench ({'quick' if args.quick else 'full'}) on {env['cpus']} CPUs, "
            f"{threads} BLAS thread(s), numpy {env['numpy']}, torch {env['torch'] or 'absent'}")
        figures = run(sections, sizes, threads)
    seconds = time.perf_counter() - started

    print(table(figures))
    judged = [f for f in figures if f.status in ("PASS", "MISS")]  # not INFO, not SKIP
    missed = [f.name for f in judged if f.status == "MISS"]
    print(f"\n{len(judged) - len(missed)} of {len(judged)} figures meet their target "
          f"({seconds:.0f} s)" + (f"; missed: {'; '.join(missed)}" if missed else ""))
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({
        "mode": "quick" if args.quick else "full",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(seconds, 1),
        "environment": env,
        "figures": [f.to_dict() for f in figures],
    }, indent=2) + "\n")
    log(f"wrote {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
