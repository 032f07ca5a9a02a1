"""Matrix products at one and two BLAS threads: where a second thread pays, and what it costs beside
another busy process. The figures behind bptrain.threads.MIN_THREADED_PRODUCT.

Usage (from the repository root):

    python benchmarks/thread_products.py            # the machine as it is
    python benchmarks/thread_products.py --busy     # with one CPU-bound process running beside

Each shape (rows x inner x columns, float32) is timed at 1 and at 2 threads in turn, three times;
the figure is the middle time of the three, and the ratio is 2 threads / 1 thread (below 1: the
second thread pays).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np
from machine import describe
from threadpoolctl import threadpool_limits

# the largest products of one batch of the benchmark sizes and of configs/digits.yaml (64 x 64 x 256), and some between
SHAPES = [(32, 64, 64), (32, 64, 256), (64, 64, 256), (64, 100, 256), (64, 256, 256), (128, 256, 128), (128, 784, 256), (256, 784, 256)]


def microseconds(a: np.ndarray, b: np.ndarray, threads: int, repeats: int) -> float:
    out = np.empty((a.shape[0], b.shape[1]), np.float32)
    with threadpool_limits(threads, user_api="blas"):
        start = time.perf_counter()
        for _ in range(repeats):
            np.matmul(a, b, out=out)
        return (time.perf_counter() - start) / repeats * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--busy", action="store_true", help="run one CPU-bound process beside the measurement")
    args = parser.parse_args()
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy else None
    try:
        time.sleep(0.5 if spinner else 0)
        print(f"machine: {describe()}{'; one CPU-bound process beside' if spinner else ''}")
        print("| rows x inner x columns | multiply-adds | 1 thread (us) | 2 threads (us) | 2 / 1 |")
        print("|---|---:|---:|---:|---:|")
        rng = np.random.default_rng(0)
        for m, k, n in SHAPES:
            a, b = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32)
            repeats = max(50, int(3e8 / (m * k * n)))
            times = {1: [], 2: []}
            for _ in range(3):
                for threads in (1, 2):
                    times[threads].append(microseconds(a, b, threads, repeats))
            one, two = sorted(times[1])[1], sorted(times[2])[1]
            print(f"| {m} x {k} x {n} | {m * k * n:,} | {one:.1f} | {two:.1f} | {two / one:.2f} |")
    finally:
        if spinner:
            spinner.kill()
            spinner.wait()


if __name__ == "__main__":
    main()
