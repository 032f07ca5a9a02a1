"""What check promises, fit keeps: the data and memory problems both find before training, with one
`error:` line and its exit code, and the warnings about suspect columns both print."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import pytest

from conftest import ROOT, call_cli, write

CONFIG, DATA = 2, 3
LIMIT_GIB = 6  # an address-space limit: allocating what the estimate refuses would fail with MemoryError (exit 1)


def run_limited(*args, cwd):
    """`python -m bptrain ARGS` unable to allocate more than LIMIT_GIB: proof that a refusal comes first."""
    limit = LIMIT_GIB * 2**30
    return subprocess.run(
        [sys.executable, "-m", "bptrain", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", "OPENBLAS_NUM_THREADS": "1"},
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)),
    )


def command(name: str, tmp_path, *extra):
    return (name, "config.yaml", *extra) if name == "check" else (name, "config.yaml", "-q", "--runs-dir", tmp_path / "runs", *extra)


@pytest.mark.parametrize("name", ["check", "fit"])
def test_a_network_too_large_for_memory_is_refused_naming_the_layer(tmp_path, name):
    write(tmp_path, f"seed: 0\ndata: {{train: {ROOT / 'datasets' / 'iris.csv'}, target: species}}\nmodel: {{layers: [{{units: 1000000000}}]}}\n")
    result = run_limited(*command(name, tmp_path), cwd=tmp_path)
    assert (result.returncode, result.stdout) == (CONFIG, "")
    assert result.stderr == (
        "error: model.layers[0].units: 1000000000 units need ~2458.7 GiB of memory to train, and the whole training ~2458.7 GiB, "
        f"but the address-space limit (ulimit -v) is {LIMIT_GIB}.0 GiB; use fewer units\n"
    )
    assert not (tmp_path / "runs").exists()


def test_a_wide_layer_is_named_not_the_next_layer_whose_weights_it_makes_big(tmp_path):
    write(tmp_path, f"seed: 0\ndata: {{train: {ROOT / 'datasets' / 'iris.csv'}, target: species}}\nmodel: {{layers: [{{units: 100000000}}, 16]}}\n")
    result = run_limited("check", "config.yaml", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (CONFIG, "")
    assert result.stderr.startswith("error: model.layers[0].units: 100000000 units need ~"), result.stderr


@pytest.mark.parametrize("name", ["check", "fit"])
def test_one_hot_inputs_too_large_for_memory_are_refused_naming_the_column(tmp_path, name):
    (tmp_path / "many.csv").write_text("name,x,y\n" + "".join(f"n{i * 7919 % 100003},{i % 13},{'pq'[i % 2]}\n" for i in range(30000)))
    write(tmp_path, "seed: 0\ndata: {train: many.csv, target: y, categorical: {max_categories: 100000}}\n")
    result = run_limited(*command(name, tmp_path), cwd=tmp_path)
    assert (result.returncode, result.stdout) == (CONFIG, "")
    assert result.stderr == (
        "error: data.categorical.max_categories: column 'name', as 21000 one-hot inputs for 30000 rows, needs ~8.9 GiB of memory "
        f"to train, and the whole training ~9.9 GiB, but the address-space limit (ulimit -v) is {LIMIT_GIB}.0 GiB; "
        "lower it, or leave the column out with data.exclude: [name]\n"
    )
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("name", ["check", "fit"])
def test_a_class_only_in_the_validation_file_stops_check_and_fit_alike(tmp_path, name):
    (tmp_path / "train.csv").write_text("a,y\n" + "".join(f"{i % 5},{'pq'[i % 2]}\n" for i in range(20)))
    (tmp_path / "val.csv").write_text("a,y\n1,p\n2,r\n")
    write(tmp_path, "seed: 0\ndata: {train: train.csv, val: val.csv, target: y}\nstopping: {max_epochs: 1}\n")
    result = call_cli(*command(name, tmp_path), cwd=tmp_path)
    assert (result.returncode, result.stdout) == (DATA, "")
    assert result.stderr == (
        "error: val.csv: class 'r' (1 row) of target column 'y' is in none of the training rows (train.csv), "
        "so the model can never predict it; add rows of that class to train.csv, or remove those rows from val.csv\n"
    )


@pytest.mark.parametrize("name", ["check", "fit"])
@pytest.mark.parametrize("split", ["val", "test"])
def test_a_feature_column_missing_from_a_separate_file_is_named(tmp_path, name, split):
    rows = "".join(f"{i % 5},{i % 3},{'pq'[i % 2]}\n" for i in range(20))
    (tmp_path / "train.csv").write_text("a,b,y\n" + rows)
    (tmp_path / "other.csv").write_text("a,bb,y\n" + rows)
    (tmp_path / "full.csv").write_text("a,b,y\n" + rows)
    other = "val: full.csv, test: other.csv" if split == "test" else "val: other.csv, test: full.csv"
    write(tmp_path, f"seed: 0\ndata: {{train: train.csv, {other}, target: y}}\nstopping: {{max_epochs: 1}}\n")
    result = call_cli(*command(name, tmp_path), cwd=tmp_path)
    assert (result.returncode, result.stdout) == (DATA, "")
    assert result.stderr == "error: other.csv: missing 1 feature column of the training file train.csv: b. Did you mean 'bb'? Columns: a, bb, y\n"


@pytest.mark.parametrize("name", ["check", "fit"])
def test_an_infinite_regression_target_stops_check_and_fit_alike(tmp_path, name):
    (tmp_path / "d.csv").write_text("a,y\n" + "".join(f"{i % 5},{'inf' if i == 30 else i * 0.5}\n" for i in range(40)))
    write(tmp_path, "seed: 0\ndata: {train: d.csv, target: y}\nstopping: {max_epochs: 1}\n")
    result = call_cli(*command(name, tmp_path), cwd=tmp_path)
    assert (result.returncode, result.stdout) == (DATA, "")
    assert result.stderr == "error: d.csv: target column 'y' holds infinite values in row 31; remove those rows\n"


def test_more_folds_than_rows_is_refused_before_any_training(tmp_path):
    result = call_cli("fit", ROOT / "configs" / "iris.yaml", "--folds", "100000", "-q", "--runs-dir", tmp_path / "runs")
    assert (result.returncode, result.stdout) == (CONFIG, "")
    assert result.stderr == (
        f"error: data.split.folds: 100000 folds need at least 100000 rows, but {ROOT / 'datasets' / 'iris.csv'} "
        "has only 126 rows besides the test rows; use at most 42 folds (stratified folds need a row of every class, and class "
        "'setosa' has only 42 rows besides the test rows)\n"
    )
    assert not (tmp_path / "runs").exists()


SUSPECT_WARNINGS = [
    "warning: h.csv: column 'id' looks like a row number (the values 1 to 40, each once); a model can learn the order of the rows "
    "from it instead of the data: leave it out with data.exclude: [id]",
    "warning: h.csv: column 'name' looks like free text or an identifier (40 different values in 40 rows), so its one-hot inputs "
    "stand for arbitrary values: leave it out with data.exclude: [name]",
    "warning: h.csv: column 'price' holds numbers with a decimal comma (e.g. '0,5'), read as categories; set data.read.decimal: \",\" "
    "to read them as numbers",
]


@pytest.mark.parametrize("name", ["check", "fit"])
def test_suspect_columns_get_one_warning_line_each_in_check_and_fit(tmp_path, name):
    (tmp_path / "h.csv").write_text("id;name;price;size;y\n" + "".join(f"{i + 1};n{i};{i % 9},5;{i % 4};{'pq'[i % 2]}\n" for i in range(40)))
    write(tmp_path, "seed: 0\ndata: {train: h.csv, target: y, categorical: {missing: most_frequent}}\nstopping: {max_epochs: 1}\n")
    result = call_cli(*command(name, tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[:3] == SUSPECT_WARNINGS


@pytest.mark.parametrize("name", ["check", "fit"])
def test_digits_single_value_columns_are_one_warning(tmp_path, name):
    result = call_cli(name, ROOT / "configs" / "digits.yaml", *(() if name == "check" else ("-q", "--runs-dir", tmp_path, "--set", "stopping.max_epochs=1")))
    assert result.returncode == 0
    assert result.stderr == (
        f"warning: {ROOT / 'datasets' / 'digits.csv'}: columns 'pixel_0_0', 'pixel_3_0', 'pixel_4_0', 'pixel_4_7' "
        "have a single value each in the training rows; they give the network nothing to learn from\n"
    )


CONSTANT_TARGET = (
    "warning: d.csv: target column 'y' holds only 5.5 in the training rows: there is nothing to learn but that value, "
    "and r2, which measures against the target's spread, is undefined (left empty) on rows whose target is constant\n"
)


@pytest.mark.parametrize("name", ["check", "fit"])
def test_a_constant_regression_target_is_warned_of_and_r2_is_empty_everywhere(tmp_path, name):
    """r2 of a constant target is -inf unless fitted exactly: null in report.json, and so empty in
    report.md and the summary too, not -inf."""
    import json

    (tmp_path / "d.csv").write_text("a,y\n" + "".join(f"{i % 7},5.5\n" for i in range(40)))
    write(tmp_path, "seed: 0\ndata: {train: d.csv, target: y}\nstopping: {max_epochs: 2}\n")
    result = call_cli(*command(name, tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == CONSTANT_TARGET
    if name == "fit":
        (run,) = (tmp_path / "runs").iterdir()
        report = json.loads((run / "report.json").read_text())
        assert [report["metrics"][s]["r2"] for s in ("train", "val", "test")] == [None, None, None]
        assert "| r2 | – | – | – |" in (run / "report.md").read_text().splitlines()
        assert [line.rsplit("  ", 1)[1] for line in result.stdout.splitlines()[2:]] == ["r2 -", "r2 -"]
