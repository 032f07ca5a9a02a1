"""The cost of the diagnostics (report.diagnostics): the time spent in their hooks, as a share of the epoch.

Usage (from the repository root):

    python benchmarks/diagnostics_cost.py                  # sizes S and M of train_speed.py, one BLAS thread
    python benchmarks/diagnostics_cost.py --epochs 40 --sizes S

bptrain's Trainer runs as in train_speed.py ("bptrain diagnostics": the diagnostics callback writing
diagnostics.csv and .jsonl), with every hook of the callback timed. The share is the hooks' time
divided by the epoch's, per epoch; the figure is the median over --epochs epochs. Both times
stretch alike when other work slows the machine, so the share holds on a busy machine, where the
interleaved epochs of train_speed.py (`--contenders bptrain "bptrain diagnostics"`) differ by more
than the cost itself. Not counted: the loop's call of on_batch_end at every step (under a
microsecond), which a fit makes anyway for its checkpoints and progress bar.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from machine import describe, load
from train_speed import ROOT, SIZES, bptrain_epoch, limit_threads, make_data

sys.path.insert(0, str(ROOT))  # measure this checkout's bptrain, not an installed one


def timed_diagnostics(model):
    """A Diagnostics callback that adds the time spent in each of its hooks to `spent`."""
    from bptrain.runs.report import RowLog
    from bptrain.training.diagnostics import COLUMNS, Diagnostics

    class Timed(Diagnostics):
        spent = 0.0

        def _timed(self, hook, *args):
            start = time.perf_counter()
            hook(self, *args)
            Timed.spent += time.perf_counter() - start

        def on_train_begin(self, trainer):
            self._timed(Diagnostics.on_train_begin, trainer)

        def on_epoch_begin(self, trainer):
            self._timed(Diagnostics.on_epoch_begin, trainer)

        def on_batch_end(self, trainer, batch):
            self._timed(Diagnostics.on_batch_end, trainer, batch)

        def on_epoch_end(self, trainer, row):
            self._timed(Diagnostics.on_epoch_end, trainer, row)

    watch = Timed(model)
    watch.write = RowLog(Path(tempfile.mkdtemp(prefix="bptrain-diagnostics-")), COLUMNS, "diagnostics", flush_seconds=1.0).write
    return watch


def shares(size, epochs: int, seed: int) -> tuple[list[float], float, int]:
    """(the hooks' share of each epoch, the median epoch's seconds, the steps of an epoch)."""
    x, labels = make_data(size, seed)
    epoch = bptrain_epoch(size, x, labels, seed)
    trainer = next(c.cell_contents for c in epoch.__closure__ if type(c.cell_contents).__name__ == "Trainer")
    watch = timed_diagnostics(trainer.model)
    trainer.callbacks.append(watch)
    epoch()  # warm-up
    out, seconds = [], []
    for _ in range(epochs):
        before, start = type(watch).spent, time.perf_counter()
        epoch()
        took = time.perf_counter() - start
        out.append((type(watch).spent - before) / took)
        seconds.append(took)
    return out, statistics.median(seconds), trainer.batches


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", choices=["S", "M", "L"], default=["S", "M"])
    parser.add_argument("--epochs", type=int, default=30, help="timed epochs per size (default: 30)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with limit_threads("1"):
        print(f"machine: {describe()}")
        print("| size | steps per epoch | epoch (median s) | diagnostics' share: median | max |")
        print("|---|---:|---:|---:|---:|")
        for name in args.sizes:
            share, seconds, steps = shares(SIZES[name], args.epochs, args.seed)
            print(f"| {name} | {steps} | {seconds:.4f} | {statistics.median(share):.2%} | {max(share):.2%} |", flush=True)
    print(f"load average at the end: {load()}")


if __name__ == "__main__":
    main()
