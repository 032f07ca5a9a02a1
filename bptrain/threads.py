"""BLAS threads: how many a network's matrix products get, chosen from their size and the idle cores.

A second thread pays only on large products: on small ones OpenBLAS's threads spin more than they
work, and beside another busy process a spinning thread slows every product several times over
(benchmarks/README.md, "Threads"). So `auto` gives one thread to networks whose largest product per
batch is small, and to larger ones as many threads as cores are idle when the command starts.
OpenBLAS sums a product's terms in an order that depends on how it splits the product between
threads, so results are bit-identical only for the same count: the count is decided once per
command, and a resumed run keeps the count it started with.
"""

from __future__ import annotations

import functools
import math
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

# Multiply-adds of a network's largest product per batch from which a second thread pays (on the
# 2-core machine of benchmarks/README.md, "Threads": 0.6-1.0x the time of one thread from 4 M on,
# 0.8-1.4x below it, where a busy neighbour makes it up to 5x slower).
MIN_THREADED_PRODUCT = 4_000_000
IDLE_WINDOW = 0.1  # seconds over which idle cores are counted
# Running a trained network on rows it reads (predict, evaluate, the API, serve), the forward pass is
# only part of the work: reading and preparing each row costs about as much as 2,500 multiply-adds
# per input column. Below that a second thread spins beside the reading, for nothing (benchmarks/
# README.md, "Threads for predict": no faster at 300 and 1,300 multiply-adds a row per column,
# 1.3x faster at 4,700 and 17,500).
MIN_INFERENCE_WORK = 2_500


@dataclass(frozen=True)
class Threads:
    count: int  # the BLAS threads the command uses
    why: str  # how the count was chosen

    def report(self) -> dict:
        """As report.json and the checkpoints record it."""
        return {"count": self.count, "chosen": self.why}


@dataclass(frozen=True)
class Watch:
    """The cores' CPU time and this process's at a moment: from it, what other processes have used
    of the cores since, without a pause to measure (idle_cores)."""

    cpu: dict[str, tuple[int, int]]
    own: float  # this process's CPU seconds, all its threads
    at: float  # time.monotonic()
    serial: int  # the how-manieth watch of the process


_watches = {"open": 0, "started": 0}  # watches of this process: open now, and started ever
_watches_lock = threading.Lock()


@contextmanager
def watching() -> Iterator[Watch | None]:
    """A Watch for the duration of a command (None where /proc/stat cannot be read). It is trusted
    only while it is the process's one watch (sole): another command at work in the same process
    would count as this process's own use of the cores."""
    with _watches_lock:
        _watches["open"] += 1
        _watches["started"] += 1
        serial = _watches["started"]
    try:
        try:
            watch = Watch(_cpu_times(), time.process_time(), time.monotonic(), serial)
        except (OSError, ValueError):
            watch = None
        yield watch
    finally:
        with _watches_lock:
            _watches["open"] -= 1


def _sole(watch: Watch) -> bool:
    """Whether no other watch was open in this process at any time since `watch` started."""
    with _watches_lock:
        return _watches["open"] == 1 and _watches["started"] == watch.serial


def choose(setting: int | str, largest_product: int, since: Watch | None = None) -> Threads:
    """The thread count for `setting` ("auto" or a number) and a network whose largest matrix product
    per batch takes `largest_product` multiply-adds; `since`, a Watch started before the command
    read its data, spares the measurement its pause."""
    if setting != "auto":
        return Threads(int(setting), "set")
    if largest_product < MIN_THREADED_PRODUCT:
        return Threads(1, f"auto: products up to {largest_product:,} multiply-adds are too small for threads")
    cores = usable_cores()
    idle = idle_cores(cores, since)
    count = max(1, min(cores, math.floor(idle + 0.2)))
    return Threads(count, f"auto: {idle:.1f} of {cores} cores idle at the start")


def choose_for_inference(setting: int | str, model, rows: int, columns: int) -> Threads:
    """The thread count for running `model` on `rows` rows at a time of `columns` input columns: as
    choose(), but `auto` gives one thread unless the forward pass outweighs reading the rows."""
    if setting == "auto":
        per_row = sum(p.value.size for p in model.params if p.value.ndim == 2)
        if per_row < MIN_INFERENCE_WORK * columns:
            return Threads(
                1, f"auto: {per_row:,} multiply-adds a row for {columns} input columns: reading the rows outweighs them, one thread"
            )
    return choose(setting, largest_product(model, rows))


def largest_product(model, rows: int) -> int:
    """Multiply-adds of the largest matrix product in a forward pass over `rows` rows."""
    return max((rows * p.value.size for p in model.params if p.value.ndim == 2), default=0)


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity, within a cgroup's CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


def idle_cores(cores: int, since: Watch | None = None) -> float:
    """How many of the usable cores sat idle over the last IDLE_WINDOW seconds (Linux: /proc/stat;
    elsewhere: the cores less the load average). With `since`, started at least IDLE_WINDOW ago and
    the process's one watch since: the cores less what other processes used since then (all the
    busy time less this process's own)."""
    if since is not None and time.monotonic() - since.at >= IDLE_WINDOW and _sole(since):
        try:
            after = _cpu_times()
        except (OSError, ValueError):
            pass
        else:
            idle, total = _elapsed(since.cpu, after)
            if total > 0:
                own = (time.process_time() - since.own) / (time.monotonic() - since.at)
                others = max(0.0, cores * (total - idle) / total - own)
                return min(float(cores), max(0.0, cores - others))
    try:
        before = _cpu_times()
        time.sleep(IDLE_WINDOW)
        after = _cpu_times()
    except (OSError, ValueError):
        return max(0.0, cores - os.getloadavg()[0]) if hasattr(os, "getloadavg") else 1.0
    idle, total = _elapsed(before, after)
    return cores * idle / total if total > 0 else float(cores)


def _elapsed(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> tuple[int, int]:
    """(idle, total) jiffies of the CPUs between two readings of _cpu_times."""
    idle = sum(after[cpu][0] - before[cpu][0] for cpu in after if cpu in before)
    total = sum(after[cpu][1] - before[cpu][1] for cpu in after if cpu in before)
    return idle, total


def _cpu_times() -> dict[str, tuple[int, int]]:
    """(idle, total) jiffies of each CPU this process may use, from /proc/stat."""
    try:
        allowed = {f"cpu{i}" for i in os.sched_getaffinity(0)}
    except AttributeError:
        allowed = None
    times = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *fields = line.split()
            if not name.startswith("cpu") or name == "cpu" or (allowed is not None and name not in allowed):
                continue
            user, nice, system, idle, iowait, irq, softirq, steal = map(int, fields[:8])
            times[name] = (idle + iowait, user + nice + system + idle + iowait + irq + softirq + steal)
    if not times:
        raise ValueError("no CPU lines in /proc/stat")
    return times


@functools.cache
def _controller():
    """The BLAS thread pools, found once (a search of the loaded libraries takes milliseconds)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextmanager
def limited(count: int) -> Iterator[None]:
    """Every BLAS pool of the process at `count` threads, for the duration of the block."""
    with _controller().limit(limits=count, user_api="blas"):
        yield
