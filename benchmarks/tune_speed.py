"""Trials per minute of `bptrain tune` with --workers 2 against --workers 1, and the overhead of a trial.

Usage (from the repository root):

    python benchmarks/tune_speed.py                 # 16 trials each way on iris; --trials, --epochs to change

Each way is one `bptrain tune` process (random sampler, no pruner, so every trial trains the same
number of epochs and the two ways train the same trials). Trials per minute are given for the
whole command (start-up and the final report included) and for the trials alone (from the first
trial's start to the last one's end, as the study records them). A trial's overhead is its wall time in the worker
(trials.csv `seconds`) less its training time (`fit_seconds`, the loop alone): reading the data,
building the network, the run folder's files, and the study's bookkeeping. The first trial of each
worker also imports what trials use when the worker starts, outside these seconds.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """\
name: speed
seed: 0
data: {{train: {data}, target: species}}
model: {{layers: [{{units: 32, activation: relu}}]}}
training: {{batch_size: 8}}
stopping: {{max_epochs: {epochs}, early_stopping: false}}
tune:
  sampler: random
  pruner: none
  space:
    optimizer.lr: {{low: 0.001, high: 0.05, log: true}}
"""


def run(config: Path, workers: int, trials: int, runs: Path) -> tuple[float, float, list[dict]]:
    """The command's wall seconds, the study's (first trial's start to last trial's end), trials.csv's rows."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "bptrain", "tune", str(config), "--trials", str(trials), "--workers", str(workers), "-q", "--runs-dir", str(runs)],
        check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    (tune_dir,) = runs.iterdir()
    study = optuna.load_study(study_name="tune", storage=JournalStorage(JournalFileBackend(str(tune_dir / "study.journal"))))
    span = max(t.datetime_complete for t in study.trials) - min(t.datetime_start for t in study.trials)
    return wall, span.total_seconds(), list(csv.DictReader((tune_dir / "trials.csv").open()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=60)
    args = parser.parse_args()
    print(describe())
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "speed.yaml"
        config.write_text(CONFIG.format(data=ROOT / "datasets" / "iris.csv", epochs=args.epochs))
        results = {}
        for workers in (1, 2):
            wall, span, rows = run(config, workers, args.trials, Path(tmp) / f"runs-{workers}")
            overhead = [float(r["seconds"]) - float(r["fit_seconds"]) for r in rows]
            fit = [float(r["fit_seconds"]) for r in rows]
            results[workers] = (args.trials / wall * 60, args.trials / span * 60)
            print(
                f"--workers {workers}: {args.trials} trials in {wall:.1f} s = {results[workers][0]:.1f} trials/min "
                f"(from the first trial's start to the last one's end: {span:.1f} s = {results[workers][1]:.1f} trials/min); "
                f"fit median {statistics.median(fit):.3f} s; overhead per trial median {statistics.median(overhead):.3f} s, "
                f"max {max(overhead):.3f} s"
            )
        print(f"speed-up with 2 workers: {results[2][0] / results[1][0]:.2f}x (whole command), {results[2][1] / results[1][1]:.2f}x (trials alone)")
        print(describe())


if __name__ == "__main__":
    main()
