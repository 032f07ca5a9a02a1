"""The Python API: the same predictions, metrics, errors and warnings as the command line, on DataFrames."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import bptrain
from bptrain import app, errors
from conftest import ROOT, call_cli, fit_shipped, run_cli

IRIS = ROOT / "datasets" / "iris.csv"
DIABETES = ROOT / "datasets" / "diabetes.csv"
PENGUINS = ROOT / "datasets" / "penguins.csv"


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory) -> Path:
    return fit_shipped(tmp_path_factory.mktemp("iris"), "iris", 5)


@pytest.fixture(scope="module")
def diabetes_run(tmp_path_factory) -> Path:
    return fit_shipped(tmp_path_factory.mktemp("diabetes"), "diabetes", 5)


@pytest.fixture(scope="module")
def penguins_run(tmp_path_factory) -> Path:
    return fit_shipped(tmp_path_factory.mktemp("penguins"), "penguins", 3)


def cli_predictions(run: Path, data: Path, *extra: str) -> pd.DataFrame:
    """`bptrain predict` in a real process, its CSV read back with every number as float32 text."""
    result = run_cli("predict", run, data, *extra)
    assert result.returncode == 0, result.stderr
    return pd.read_csv(io.StringIO(result.stdout), dtype=str, keep_default_na=False)


# --- the same numbers as the command line ------------------------------------------------------


def test_iris_probabilities_and_labels_equal_bptrain_predicts_bit_for_bit(iris_run):
    model = bptrain.load(iris_run)
    proba = model.predict_proba(pd.read_csv(IRIS))
    labels = model.predict(pd.read_csv(IRIS))
    cli = cli_predictions(iris_run, IRIS, "--proba")
    assert list(proba.columns) == ["setosa", "versicolor", "virginica"]
    assert proba.dtypes.tolist() == [np.float32] * 3
    for c in proba.columns:
        # the CLI writes float32's shortest round-trip text: read back, the bits are the same
        np.testing.assert_array_equal(cli[f"proba_{c}"].to_numpy().astype(np.float32), proba[c].to_numpy())
        assert cli[f"proba_{c}"].tolist() == proba[c].to_numpy().astype(str).tolist()
    assert labels.tolist() == cli["prediction"].tolist()
    assert labels.name == "prediction" and len(set(labels)) > 1


def test_regression_values_equal_bptrain_predicts_bit_for_bit(diabetes_run):
    model = bptrain.load(diabetes_run / "model.npz")
    values = model.predict(pd.read_csv(DIABETES))
    cli = cli_predictions(diabetes_run, DIABETES)
    assert values.dtype == np.float32 and len(values) == 442
    np.testing.assert_array_equal(cli["prediction"].to_numpy().astype(np.float32), values.to_numpy())
    assert values.nunique() > 100  # a model that answers one value everywhere would prove nothing


def test_api_arrays_equal_the_predict_services_exactly(iris_run, diabetes_run):
    # the service the CLI runs, into memory: its JSON lines carry the same float32 values
    for run, data, proba in ((iris_run, IRIS, True), (diabetes_run, DIABETES, False)):
        out = io.StringIO()
        app.predict(run, str(data), out, proba=proba, fmt="jsonl")
        rows = pd.DataFrame([json.loads(line) for line in out.getvalue().splitlines()])
        model = bptrain.load(run)
        got = model.predict_proba(data) if proba else model.predict(data).to_frame()
        expected = rows[[f"proba_{c}" for c in model.classes]] if proba else rows[["prediction"]]
        np.testing.assert_array_equal(expected.to_numpy(dtype=np.float64).astype(np.float32), got.to_numpy())


def test_predictions_do_not_depend_on_the_rows_around_them(iris_run):
    model = bptrain.load(iris_run)
    frame = pd.read_csv(IRIS)
    whole = model.predict_proba(frame)
    for i in (0, 77, 149):
        np.testing.assert_array_equal(model.predict_proba(frame.iloc[[i]]).to_numpy(), whole.iloc[[i]].to_numpy())


def test_evaluate_equals_bptrain_evaluate_data(iris_run):
    result = run_cli("evaluate", iris_run, "--data", IRIS, "--json")
    assert result.returncode == 0, result.stderr
    assert bptrain.load(iris_run).evaluate(pd.read_csv(IRIS)) == json.loads(result.stdout)["data"]


def test_evaluate_on_the_training_file_warns_as_the_command_does(iris_run):
    model = bptrain.load(iris_run)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        on_file, on_frame = model.evaluate(IRIS), model.evaluate(pd.read_csv(IRIS))
    assert on_file == on_frame
    assert [(w.category, str(w.message)) for w in caught] == [
        (
            bptrain.BptrainWarning,
            f"{IRIS}: the file {iris_run} trained on (its data.train, the same SHA-256), so its training rows are among "
            f"these and the metrics lean optimistic; `bptrain evaluate {iris_run}` without --data uses the rows the run held out",
        )
    ]
    assert caught[0].filename == __file__


def test_evaluate_on_a_frame_of_text_equals_evaluate_on_its_file(diabetes_run):
    # features held as text were read as numbers; a regression target as text was "not numeric (e.g. '151.0')"
    model = bptrain.load(diabetes_run)
    with pytest.warns(bptrain.BptrainWarning, match="the metrics lean optimistic"):  # the training file
        on_file = model.evaluate(DIABETES)
    assert model.evaluate(pd.read_csv(DIABETES, dtype=str)) == on_file


def test_a_frames_index_columns_order_and_extra_columns_carry_through(iris_run):
    model = bptrain.load(iris_run)
    frame = pd.read_csv(IRIS)
    shuffled = frame[["petal_width", "species", "sepal_length", "petal_length", "sepal_width"]].assign(note="x")
    shuffled.index = [f"r{i}" for i in range(len(frame))]
    labels = model.predict(shuffled)
    assert labels.index.tolist() == shuffled.index.tolist()
    assert labels.tolist() == model.predict(frame).tolist()


def test_a_path_is_read_as_predict_reads_it(iris_run):
    model = bptrain.load(iris_run)
    pd.testing.assert_frame_equal(model.predict_proba(str(IRIS)), model.predict_proba(pd.read_csv(IRIS)))


def test_schema_names_columns_classes_and_outputs(penguins_run):
    schema = bptrain.load(penguins_run).schema
    assert (schema["task"], schema["targets"], schema["classes"]) == ("classification", ["species"], ["Adelie", "Chinstrap", "Gentoo"])
    assert list(schema["features"]) == ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex", "year"]
    assert schema["features"]["island"]["kind"] == "categorical"
    assert schema["features"]["island"]["categories"] == ["Biscoe", "Dream", "Torgersen"]
    assert schema["features"]["bill_length_mm"]["missing"] == "median"
    assert schema["outputs"] == ["prediction", "proba_Adelie", "proba_Chinstrap", "proba_Gentoo"]
    assert json.loads(json.dumps(schema)) == schema


# --- errors and warnings ------------------------------------------------------------------------


def test_unseen_categories_are_one_warning_and_strict_makes_them_an_error(penguins_run):
    model = bptrain.load(penguins_run)
    frame = pd.read_csv(PENGUINS).head(4).replace("Torgersen", "Atlantis")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labels = model.predict(frame)
    assert len(labels) == 4
    assert [(w.category, str(w.message)) for w in caught] == [
        (
            bptrain.BptrainWarning,
            "DataFrame: 4 values in categorical columns the model never saw, encoded as unknown (no category): "
            "island 'Atlantis' (4 rows). Pass strict=True to make this an error",
        )
    ]
    assert caught[0].filename == __file__  # the warning points at the caller's line
    with pytest.raises(bptrain.DataError) as e:
        model.predict(frame, strict=True)
    assert str(e.value) == (
        "DataFrame: column 'island' holds categories the model never saw in rows 1, 2, 3, 4: 'Atlantis'; "
        "it knows Biscoe, Dream, Torgersen (strict=True)"
    )
    with pytest.raises(bptrain.DataError) as e:
        model.evaluate(frame, strict=True)
    assert str(e.value).endswith("it knows Biscoe, Dream, Torgersen (strict=True)")


def test_a_missing_column_is_named(iris_run):
    frame = pd.read_csv(IRIS).drop(columns="petal_width")
    with pytest.raises(bptrain.DataError) as e:
        bptrain.load(iris_run).predict(frame)
    assert str(e.value) == (
        "DataFrame: missing 1 feature column the model was trained with: petal_width. "
        "Columns: sepal_length, sepal_width, petal_length, species"
    )


def test_an_unparsable_value_names_its_row_and_column(iris_run):
    frame = pd.read_csv(IRIS).astype({"sepal_width": object})
    frame.loc[2, "sepal_width"] = "wide"
    with pytest.raises(bptrain.DataError) as e:
        bptrain.load(iris_run).predict_proba(frame)
    assert str(e.value) == "DataFrame: column 'sepal_width' must be numeric, but row 3 holds text: 'wide'. The model reads this column as numbers."


@pytest.mark.parametrize("values", [[True, True, False], [3.5, True, 3.1]], ids=["bool-dtype", "object-with-a-bool"])
def test_true_or_false_in_a_numeric_column_is_text_not_a_number(iris_run, values):
    frame = pd.read_csv(IRIS).head(3)
    frame["sepal_width"] = pd.Series(values, dtype=bool if isinstance(values[0], bool) else object)
    with pytest.raises(bptrain.DataError) as e:
        bptrain.load(iris_run).predict(frame)
    rows = "rows 1, 2, 3 hold text: 'True', 'True', 'False'" if isinstance(values[0], bool) else "row 2 holds text: 'True'"
    assert str(e.value) == f"DataFrame: column 'sepal_width' must be numeric, but {rows}. The model reads this column as numbers."


def test_evaluate_of_no_rows_is_an_error_not_nan_metrics(iris_run):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(bptrain.DataError) as e:
            bptrain.load(iris_run).evaluate(pd.read_csv(IRIS).iloc[:0])
    assert str(e.value) == "DataFrame: has no rows to score; give labelled rows"


def test_evaluate_with_every_row_dropped_is_an_error(tmp_path):
    rows = pd.DataFrame({"a": [0.1, 0.5, 0.9, 0.3] * 5, "b": [1.0, None, 2.0, 3.0] * 5, "y": ["p", "q"] * 10})
    config = {"data": {"train": str(tmp_path / "t.csv"), "target": "y", "numeric": {"missing": "drop"}}, "stopping": {"max_epochs": 1}}
    rows.to_csv(tmp_path / "t.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bptrain.BptrainWarning)  # the rows fit drops
        model = bptrain.fit(config, runs_dir=tmp_path / "runs").model
    with pytest.raises(bptrain.DataError) as e:
        model.evaluate(rows[rows["b"].isna()])
    assert str(e.value) == "DataFrame: every row has a missing value where the model drops rows (missing: drop); no rows are left to score"


def test_duplicate_column_names_are_named(iris_run):
    frame = pd.read_csv(IRIS)
    with pytest.raises(bptrain.DataError) as e:
        bptrain.load(iris_run).predict(pd.concat([frame, frame[["sepal_width"]]], axis=1))
    assert str(e.value) == "DataFrame: duplicate column names: sepal_width. Rename them so each is unique"


@pytest.mark.parametrize("method", ["predict", "predict_proba", "evaluate"])
def test_columns_of_several_levels_are_refused(iris_run, method):
    frame = pd.read_csv(IRIS)
    frame.columns = pd.MultiIndex.from_tuples([(c, "cm") for c in frame.columns])
    with pytest.raises(bptrain.DataError) as e:
        getattr(bptrain.load(iris_run), method)(frame)
    assert str(e.value) == "DataFrame: the columns have 2 levels (a MultiIndex); give one name per column, e.g. frame.columns = [...]"


def test_a_regression_target_too_large_for_float32_is_named(diabetes_run):
    rows = pd.read_csv(DIABETES).head(3)
    rows.loc[1, "progression"] = 1e300
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy overflow warning on the way
        with pytest.raises(bptrain.DataError) as e:
            bptrain.load(diabetes_run).evaluate(rows)
    assert str(e.value) == (
        "DataFrame: target column 'progression', row 2: the value is too large to use "
        "(it becomes infinite in float32 after scaling); rescale the column, e.g. divide it by a power of ten"
    )


def test_probabilities_of_a_regression_model_are_refused(diabetes_run):
    with pytest.raises(bptrain.ConfigError) as e:
        bptrain.load(diabetes_run).predict_proba(pd.read_csv(DIABETES))
    assert str(e.value) == "predict_proba: this model does regression; there are no class probabilities (use predict)"


def test_evaluate_needs_the_target(iris_run):
    with pytest.raises(bptrain.DataError) as e:
        bptrain.load(iris_run).evaluate(pd.read_csv(IRIS).rename(columns={"species": "specis"}))
    assert str(e.value) == (
        "DataFrame: target column 'species' not found; evaluate needs labelled rows (use predict for unlabelled ones). "
        "Did you mean 'specis'?"
    )


@pytest.mark.parametrize(
    "path, error, message",
    [
        (
            "datasets/iris.csv",
            bptrain.ModelFileError,
            "datasets/iris.csv: not a bptrain model file, or a damaged one (no archive directory: cut short, or not an .npz file); "
            "was it written by bptrain fit?",
        ),
        ("datasets", bptrain.ModelFileError, "datasets: no model.npz in this folder; is it a run folder written by bptrain fit?"),
    ],
    ids=["a-csv-file", "a-folder-without-a-model"],
)
def test_load_of_a_path_that_is_not_a_model(monkeypatch, path, error, message):
    monkeypatch.chdir(ROOT)
    with pytest.raises(error) as e:
        bptrain.load(path)
    assert (type(e.value), str(e.value)) == (error, message)
    assert e.value.exit_code == errors.ExitCode.MODEL_FILE


def test_load_refuses_a_bad_thread_count(iris_run):
    with pytest.raises(bptrain.ConfigError) as e:
        bptrain.load(iris_run, threads=0)
    assert str(e.value) == "threads=0: give 'auto' or a whole number of threads from 1"



@pytest.mark.parametrize("path, kind", [(None, "NoneType"), (3, "int"), (b"runs/x", "bytes")])
def test_load_of_something_not_a_path_is_a_type_error_saying_what_it_takes(path, kind):
    with pytest.raises(TypeError, match=f"^expected the path of a run folder or of its model.npz, not {kind}$"):
        bptrain.load(path)

def test_rows_of_another_type_are_a_type_error(iris_run):
    with pytest.raises(TypeError, match="^expected a pandas DataFrame or the path of a CSV or Parquet file, not list$"):
        bptrain.load(iris_run).predict([{"sepal_length": 1.0}])


# --- fit ------------------------------------------------------------------------------------------


def test_fit_of_a_mapping_leaves_out_its_tune_section_as_a_config_file_does(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    config = yaml.safe_load((ROOT / "configs" / "iris.yaml").read_text())
    config["data"]["train"] = "datasets/iris.csv"
    assert "tune" in config
    run = bptrain.fit(config, overrides={"stopping.max_epochs": 1}, runs_dir=tmp_path)
    assert run.report["stop_reason"] == "max_epochs"


def test_a_missing_data_file_of_a_mapping_is_named_relative_to_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(bptrain.DataError) as e:
        bptrain.fit({"data": {"train": "nope.csv", "target": "y"}}, runs_dir=tmp_path / "runs")
    assert str(e.value) == (
        "nope.csv: data file not found. Check the path "
        f"(data paths of a config given as a mapping are relative to the current folder, {tmp_path})"
    )


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"overrides": [("optimizer.lr", 0.1)]}, "overrides: expected a mapping of dotted keys to values, not list"),
        ({"overrides": {3: 0.1}}, "overrides: expected dotted keys as text, such as 'optimizer.lr', not int 3"),
        ({"name": 3}, "name: expected text or None, not int"),
    ],
    ids=["overrides-a-list", "overrides-key-a-number", "name-a-number"],
)
def test_fit_arguments_of_another_type_are_a_type_error(tmp_path, arguments, message):
    with pytest.raises(TypeError) as e:
        bptrain.fit(ROOT / "configs" / "iris.yaml", runs_dir=tmp_path, **arguments)
    assert str(e.value) == message
    assert not list(tmp_path.iterdir())


def test_fit_with_overrides_returns_the_run_its_report_and_its_model(tmp_path, capsys):
    run = bptrain.fit(ROOT / "configs" / "iris.yaml", overrides={"stopping.max_epochs": 3, "optimizer.lr": 0.01}, runs_dir=tmp_path, name="api")
    assert run.path.parent == tmp_path and run.path.name.startswith("api-")
    assert run.report == json.loads((run.path / "report.json").read_text())
    assert (run.report["epochs_run"], run.report["stop_reason"]) == (3, "max_epochs")
    assert set(run.report["metrics"]["test"]) >= {"loss", "accuracy"}
    assert "lr: 0.01" in (run.path / "config.yaml").read_text()
    assert run.model.path == run.path / "model.npz"
    with pytest.warns(bptrain.BptrainWarning, match="the metrics lean optimistic"):  # the training file
        assert run.model.evaluate(IRIS)["accuracy"] > 0.5
    assert capsys.readouterr() == ("", "")  # nothing printed, no progress


def test_fit_of_the_same_config_as_a_mapping_gives_the_same_model(tmp_path):
    config = {
        "name": "mapped",
        "seed": 4,
        "data": {"train": str(IRIS), "target": "species"},
        "model": {"layers": [8]},
        "stopping": {"max_epochs": 2},
    }
    first = bptrain.fit(config, runs_dir=tmp_path / "a")
    second = bptrain.fit(config, overrides={"model.layers": [8]}, runs_dir=tmp_path / "b")
    assert first.path.name.startswith("mapped-")
    assert config["model"] == {"layers": [8]}  # the caller's mapping is left as it was
    frame = pd.read_csv(IRIS)
    np.testing.assert_array_equal(first.model.predict_proba(frame).to_numpy(), second.model.predict_proba(frame).to_numpy())


def test_fit_reports_config_errors_as_the_command_line_does(tmp_path):
    with pytest.raises(bptrain.ConfigError) as e:
        bptrain.fit(ROOT / "configs" / "iris.yaml", overrides={"optimizer.name": "adamm"}, runs_dir=tmp_path)
    cli = call_cli("fit", ROOT / "configs" / "iris.yaml", "--set", "optimizer.name=adamm", "--runs-dir", tmp_path)
    assert cli.returncode == 2
    assert cli.stderr == f"error: {e.value}\n"
    assert str(e.value).endswith("\n  optimizer: unknown optimizer 'adamm'; choose from adadelta, adagrad, adam, adamax, adamw, lion, nadam, rmsprop, sgd. Did you mean 'adam'?")
    assert not any(tmp_path.iterdir())


def test_fit_sends_cross_validation_to_the_command_line(tmp_path):
    with pytest.raises(bptrain.ConfigError) as e:
        bptrain.fit(ROOT / "configs" / "iris.yaml", overrides={"data.split.folds": 3}, runs_dir=tmp_path)
    assert str(e.value) == (
        "data.split.folds: 3-fold cross-validation runs from the command line (bptrain fit CONFIG --folds K); "
        "here, fit one fold with data.split.fold"
    )


# --- the package's names ----------------------------------------------------------------------------


def test_the_package_exports_the_api_and_the_typed_errors():
    from bptrain import api

    assert (bptrain.load, bptrain.fit, bptrain.Model, bptrain.Run) == (api.load, api.fit, api.Model, api.Run)
    for name in ("BptrainError", "ConfigError", "DataError", "DivergedError", "ModelFileError", "StorageError", "RunInterrupted"):
        assert getattr(bptrain, name) is getattr(errors, name)
    assert issubclass(bptrain.BptrainWarning, UserWarning)
    assert set(bptrain.__all__) <= set(dir(bptrain))
    with pytest.raises(AttributeError, match="module 'bptrain' has no attribute 'predict'"):
        bptrain.predict


def test_the_readme_example_runs_and_prints_what_the_readme_shows(tmp_path):
    # in a copy of the files it names, so that its run folder lands there
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("```python\nimport bptrain\n") + len("```python\n")
    code = text[start : text.index("```", start)]
    shown_start = text.index("```\n", text.index("```", start) + 3) + 4
    shown = text[shown_start : text.index("```", shown_start)].splitlines()
    for name in ("configs/iris.yaml", "datasets/iris.csv"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    (run,) = (tmp_path / "runs").iterdir()
    assert lines[0].startswith(f"runs/{run.name} 0.")
    assert len(lines) == len(shown)
    assert lines[1:5] == shown[1:5]  # the labels; the digits may differ with the BLAS, and the columns' widths with them
    assert lines[5].split() == shown[5].split() == ["setosa", "versicolor", "virginica"]
    assert lines[-1] == shown[-1]
