"""Seconds from process start to the first training step of `bptrain fit CONFIG`, the wall and CPU time and the peak RSS (median of n runs).

Usage (from the repository root; the bptrain measured is the one in this checkout):

    python benchmarks/big_data.py /tmp/big --parquet
    python benchmarks/first_step.py /tmp/big/L.yaml /tmp/big/L-parquet.yaml -n 3

Each run is `/usr/bin/time -v python -m bptrain fit CONFIG --set stopping.max_steps=1` with
`report.figures: false`, into a temporary runs folder. "to first step" is the time from launching
the process until fit prints its start line (run folder, task, rows), which it prints right
before the first step; "wall", "CPU" (user + system) and "peak RSS" are /usr/bin/time's
"Elapsed (wall clock)", "User time" + "System time" and "Maximum resident set size" of the whole
run (one step and the report included). On a shared machine the CPU seconds move least.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe

ROOT = Path(__file__).resolve().parent.parent
START_LINE = re.compile(r": (classification|regression|multilabel) \(")


def run_once(config: Path) -> tuple[float, float, float, float]:
    """(seconds to the start line, wall seconds, CPU seconds, peak RSS in MB) of one fit."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as runs:
        command = [
            "/usr/bin/time", "-v", sys.executable, "-m", "bptrain", "fit", str(config), "--runs-dir", runs,
            "--set", "stopping.max_steps=1", "--set", "report.figures=false",
        ]
        began = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        first_step, lines = None, []
        for line in process.stderr:
            lines.append(line)
            if first_step is None and START_LINE.search(line):
                first_step = time.perf_counter() - began
        if process.wait() != 0 or first_step is None:
            raise SystemExit(f"{config}: bptrain fit failed:\n{''.join(lines)}")
    report = "".join(lines)
    cpu = sum(float(re.search(rf"{kind} time \(seconds\): ([\d.]+)", report).group(1)) for kind in ("User", "System"))
    return first_step, _wall(report), cpu, int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", report).group(1)) / 1024


def _wall(report: str) -> float:
    """/usr/bin/time -v's "Elapsed (wall clock) time (h:mm:ss or m:ss): 0:15.61" in seconds."""
    clock = re.search(r"Elapsed \(wall clock\) time \([^)]*\): ([\d:.]+)", report).group(1)
    seconds = 0.0
    for part in clock.split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", type=Path, nargs="+", help="configs to fit, e.g. the ones big_data.py writes")
    parser.add_argument("-n", "--repeats", type=int, default=3, help="runs of each config (default: 3); the configs alternate")
    args = parser.parse_args(argv)
    print(describe())
    results: dict[Path, list[tuple[float, float, float, float]]] = {c: [] for c in args.configs}
    for _ in range(args.repeats):
        for config in args.configs:
            results[config].append(run_once(config.resolve()))
            first, wall, cpu, peak = results[config][-1]
            print(f"{config}: {first:.2f} s to first step, {wall:.2f} s wall, {cpu:.2f} s CPU, {peak:.0f} MB peak", flush=True)
    print(describe())
    print("| config | to first step | wall | CPU | peak RSS |\n|---|---:|---:|---:|---:|")
    for config, runs in results.items():
        first, wall, cpu, peak = (statistics.median(r[i] for r in runs) for i in range(4))
        print(f"| {config.name} | {first:.1f} s | {wall:.1f} s | {cpu:.1f} s | {peak:.0f} MB |")


if __name__ == "__main__":
    main()
