"""bptrain explain: permutation importance per input column, on a dataset made here where only two
of five columns carry the signal; seeded, so repeated calls print the same bytes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import call_cli, run_cli, write

CONFIG = """
name: signal
seed: 5
data: {train: signal.csv, target: label, split: {val: 0.2, test: 0.25}}
model: {layers: [{units: 16, activation: relu}]}
optimizer: {name: adam, lr: 0.02}
stopping: {max_epochs: 40}
"""


def signal_frame(rows: int, seed: int) -> pd.DataFrame:
    """Columns a and b decide the label; c and d are noise, and so is the categorical column colour."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(size=rows).round(4) for name in "abcd"})
    frame.insert(2, "colour", rng.choice(["red", "green", "blue"], size=rows))
    frame["label"] = np.where(frame["a"] - frame["b"] > 0, "yes", "no")
    return frame


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    top = tmp_path_factory.mktemp("explain")
    signal_frame(500, 1).to_csv(top / "signal.csv", index=False)
    result = call_cli("fit", write(top, CONFIG), "--runs-dir", top / "runs", "-q")
    assert result.returncode == 0, result.stderr
    (folder,) = (top / "runs").iterdir()
    return folder


def test_the_two_columns_that_carry_the_signal_rank_first(run):
    result = call_cli("explain", run, "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    columns = found["columns"]
    assert [c["column"] for c in columns][:2] in (["a", "b"], ["b", "a"])
    assert sorted(c["column"] for c in columns) == ["a", "b", "c", "colour", "d"]  # one entry per column, not per one-hot input
    assert {c["column"]: c["inputs"] for c in columns}["colour"] == 3
    signal, noise = columns[:2], columns[2:]
    assert min(c["loss_increase"] for c in signal) > 10 * max(abs(c["loss_increase"]) for c in noise)
    assert min(c["accuracy_drop"] for c in signal) > 0.15
    assert (found["rows"], found["row_count"], found["repeats"], found["seed"], found["metric"]) == ("test", 125, 5, 0, "accuracy")
    assert found["baseline"]["accuracy"] > 0.9
    assert all(c["loss_increase_std"] > 0 for c in signal)  # the spread over five different shuffles
    assert found["figure"] == str(run / "figures" / "importance.png")


def test_explain_is_seeded_and_prints_a_table(run, tmp_path):
    first = run_cli("explain", run, "--repeats", "3", "--seed", "7", "-o", tmp_path)
    again = call_cli("explain", run, "--repeats", "3", "--seed", "7", "-o", tmp_path)
    assert (first.returncode, first.stderr) == (0, "")
    assert first.stdout == again.stdout
    lines = first.stdout.splitlines()
    assert lines[0] == f"permutation importance on the test rows (125) of {run}, 3 repeats, seed 7"
    assert lines[1].startswith("baseline: loss ") and lines[1].endswith("; each column shuffled in turn, most important first")
    assert lines[2] == ""
    assert lines[3].split() == ["column", "loss", "increase", "±", "std", "accuracy", "drop", "±", "std"]
    assert sorted(line.split()[0] for line in lines[4:6]) == ["a", "b"]
    assert [len(line.split()) for line in lines[4:9]] == [5] * 5
    assert lines[-1] == f"figure   {tmp_path / 'importance.png'}"
    other_seed = call_cli("explain", run, "--repeats", "3", "--seed", "8", "-o", tmp_path)
    assert other_seed.stdout != first.stdout


def test_one_repeat_has_no_spread_and_data_gives_other_rows(run, tmp_path):
    data = tmp_path / "more.csv"
    signal_frame(60, 2).to_csv(data, index=False)
    result = call_cli("explain", run, "--data", data, "--repeats", "1", "--json", "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert (found["rows"], found["row_count"]) == ("data", 60)
    assert all(c["loss_increase_std"] == 0.0 and c["accuracy_drop_std"] == 0.0 for c in found["columns"])


def test_data_without_the_target_is_a_data_error(run, tmp_path):
    data = tmp_path / "unlabelled.csv"
    signal_frame(10, 3).drop(columns="label").to_csv(data, index=False)
    result = call_cli("explain", run, "--data", data, "-o", tmp_path)
    assert (result.returncode, result.stdout) == (3, "")
    assert result.stderr == (
        f"error: {data}: target column 'label' not found; explain needs labelled rows (use bptrain predict for unlabelled ones).\n"
    )


def test_explain_bad_input(run, tmp_path):
    (tmp_path / "empty").mkdir()
    not_a_run = call_cli("explain", tmp_path / "empty")
    assert (not_a_run.returncode, not_a_run.stdout) == (5, "")
    assert not_a_run.stderr == f"error: {tmp_path / 'empty'}: not a run folder written by bptrain fit (it needs model.npz and config.yaml)\n"
    zero = call_cli("explain", run, "--repeats", "0")
    assert zero.returncode == 2
    assert zero.stderr == "error: bptrain explain: --repeats: must be greater than or equal to 1; see 'bptrain explain --help'\n"


def test_a_negative_seed_is_a_usage_error(run):
    result = call_cli("explain", run, "--seed", "-1")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "error: bptrain explain: --seed: must be greater than or equal to 0; see 'bptrain explain --help'\n"


def test_a_data_file_of_one_row_is_a_data_error_naming_it(run, tmp_path):
    signal_frame(1, 3).to_csv(tmp_path / "one.csv", index=False)
    result = call_cli("explain", run, "--data", "one.csv", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (3, "")
    assert result.stderr == "error: one.csv: 1 row to shuffle; permutation importance needs two rows or more\n"


def test_a_model_file_alone_is_named_as_given(run, tmp_path):
    (tmp_path / "lonely.npz").write_bytes((run / "model.npz").read_bytes())
    signal_frame(60, 4).to_csv(tmp_path / "rows.csv", index=False)
    result = call_cli("explain", "lonely.npz", "--data", "rows.csv", "--repeats", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "permutation importance on the data rows (60) of lonely.npz, 2 repeats, seed 0"
    assert lines[-1] == "figure   figures/importance.png"
    assert (tmp_path / "figures" / "importance.png").is_file()
