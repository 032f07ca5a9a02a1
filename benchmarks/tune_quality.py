"""A 30-trial TPE search per shipped config against the shipped config itself, on its own validation metric.

Usage (from the repository root):

    python benchmarks/tune_quality.py                        # every shipped config, 30 trials, 2 workers
    python benchmarks/tune_quality.py iris wine --trials 30 --workers 2

For each config: `bptrain fit configs/NAME.yaml` (the shipped settings) and `bptrain tune
configs/NAME.yaml --space SPACE` over the learning rate, the batch size, the depth and width of the
hidden layers, dropout and l2 (SPACE below), both with the config's seed, so both validate on the
same rows. The metric is the config's early-stopping monitor, in its direction. Prints a Markdown
table row per config.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ("iris", "wine", "breast_cancer", "penguins", "diabetes", "digits")
SPACE = """\
space:
  optimizer.lr: {low: 1.0e-4, high: 0.1, log: true}
  training.batch_size: [16, 32, 64]
  model.layers.count: {low: 1, high: 3}
  model.layers.units: {low: 16, high: 256, log: true}
  model.layers.dropout: {low: 0.0, high: 0.3}
  regularization.l2: {low: 1.0e-6, high: 1.0e-2, log: true}
"""


def bptrain(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "bptrain", *args], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def only(folder: Path) -> Path:
    (found,) = folder.iterdir()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="*", default=list(CONFIGS))
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(describe())
    print("| config | metric | shipped config | best of the search | trials | minutes |")
    print("|---|---|---:|---:|---|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        space = Path(tmp) / "space.yaml"
        space.write_text(SPACE)
        for name in args.configs:
            config = ROOT / "configs" / f"{name}.yaml"
            bptrain("fit", str(config), "-q", "--runs-dir", f"{tmp}/{name}-fit")
            fitted = json.loads((only(Path(f"{tmp}/{name}-fit")) / "report.json").read_text())
            start = time.perf_counter()
            bptrain("tune", str(config), "--space", str(space), "--trials", str(args.trials), "--workers", str(args.workers), "-q", "--runs-dir", f"{tmp}/{name}-tune")
            minutes = (time.perf_counter() - start) / 60
            tuned = json.loads((only(Path(f"{tmp}/{name}-tune")) / "report.json").read_text())
            metric = tuned["metric"]
            shipped = fitted["metrics"]["val"][metric.removeprefix("val_")]
            better = tuned["best"]["value"] <= shipped if tuned["direction"] == "minimize" else tuned["best"]["value"] >= shipped
            counts = ", ".join(f"{n} {s}" for s, n in tuned["trials"].items())
            print(f"| {name} | {metric} ({tuned['direction']}) | {shipped:.4g} | {tuned['best']['value']:.4g}{'' if better else ' (worse)'} | {counts} | {minutes:.1f} |", flush=True)
    print(describe())


if __name__ == "__main__":
    main()
