"""Properties over random small tables of mixed kinds (hypothesis), through the CLI in-process.

1. `fit` either succeeds or fails with a data error: exit 0 or 3, one `error:` line, never a traceback.
2. After a successful fit, `predict` on the training file reproduces `evaluate` on it: the metrics
   recomputed from the predictions equal the ones evaluate reports.

Examples are few and derandomized so the suite stays fast and repeatable; set
HYPOTHESIS_PROFILE=thorough to search harder (the profiles are in tests/conftest.py).
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hypothesis import given, strategies as st
from typer.testing import CliRunner

from bptrain.cli import app


WORDS = ["red", "green", "blue", "a,b", "1", "x y", "ÄÖ", "None?"]
FLOATS = st.floats(-1e6, 1e6, allow_nan=False)
SPECIAL = st.one_of(FLOATS, st.sampled_from([0.0, -2.5, 1e300, float("inf")]))  # in one float column of five


@st.composite
def column(draw, n: int, kind: str) -> list:
    """n values of one kind, some of them missing (None)."""
    missing = draw(st.floats(0.0, 0.4))
    values = {
        "float": st.lists(SPECIAL if draw(st.integers(0, 4)) == 0 else FLOATS, min_size=n, max_size=n),
        "int": st.lists(st.integers(-5, 2010), min_size=n, max_size=n),
        "text": st.lists(st.sampled_from(WORDS), min_size=n, max_size=n),
        "bool": st.lists(st.booleans(), min_size=n, max_size=n),
    }[kind]
    gaps = draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n))
    return [None if g < missing else v for v, g in zip(draw(values), gaps)]


@st.composite
def tables(draw, allow_drop: bool = True) -> tuple[pd.DataFrame, dict]:
    """A small table (features f0.., target y) and the data settings to fit it with."""
    n = draw(st.integers(8, 40))
    kinds = draw(st.lists(st.sampled_from(["float", "int", "text", "bool"]), min_size=1, max_size=4))
    frame = pd.DataFrame({f"f{i}": draw(column(n, kind)) for i, kind in enumerate(kinds)})
    target = draw(st.sampled_from(["class", "regression"]))
    if target == "class":
        frame["y"] = draw(st.lists(st.sampled_from(["p", "q", "r"]), min_size=n, max_size=n))
    else:
        frame["y"] = draw(st.lists(st.floats(-100, 100, allow_nan=False), min_size=n, max_size=n))
    numeric_rules = ["error", "mean", "median", "most_frequent", "constant"] + (["drop"] if allow_drop else [])
    categorical_rules = ["error", "most_frequent", "constant"] + (["drop"] if allow_drop else [])
    data = {
        "numeric": {
            "missing": draw(st.sampled_from(numeric_rules)),
            "scale": draw(st.sampled_from(["standard", "minmax", "robust", "none"])),
            "indicator": draw(st.booleans()),
        },
        "categorical": {"missing": draw(st.sampled_from(categorical_rules)), "max_categories": draw(st.integers(2, 5))},
    }
    return frame, data


def invoke(*args: str):
    return CliRunner().invoke(app, list(map(str, args)), catch_exceptions=False)


def fit(folder: Path, frame: pd.DataFrame, data: dict):
    frame.to_csv(folder / "t.csv", index=False)
    config = {"seed": 0, "data": {"train": "t.csv", "target": "y", **data}, "stopping": {"max_epochs": 3, "early_stopping": None}}
    (folder / "c.yaml").write_text(json.dumps(config))
    return invoke("fit", folder / "c.yaml", "-q", "--runs-dir", folder / "runs")


def assert_clean_outcome(result) -> None:
    assert result.exit_code in (0, 3), result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    if result.exit_code == 3:
        errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, result.output


@given(tables())
def test_fit_succeeds_or_fails_with_a_data_error(table):
    frame, data = table
    with tempfile.TemporaryDirectory() as folder:
        assert_clean_outcome(fit(Path(folder), frame, data))


@given(tables(allow_drop=False))
def test_predict_on_the_training_file_reproduces_evaluate(table):
    frame, data = table
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        fitted = fit(folder, frame, data)
        assert_clean_outcome(fitted)
        if fitted.exit_code != 0:
            return
        (run,) = (folder / "runs").iterdir()
        predicted = invoke("predict", run, folder / "t.csv", "--keep", "y")
        evaluated = invoke("evaluate", run, "--data", folder / "t.csv", "--json")
        assert predicted.exit_code == evaluated.exit_code == 0, predicted.output + evaluated.output
        metrics = json.loads(evaluated.stdout)["data"]
        rows = list(csv.reader(io.StringIO(predicted.stdout)))[1:]
        if "accuracy" in metrics:
            truth = pd.read_csv(folder / "t.csv")["y"].astype(str).tolist()
            assert metrics["accuracy"] == pytest.approx(np.mean([p == t for (_, p), t in zip(rows, truth)]), abs=1e-12)
        else:
            y, pred = np.array([[float(a), float(b)] for a, b in rows]).T
            assert metrics["mse"] == pytest.approx(np.mean((pred - y) ** 2), rel=1e-5, abs=1e-9)
