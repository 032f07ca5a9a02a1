"""Whole-process seconds of `bptrain fit CONFIG` against a plain scikit-learn script doing the same job.

Usage (from the repository root; the bptrain run is the one in this checkout):

    python benchmarks/iris_process.py                          # configs/iris.yaml, median of 5 pairs
    python benchmarks/iris_process.py --all --repeats 3        # every config in configs/
    python benchmarks/iris_process.py configs/wine.yaml configs/penguins.yaml

Both sides are timed from process start to exit: `python -m bptrain fit CONFIG` (run folders go to a
temporary folder), and benchmarks/sklearn_fit.py given the config's CSV, target, split fractions,
hidden layers, activation, optimizer, learning rate, batch size, epochs and patience (one CSV and
split fractions: the shipped configs' shape; separate val/test files are not followed). The two run
pair by pair (which one goes first alternates), all configs in each repeat, so that noise from
other work on the machine hits both alike; the figure is the median, and the ratio bptrain's median
over the script's. --threads (default 1) sets OPENBLAS_NUM_THREADS, OMP_NUM_THREADS and
MKL_NUM_THREADS for both. Needs scikit-learn (pip install scikit-learn), which bptrain never depends on.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe, load

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # read configs with this checkout's bptrain
SKLEARN_SCRIPT = Path(__file__).resolve().parent / "sklearn_fit.py"
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
SKLEARN_ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic", "linear": "identity"}


def sklearn_command(config_path: Path) -> list[str]:
    """benchmarks/sklearn_fit.py with the data, network and training settings of the bptrain config."""
    from bptrain.app import check
    from bptrain.config.loading import load_config

    config = load_config(ROOT / config_path)
    data, split = config.data, config.data.split
    dense = [layer for layer in config.model.layers if hasattr(layer, "units")]
    optimizer = config.optimizer
    early = config.stopping.early_stopping
    command = [sys.executable, str(SKLEARN_SCRIPT), str(data.train), str(data.target)]
    command += ["--val", str(split.val), "--test", str(split.test)]
    command += ["--stratify"] if split.stratify else []
    command += ["--regression"] if check(config)["task"] == "regression" else []
    categorical = [name for name, column in data.columns.items() if column.kind == "categorical"]
    command += ["--categorical", *categorical] if categorical else []
    if dense:  # sklearn's MLP has dense layers only, with one activation for all
        command += ["--layers", *(str(layer.units) for layer in dense)]
        command += ["--activation", SKLEARN_ACTIVATIONS.get(dense[0].activation.name, "relu")]
    if optimizer.name == "sgd":
        command += ["--solver", "sgd", "--momentum", str(optimizer.momentum)] + (["--nesterov"] if optimizer.nesterov else [])
    command += ["--lr", str(optimizer.lr), "--batch-size", str(config.training.batch_size)]
    command += ["--max-epochs", str(config.stopping.max_epochs), "--seed", str(config.seed or 0)]
    return command + ["--patience", str(early.patience if early else config.stopping.max_epochs)]


def run(command: list[str]) -> tuple[float, str]:
    """Seconds from start to exit, and the last line printed; a failed run stops the benchmark."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}")
    lines = done.stdout.strip().splitlines()
    return seconds, lines[-1] if lines else ""


def measure(configs: list[Path], repeats: int, runs_dir: Path) -> dict[Path, dict[str, list[float]]]:
    commands = {
        config: {
            "bptrain fit": [sys.executable, "-m", "bptrain", "fit", str(config), "--runs-dir", str(runs_dir)],
            "sklearn script": sklearn_command(config),
        }
        for config in configs
    }
    seconds = {config: {side: [] for side in pair} for config, pair in commands.items()}
    for r in range(repeats):
        for config, pair in commands.items():
            order = list(pair) if r % 2 == 0 else list(pair)[::-1]
            for side in order:
                took, last = run(pair[side])
                seconds[config][side].append(took)
                if r == 0 and side == "sklearn script":
                    print(f"{config}: the script printed: {last}", file=sys.stderr)
            figures = ", ".join(f"{side} {seconds[config][side][-1]:.2f} s" for side in pair)
            print(f"repeat {r + 1}/{repeats}: {config}: {figures}", file=sys.stderr, flush=True)
    return seconds


def table(seconds: dict[Path, dict[str, list[float]]]) -> str:
    lines = ["| config | bptrain fit | sklearn script | ratio |", "|---|---:|---:|---:|"]
    for config, sides in seconds.items():
        ours, theirs = statistics.median(sides["bptrain fit"]), statistics.median(sides["sklearn script"])
        lines.append(f"| {config} | {ours:.2f} s | {theirs:.2f} s | {ours / theirs:.2f}x |")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="*", type=Path, help="bptrain configs (default: configs/iris.yaml)")
    parser.add_argument("--all", action="store_true", help="every config in configs/")
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads of both processes (default: 1)")
    parser.add_argument("--repeats", "-n", type=int, default=5, help="pairs per config; the median is reported (default: 5)")
    args = parser.parse_args()
    if args.repeats < 1 or args.threads < 1:
        parser.error("--repeats and --threads must be at least 1")
    if args.all:
        args.configs += sorted((ROOT / "configs").glob("*.yaml"))
    args.configs = [c.resolve().relative_to(ROOT) if c.resolve().is_relative_to(ROOT) else c.resolve() for c in args.configs]
    args.configs = list(dict.fromkeys(args.configs or [Path("configs/iris.yaml")]))
    return args


def main() -> None:
    args = parse_args()
    for var in THREAD_VARIABLES:  # before numpy loads here, and inherited by both processes
        os.environ[var] = str(args.threads)
    try:
        import sklearn  # noqa: F401 (only checked here; the script imports it)
    except ImportError:
        sys.exit("iris_process.py compares against a scikit-learn script: pip install scikit-learn")
    print(f"machine: {describe()}")
    print(f"threads: {args.threads}; median of {args.repeats} pairs")
    with tempfile.TemporaryDirectory(prefix="bptrain-bench-") as runs_dir:
        seconds = measure(args.configs, args.repeats, Path(runs_dir))
    print(f"\nmedian seconds from process start to exit:\n{table(seconds)}")
    print(f"load average at the end: {load()}")


if __name__ == "__main__":
    main()
