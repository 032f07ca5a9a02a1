"""Writes the seeded "L" data (60,000 rows x 784 float columns + an integer class column `label`) as CSV, optionally as Parquet, with a config to train on it.

Usage (from the repository root):

    python benchmarks/big_data.py /tmp/big                 # /tmp/big/L.csv (about 431 MB) and /tmp/big/L.yaml
    python benchmarks/big_data.py /tmp/big --parquet       # also /tmp/big/L.parquet and /tmp/big/L-parquet.yaml
    python benchmarks/big_data.py /tmp/big --text          # also /tmp/big/T.csv (about 14 MB) and /tmp/big/T.yaml
    /usr/bin/time -v bptrain fit /tmp/big/L.yaml           # "Maximum resident set size", "Elapsed (wall clock)"

The rows are those of `train_speed.py`'s size L (same seed, same teacher network), the features
written with 6 significant digits. The configs train 784 -> 256 -> 128 -> 10 (relu, adam, float32,
batch 128) for one epoch, with `stopping.max_steps` given by --steps (default: no limit, one epoch):
`--steps 1` ends training at the first step, so the wall time of `bptrain fit` measures the time
to the first step plus the report.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROWS, INPUTS, CLASSES, SEED = 60_000, 784, 10, 0
BLOCK_ROWS = 2_000  # rows formatted at a time: the text of the whole file never sits in memory

CONFIG = """\
# The "{data}" data of benchmarks/big_data.py: {about}.
name: big-{kind}
seed: 0
data:
  train: {file}
  target: {target}
  split: {{val: 0.1, test: {test}}}
model:
  dtype: float32
  layers:
{layers}
optimizer: {{name: adam, lr: 0.001}}
training: {{batch_size: 128}}
stopping:
  max_epochs: 1
  max_steps: {steps}
  early_stopping: false
"""
L_DATA = {"data": "L", "about": "60,000 rows x 784 features, 10 classes", "target": "label", "test": 0.0, "units": (256, 128)}


def make_rows(seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """(features float64 (ROWS, INPUTS), class indices int64): the L rows of train_speed.py, unscaled."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((ROWS, INPUTS))
    teacher = rng.standard_normal((INPUTS, CLASSES))
    labels = np.argmax(x @ teacher + rng.standard_normal((ROWS, CLASSES)), axis=1)
    return x, labels


def write_csv(path: Path, x: np.ndarray, labels: np.ndarray) -> None:
    names = [f"x{j}" for j in range(x.shape[1])] + ["label"]
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write(",".join(names) + "\n")
        for start in range(0, len(x), BLOCK_ROWS):
            block = x[start : start + BLOCK_ROWS]
            lines = (",".join(np.char.mod("%.6g", row)) + f",{labels[start + i]}" for i, row in enumerate(block))
            f.write("\n".join(lines) + "\n")


def write_parquet(path: Path, x: np.ndarray, labels: np.ndarray) -> None:
    """The same values as the CSV (read back from their 6-digit text), as float64 columns."""
    import pandas as pd

    rounded = np.char.mod("%.6g", x).astype(np.float64)
    frame = pd.DataFrame(rounded, columns=[f"x{j}" for j in range(x.shape[1])])
    frame["label"] = labels
    frame.to_parquet(path, index=False)


TEXT_ROWS, TEXT_COLUMNS = 200_000, 5
T_DATA = {"data": "T", "about": "200,000 rows, 5 numeric and 5 text features, 3 classes as text", "target": "kind", "test": 0.1, "units": (64,)}


def write_text_data(path: Path, seed: int = SEED) -> None:
    """The "T" data: TEXT_ROWS rows of TEXT_COLUMNS numeric columns x0... (4 decimals) and as many text
    columns c0... of 8 categories each (the last one rare), and a text class `kind`: data whose
    reading is mostly about text, where L's is about numbers."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    columns = {f"x{j}": rng.standard_normal(TEXT_ROWS).round(4) for j in range(TEXT_COLUMNS)}
    shares = np.array([0.2, 0.2, 0.15, 0.15, 0.1, 0.1, 0.095, 0.005])
    for j in range(TEXT_COLUMNS):
        columns[f"c{j}"] = rng.choice([f"cat{k}" for k in range(len(shares))], TEXT_ROWS, p=shares)
    columns["kind"] = rng.choice(["alpha", "beta", "gamma"], TEXT_ROWS)
    pd.DataFrame(columns).to_csv(path, index=False)


def write_config(path: Path, data: Path, kind: str, steps: int | None, about: dict = L_DATA) -> None:
    """A config training on `data` (L's by default, or T_DATA's), named big-`kind`."""
    layers = "\n".join(f"    - {{units: {units}, activation: relu}}" for units in about["units"])
    fields = {k: v for k, v in about.items() if k != "units"}
    text = CONFIG.format(kind=kind, file=data.name, layers=layers, steps="null" if steps is None else steps, **fields)
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where to write L.csv and L.yaml (created if needed), e.g. /tmp/big")
    parser.add_argument("--parquet", action="store_true", help="also write L.parquet and L-parquet.yaml")
    parser.add_argument("--text", action="store_true", help="also write T.csv (text and numbers, 200,000 rows) and T.yaml")
    parser.add_argument("--steps", type=int, default=None, help="stopping.max_steps of the configs (default: none)")
    args = parser.parse_args(argv)
    args.folder.mkdir(parents=True, exist_ok=True)
    x, labels = make_rows()
    write_csv(args.folder / "L.csv", x, labels)
    write_config(args.folder / "L.yaml", args.folder / "L.csv", "csv", args.steps)
    written = [args.folder / "L.csv", args.folder / "L.yaml"]
    if args.parquet:
        write_parquet(args.folder / "L.parquet", x, labels)
        write_config(args.folder / "L-parquet.yaml", args.folder / "L.parquet", "parquet", args.steps)
        written += [args.folder / "L.parquet", args.folder / "L-parquet.yaml"]
    if args.text:
        write_text_data(args.folder / "T.csv")
        write_config(args.folder / "T.yaml", args.folder / "T.csv", "text", args.steps, T_DATA)
        written += [args.folder / "T.csv", args.folder / "T.yaml"]
    for path in written:
        print(f"{path}  {path.stat().st_size / 1e6:.0f} MB" if path.suffix != ".yaml" else path, file=sys.stdout)


if __name__ == "__main__":
    main()
