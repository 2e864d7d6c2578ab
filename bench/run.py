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
import traceback
from dataclasses import dataclass
from pathlib import Path

import busy
import cluster
import csv_train
import detection
import detection_wide
import drift
import encode_speed
import neighbors
import numpy as np
import pca_speed
import quality
import stream_order
import train_speed
from figures import Figure, table
from threadpoolctl import threadpool_info, threadpool_limits

SECTIONS = ("training", "busy", "encode", "memory", "csv", "stream", "pca", "quality",
            "detection", "detection_wide", "cluster", "drift", "neighbors")
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


def run(sections: list[str], sizes: Sizes, threads: int) -> tuple[list[Figure], list[str]]:
    """Measure the chosen sections; return their figures and the sections that failed (each
    logged with its traceback, so one broken section does not lose the others' figures)."""
    figures: list[Figure] = []
    failed: list[str] = []
    if {"encode", "memory", "csv"} & set(sections):
        rows = [sizes.encode_rows] if "encode" in sections else []
        rows += [sizes.encode_rows, *sizes.memory_rows] if "memory" in sections else []
        rows += [sizes.memory_rows[1]] if "csv" in sections else []
        encode_speed.ensure_data(encode_speed.files(*rows), log)
        encode_speed.compile_aecli()
    for section in sections:
        started = time.perf_counter()
        log(f"measuring {section} ...")
        try:
            figures += _section(section, sizes, threads)
        except Exception:  # reported with its traceback; the run then exits non-zero
            log(traceback.format_exc())
            log(f"  {section}: FAILED")
            failed.append(section)
            continue
        log(f"  {section}: {time.perf_counter() - started:.0f} s")
    return figures, failed


def _section(section: str, sizes: Sizes, threads: int) -> list[Figure]:
    """One section's figures."""
    quick = sizes is QUICK
    if section == "training":
        return (train_speed.measure(sizes.train_rows, sizes.epochs, sizes.train_rounds, threads)
                + train_speed.fit_figures(sizes.train_rows, sizes.train_rounds, threads))
    if section == "busy":
        return busy.measure(quick=quick, log=log)
    if section == "encode":
        return encode_speed.encode_figures(sizes.encode_rows, sizes.encode_rounds)
    if section == "memory":
        return [*encode_speed.memory_figures(*sizes.memory_rows),
                encode_speed.row_group_figure(sizes.memory_rows[1]),
                encode_speed.stream_training_figure(sizes.encode_rows, sizes.memory_rows[1])]
    if section == "csv":
        return csv_train.figures(sizes.memory_rows[1])
    if section == "stream":
        return stream_order.measure(quick=quick)
    if section == "pca":
        return pca_speed.measure(sizes.pca_rows, 256, sizes.pca_repeat)
    if section == "quality":
        return quality.figures(quick=quick, log=log)
    if section == "detection":
        return detection.figures(quick=quick, log=log)
    if section == "detection_wide":
        return detection_wide.figures(quick=quick, log=log)
    if section == "cluster":
        return cluster.figures(quick=quick, log=log)
    if section == "neighbors":
        return neighbors.figures(quick=quick, log=log)
    if section == "drift":
        return drift.figures(quick=quick, log=log)
    raise ValueError(f"unknown section {section!r}")


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
        figures, failed = run(sections, sizes, threads)
    seconds = time.perf_counter() - started

    print(table(figures))
    judged = [f for f in figures if f.status in ("PASS", "MISS")]  # not INFO, not SKIP
    missed = [f.name for f in judged if f.status == "MISS"]
    print(f"\n{len(judged) - len(missed)} of {len(judged)} figures meet their target "
          f"({seconds:.0f} s)" + (f"; missed: {'; '.join(missed)}" if missed else ""))
    if failed:
        print(f"FAILED sections (tracebacks above): {', '.join(failed)}")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({
        "mode": "quick" if args.quick else "full",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(seconds, 1),
        "environment": env,
        "figures": [f.to_dict() for f in figures],
        "failed_sections": failed,
    }, indent=2) + "\n")
    log(f"wrote {json_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
