"""Fuzz fixtures: small runs fitted once per session, whose files the tests copy and mutate."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bptrain.cli import app

ROOT = Path(__file__).resolve().parents[2]
# Batch norm and dropout put running statistics and a noise generator into the files; penguins adds categories.
CONFIGS = {
    "iris": """
name: iris
seed: 3
data: {train: iris.csv, target: species, split: {val: 0.2, test: 0.2}}
model:
  layers:
    - {units: 6, activation: relu, dropout: 0.1}
    - {type: batch_norm}
stopping: {max_epochs: 2}
""",
    "penguins": """
name: penguins
seed: 11
data:
  train: penguins.csv
  target: species
  numeric: {missing: median}
  categorical: {missing: most_frequent}
  columns: {year: {kind: categorical}}
model: {layers: [{units: 5}]}
stopping: {max_epochs: 2}
""",
}


@pytest.fixture(scope="session")
def fitted(tmp_path_factory) -> dict[str, Path]:
    """{"iris": run folder, "penguins": run folder}, with their data beside the runs folder."""
    folder = tmp_path_factory.mktemp("fuzz-runs")
    found = {}
    for name, text in CONFIGS.items():
        shutil.copy(ROOT / "datasets" / f"{name}.csv", folder / f"{name}.csv")
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
        result = CliRunner().invoke(app, ["fit", str(folder / f"{name}.yaml"), "-q", "--runs-dir", str(folder / "runs")])
        assert result.exit_code == 0, result.output
        (found[name],) = (folder / "runs").glob(f"{name}-*")
    return found
