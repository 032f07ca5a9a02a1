"""Whole-process seconds of short bptrain commands (--help, check, predict, fit), for one checkout or two side by side.

Usage (from the repository root):

    python benchmarks/startup.py                         # this checkout, median of 5
    python benchmarks/startup.py --old /tmp/bptrain-old  # and another checkout, runs alternating
    python benchmarks/startup.py --launcher script       # the venv's `bptrain` console script
    python benchmarks/startup.py --no-cache              # compile bptrain's modules on every run

Each command runs as a fresh process with PYTHONPATH set to the checkout, from its root, so it
imports that checkout's bptrain; the timer spans start to exit. Bytecode caches are kept in a
temporary folder (PYTHONPYCACHEPREFIX) and filled by one untimed run of each command, as an
installed package has them; --no-cache sets PYTHONDONTWRITEBYTECODE instead, so every run compiles
bptrain's own modules again. With --old, the two checkouts alternate run by run (which goes
first alternates too), so that other work on the machine hits both alike. predict reads
datasets/iris.csv with a run that fit trains once, before timing.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe

ROOT = Path(__file__).resolve().parent.parent


def commands(run: Path, runs_dir: Path) -> dict[str, list[str]]:
    return {
        "--help": ["--help"],
        "check configs/iris.yaml": ["check", "configs/iris.yaml"],
        "predict RUN datasets/iris.csv": ["predict", str(run), "datasets/iris.csv"],
        "fit configs/iris.yaml": ["fit", "configs/iris.yaml", "--quiet", "--runs-dir", str(runs_dir)],
    }


def launcher(kind: str) -> list[str]:
    if kind == "script":
        return [str(Path(sys.executable).parent / "bptrain")]
    return [sys.executable, "-m", "bptrain"]


def environment(checkout: Path, cache: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    env["PYTHONPATH"] = str(checkout)
    if cache is None:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        env["PYTHONPYCACHEPREFIX"] = str(cache)  # mirrors each source path, so the checkouts never share a file
    return env


def seconds(checkout: Path, argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one run of `argv`."""
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=checkout, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} in {checkout}: exit {done.returncode}\n{done.stderr}")
    return elapsed, (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)


def alternating(trees: dict[str, Path], table: dict[str, list[str]], envs: dict[str, dict[str, str]], repeats: int):
    """{(command, tree): [(wall, cpu), ...]}: each command in each tree, which tree goes first alternating."""
    times = {(name, tree): [] for name in table for tree in trees}
    for i in range(repeats):
        for name, argv in table.items():
            for tree in list(trees) if i % 2 == 0 else list(reversed(trees)):
                times[name, tree].append(seconds(trees[tree], argv, envs[tree]))
    return times


def train_run(checkout: Path, runs_dir: Path, start: list[str], env: dict[str, str]) -> Path:
    seconds(checkout, start + ["fit", "configs/iris.yaml", "--quiet", "--runs-dir", str(runs_dir), "--name", "bench"], env)
    return next(runs_dir.glob("bench-*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, help="another checkout to time alongside this one")
    parser.add_argument("--launcher", choices=["module", "script"], default="module", help="python -m bptrain, or the console script")
    parser.add_argument("--no-cache", action="store_true", help="no bytecode caches: bptrain's modules are compiled on every run")
    parser.add_argument("-n", "--repeats", type=int, default=5)
    parser.add_argument("--only", nargs="+", choices=["help", "check", "predict", "fit"], help="time only these commands")
    args = parser.parse_args()
    trees = {"this": ROOT} | ({"old": args.old.resolve()} if args.old else {})
    start = launcher(args.launcher)
    with tempfile.TemporaryDirectory() as tmp:
        cache = None if args.no_cache else Path(tmp) / "pycache"
        envs = {tree: environment(path, cache) for tree, path in trees.items()}
        run = train_run(ROOT, Path(tmp) / "runs", start, envs["this"])
        table = {k: start + v for k, v in commands(run, Path(tmp) / "timed").items() if not args.only or k.lstrip("-").split()[0] in args.only}
        alternating(trees, table, envs, 1)  # fills the bytecode caches
        times = alternating(trees, table, envs, args.repeats)
    caching = "no bytecode caches" if args.no_cache else "bytecode caches"
    print(f"median of {args.repeats}, wall-clock (CPU) seconds, {' '.join(start)}, {caching}; {describe()}")
    for name in table:
        cells = "  ".join(
            f"{tree} {statistics.median(t[0] for t in times[name, tree]):.3f} ({statistics.median(t[1] for t in times[name, tree]):.3f})"
            for tree in trees
        )
        print(f"{name:<32} {cells}")


if __name__ == "__main__":
    main()
