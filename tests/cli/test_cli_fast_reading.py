"""`bptrain fit` on a wide numeric file: the fast readers (CSV on two threads, Parquet by blocks of columns) and the inputs encoded in blocks train the very network the ordinary reader does, bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import call_cli, metrics_rows, model_digests, write
from bptrain.data import fast_parquet, fastcsv
from bptrain.data.reading import MAX_LINE_BYTES

pytest.importorskip("pyarrow")

CONFIG = """\
seed: 7
data:
  train: {file}
  target: label
  split: {{val: 0.2, test: 0.2}}
  numeric: {{missing: mean}}
model:
  dtype: float32
  layers: [{{units: 16, activation: relu}}, {{units: 8, activation: tanh}}]
training: {{batch_size: 32, threads: 1}}
stopping: {{max_epochs: 3}}
report: {{figures: false}}
"""


def _frame() -> pd.DataFrame:
    """300 rows of 140 float columns (gaps in three of them, one constant) and a count, and a class label."""
    rng = np.random.default_rng(11)
    frame = pd.DataFrame({f"x{j}": rng.standard_normal(300) * 10.0 ** (j % 5 - 2) for j in range(140)})
    for j in (3, 70, 129):
        frame.loc[rng.choice(300, 4, replace=False), f"x{j}"] = np.nan
    frame["x100"] = 2.5
    frame["count"] = rng.integers(0, 50, 300)
    frame["label"] = rng.integers(0, 3, 300)
    return frame


def _fit(tmp_path: Path, name: str) -> Path:
    runs = tmp_path / f"runs-{name}"
    config = write(tmp_path, CONFIG.format(file=name), f"{name}.yaml")
    result = call_cli("fit", config, "--runs-dir", runs, "-q")
    assert result.returncode == 0, result.stderr
    (run,) = runs.iterdir()
    return run


def test_fast_and_ordinary_reading_train_the_same_network(tmp_path):
    frame = _frame()
    frame.to_csv(tmp_path / "plain.csv", index=False)
    text = (tmp_path / "plain.csv").read_text()
    header, first, rest = text.split("\n", 2)
    cells = first.split(",")
    cells[1] = f'"{cells[1]}"'  # one quoted number: the same values, but no longer a file the fast reader takes
    (tmp_path / "quoted.csv").write_text("\n".join([header, ",".join(cells), rest]))
    frame.to_parquet(tmp_path / "table.parquet")

    names = header.split(",")
    start = len(header) + 1
    assert fastcsv.read_numeric(tmp_path / "plain.csv", names, start, ",", MAX_LINE_BYTES) is not None
    assert fastcsv.read_numeric(tmp_path / "quoted.csv", names, start, ",", MAX_LINE_BYTES) is None
    assert fast_parquet.read_numeric(tmp_path / "table.parquet") is not None

    fast, ordinary, parquet = (_fit(tmp_path, name) for name in ("plain.csv", "quoted.csv", "table.parquet"))
    assert model_digests(fast) == model_digests(ordinary) == model_digests(parquet)
    assert metrics_rows(fast) == metrics_rows(ordinary) == metrics_rows(parquet)
