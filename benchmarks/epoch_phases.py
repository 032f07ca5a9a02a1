"""Where an epoch of bptrain's training loop goes: forward, loss, backward and update, beside the bare GEMMs.

    python benchmarks/epoch_phases.py --size L --threads 2 --engine numba --repeats 3

Builds the trainer of `train_speed.py` ("bptrain" contender) for one size and times each phase of
every step with a clock around the model's forward and param_grads, the loss and the optimizer's
update (the clock costs about a microsecond a call, a few milliseconds an epoch on L); the rest of
the epoch (gathering each batch, the loop itself) is what is left. The bare GEMMs of the same
epoch are timed just before, in the same process, so that each line's ratio compares like with
like on a shared machine.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

from threadpoolctl import threadpool_limits

import train_speed
from machine import describe

PHASES = (("model", "forward"), ("trainer", "loss"), ("model", "param_grads"), ("trainer", "_update"))


def timed_phases(trainer) -> dict[str, float]:
    """Wrap each phase of `trainer`'s step in a clock; returns the dict of seconds it adds to."""
    seconds: dict[str, float] = defaultdict(float)
    for owner, name in PHASES:
        target = trainer.model if owner == "model" else trainer
        inner = getattr(target, name)

        def clocked(*args, _inner=inner, _name=name, **kwargs):
            start = time.perf_counter()
            try:
                return _inner(*args, **kwargs)
            finally:
                seconds[_name] += time.perf_counter() - start

        setattr(target, name, clocked)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(train_speed.SIZES), default="L")
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads")
    parser.add_argument("--engine", choices=("numpy", "numba"), default="numpy", help="training.engine")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    size = train_speed.SIZES[args.size]
    x, labels = train_speed.make_data(size, 0)
    print(describe())
    with threadpool_limits(args.threads):
        gemms = train_speed.gemm_epoch(size, x, labels, 0)
        epoch = train_speed.bptrain_epoch(size, x, labels, 0, engine=args.engine)
        seconds = timed_phases(epoch.trainer)
        gemms(), epoch()  # warm up: buffers, caches, the compiled update
        for _ in range(args.repeats):
            seconds.clear()
            start = time.perf_counter()
            gemms()
            bare = time.perf_counter() - start
            start = time.perf_counter()
            epoch()
            whole = time.perf_counter() - start
            rest = whole - sum(seconds.values())
            phases = "  ".join(f"{name.strip('_')} {seconds[name]:.3f}" for _, name in PHASES)
            print(f"{args.size} {args.threads} thread(s) {args.engine}: GEMMs {bare:.3f} s, epoch {whole:.3f} s ({whole / bare:.2f}x): {phases}  rest {rest:.3f}")


if __name__ == "__main__":
    main()
