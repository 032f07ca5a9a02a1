"""Two properties of the machine that move the two-thread epoch and the big-data figures, whatever bptrain does.

Usage (from the repository root):

    python benchmarks/machine_probe.py

- **Small work between products at two threads.** The bare GEMMs of one L epoch (as train_speed.py
  times them), then the same GEMMs with a little NumPy work between them, as a training step has:
  a relu on each product (about 50,000 values a step), a gather of the batch's rows from the
  shuffled order, or an update pass over 235,146 parameters. Each way runs at one and at two BLAS
  threads, in turn, three times; the figure is the median. Where the small work costs more over
  the GEMMs at two threads than at one, the two-thread epoch grows past its GEMMs by more than
  bptrain's own work between the products.
- **Memory touched for the first time.** Seconds to write one value per 4 KiB page of a new 439 MB
  array (about the size of L.csv), in a new process each time (memory a process gave back and takes
  again is already mapped), with NumPy's huge pages on (NumPy's default on Linux; bptrain turns
  them off) and off. A big file read to its first step touches about a gigabyte for the first time.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import numpy as np
from machine import describe
from threadpoolctl import threadpool_limits

ROWS, BATCH, WIDTHS = 60_000, 128, (784, 256, 128, 10)  # L of train_speed.py
WAYS = ("bare GEMMs", "+ relu", "+ gather", "+ update")
TOUCH = """
import sys, time
import numpy as np
from numpy._core import multiarray
multiarray._set_madvise_hugepage(sys.argv[1] == "on")
start = time.perf_counter()
values = np.empty(439_000_000 // 8)
values[::512] = 1.0
print(time.perf_counter() - start)
"""


def epoch_maker():
    """epoch(way): one L epoch of products, with the small work that `way` adds."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((ROWS, WIDTHS[0])).astype(np.float32)
    weights = [(rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32) for a, b in zip(WIDTHS, WIDTHS[1:])]
    grads = [np.empty_like(w) for w in weights]
    outs = [np.empty((BATCH, w.shape[1]), np.float32) for w in weights]
    downs = [np.empty((BATCH, w.shape[0]), np.float32) for w in weights]
    order, rows = rng.permutation(ROWS), np.empty((BATCH, WIDTHS[0]), np.float32)
    params = np.zeros(sum(w.size + w.shape[1] for w in weights), np.float32)
    moment, step = np.zeros_like(params), np.full_like(params, 1e-3)

    def epoch(way: str) -> None:
        for start in range(0, ROWS, BATCH):
            if way == "+ gather":
                taken = order[start : start + BATCH]
                h = np.take(x, taken, axis=0, out=rows[: len(taken)])
            else:
                h = x[start : start + BATCH]
            inputs = []
            for w, out in zip(weights, outs):
                inputs.append(h)
                h = np.matmul(h, w, out=out[: len(h)])
                if way == "+ relu":
                    np.maximum(h, 0, out=h)
            g = h
            for i in reversed(range(len(weights))):
                np.matmul(inputs[i].T, g, out=grads[i])
                if i > 0:
                    g = np.matmul(g, weights[i].T, out=downs[i][: len(g)])
            if way == "+ update":
                np.multiply(moment, 0.9, out=moment)
                np.add(moment, step, out=moment)
                np.subtract(params, moment, out=params)

    return epoch


def main() -> None:
    print(describe(), flush=True)
    epoch = epoch_maker()
    seconds = {(way, threads): [] for way in WAYS for threads in (1, 2)}
    for _ in range(3):
        for threads in (1, 2):
            with threadpool_limits(threads, user_api="blas"):
                epoch("bare GEMMs")  # warm-up
                for way in WAYS:
                    began = time.perf_counter()
                    epoch(way)
                    seconds[way, threads].append(time.perf_counter() - began)
    print("\nseconds per L epoch (median of 3), and each way over the bare GEMMs at the same thread count:")
    print("| threads | " + " | ".join(WAYS) + " |")
    print("|---:|" + "---:|" * len(WAYS))
    for threads in (1, 2):
        bare = statistics.median(seconds["bare GEMMs", threads])
        cells = [f"{statistics.median(seconds[way, threads]):.3f} ({statistics.median(seconds[way, threads]) / bare:.2f}x)" for way in WAYS]
        print(f"| {threads} | " + " | ".join(cells) + " |")

    touched = {"on": [], "off": []}
    for _ in range(3):
        for pages in touched:
            done = subprocess.run([sys.executable, "-c", TOUCH, pages], capture_output=True, text=True, check=True)
            touched[pages].append(float(done.stdout))
    print("\nfirst write to 439 MB in a new process, huge pages on / off (seconds, each run):")
    for pages, times in touched.items():
        print(f"{pages}: " + ", ".join(f"{t:.3f}" for t in times))
    print(f"load average at the end: {describe().split('load average ')[1].split(';')[0]}")


if __name__ == "__main__":
    main()
