"""`bptrain export RUN --format onnx -o FILE`: the exported graph run in onnxruntime against `bptrain predict`.

Every shipped config's model (a few epochs) is exported and run on its whole dataset, with missing
values and an unseen category where the data has categorical columns; a synthetic dataset covers
every missing-value rule, scaling, rare categories, indicators, multilabel and several regression
targets. Probabilities equal predict's within 1e-5 and labels exactly; regression values within
1e-5 of the value's size in a float32 model (float32 keeps about 7 digits: its inputs are rounded
to float32 and its matrix products summed in another order, and 1 ulp of a value near 300 is 3e-5)
and within 1e-5 in a float64 model, whose graph takes and computes float64.
The messages of bad input are pinned, through the command line's entry point (a real process for
the file-size limit and for the file on stdout).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest

from bptrain import app
from conftest import ROOT, call_cli
from test_cli_storage import run_limited

CONFIGS = sorted(p.stem for p in (ROOT / "configs").glob("*.yaml"))
TOLERANCE = 1e-5
REALS = {"tensor(float)": np.float32, "tensor(double)": np.float64}


def fit(config: Path, runs: Path, *settings: str) -> Path:
    result = call_cli("fit", config, "--runs-dir", runs, "-q", "--set", "stopping.max_epochs=4", "--set", "report.figures=false", *settings)
    assert result.returncode == 0, result.stderr
    (run,) = [p for p in runs.iterdir() if p.is_dir()]
    return run


def export(run: Path, out: Path) -> ort.InferenceSession:
    result = call_cli("export", run, "--format", "onnx", "-o", out)
    assert result.returncode == 0, result.stderr
    return ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])


def feeds(session: ort.InferenceSession, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The graph's inputs from a frame as pandas read it: numbers in the graph's float type (NaN
    missing), text as text ("" missing; whole numbers without `.0`, as in the model's schema)."""
    out = {}
    for given in session.get_inputs():
        column = frame[given.name]
        if given.type in REALS:
            out[given.name] = column.to_numpy(REALS[given.type]).reshape(-1, 1)
        else:
            text = ["" if pd.isna(v) else str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in column]
            out[given.name] = np.array(text, dtype=object).reshape(-1, 1)
    return out


def run_graph(session: ort.InferenceSession, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds(session, frame))))


def predicted(run: Path, data: Path, proba: bool) -> pd.DataFrame:
    out = io.StringIO()
    app.predict(run, str(data), out, proba=proba)
    return pd.read_csv(io.StringIO(out.getvalue()), keep_default_na=False, dtype={"prediction": str})


def assert_same_as_predict(session, frame: pd.DataFrame, expected: pd.DataFrame, task: str) -> None:
    got = run_graph(session, frame)
    if task == "regression":
        values = expected[[c for c in expected.columns if c.startswith("prediction")]].to_numpy(np.float64)
        assert got["value"].shape == values.shape
        size = 1.0 if got["value"].dtype == np.float64 else np.maximum(1.0, np.abs(values))
        assert (np.abs(got["value"] - values) <= TOLERANCE * size).all()
        return
    probabilities = expected[[c for c in expected.columns if c.startswith("proba_")]].to_numpy(np.float64)
    assert got["probabilities"].shape == probabilities.shape
    assert np.abs(got["probabilities"] - probabilities).max() <= TOLERANCE
    if task == "multilabel":
        assert got["label"].tolist() == expected[[c for c in expected.columns if c.startswith("prediction_")]].to_numpy().tolist()
    else:
        assert got["label"].tolist() == expected["prediction"].tolist()


@pytest.mark.parametrize("name", CONFIGS)
def test_each_shipped_models_graph_predicts_as_predict_does(tmp_path, name):
    run = fit(ROOT / "configs" / f"{name}.yaml", tmp_path / "runs")
    session = export(run, tmp_path / "model.onnx")
    frame = pd.read_csv(ROOT / "datasets" / f"{name}.csv")
    if name == "penguins":  # rows with missing values are in the data; add a place the model never saw
        assert frame.isna().any(axis=1).sum() >= 10
        frame.loc[frame.index[:7], "island"] = "Atlantis"
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    task = "regression" if name == "diabetes" else "classification"
    assert_same_as_predict(session, frame, predicted(run, data, proba=task != "regression"), task)


def test_a_float64_regression_graph_gives_predicts_values_within_1e_5(tmp_path):
    run = fit(ROOT / "configs" / "diabetes.yaml", tmp_path / "runs", "--set", "model.dtype=float64")
    session = export(run, tmp_path / "model.onnx")
    assert {i.type for i in session.get_inputs()} == {"tensor(double)"}
    got = run_graph(session, pd.read_csv(ROOT / "datasets" / "diabetes.csv"))["value"]
    expected = predicted(run, ROOT / "datasets" / "diabetes.csv", proba=False)["prediction"].to_numpy(np.float64)
    assert got.dtype == np.float64 and np.abs(expected).max() > 300
    assert np.abs(got[:, 0] - expected).max() <= TOLERANCE


# --- every preprocessing rule, on synthetic data --------------------------------------------------

PREPROCESSING = """
seed: 5
data:
  train: train.csv
  target: {target}
  exclude: {exclude}
  split: {{val: 0.2, test: 0.0}}
  columns:
    a: {{missing: mean, indicator: true, scale: minmax}}
    b: {{missing: median, scale: robust}}
    c: {{missing: constant, fill_value: 7, scale: none}}
    e: {{missing: most_frequent, indicator: true}}
    f: {{missing: constant, fill_value: zz, max_categories: 3}}
    h: {{kind: categorical, missing: most_frequent}}
model:
  dtype: {dtype}
  layers:
    - {{units: 8, activation: gelu}}
    - {{type: batch_norm}}
    - {{units: 6, activation: softplus, dropout: 0.2}}
    - {{type: layer_norm}}
"""
TARGETS = {"binary": "label", "multilabel": "[t1, t2]", "regression": "[r1, r2]", "classes": "kind"}


def synthetic(rows: int, seed: int) -> pd.DataFrame:
    """Numbers a-d (d complete), categories e-h (g complete, h whole numbers), with gaps and rare values."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "a": rng.normal(3.0, 2.0, rows), "b": rng.exponential(5.0, rows), "c": rng.normal(0.0, 1.0, rows),
        "d": rng.uniform(-1.0, 1.0, rows),
        "e": rng.choice(["p", "q", "r"], rows), "f": rng.choice(["u1", "u2", "u3", "u4", "u5"], rows, p=[0.4, 0.3, 0.2, 0.06, 0.04]),
        "g": rng.choice(["x", "y"], rows), "h": rng.choice([1, 2, 3], rows),
    })
    for column, share in [("a", 0.1), ("b", 0.1), ("c", 0.1), ("e", 0.1), ("f", 0.1), ("h", 0.05)]:
        frame[column] = frame[column].astype(object).where(rng.random(rows) > share, None)
    signal = frame["d"] + (frame["g"] == "x") - 0.5
    frame["label"] = np.where(signal > 0, "yes", "no")
    frame["kind"] = np.where(signal > 0.4, "hi", np.where(signal < -0.4, "lo", "mid"))
    frame["t1"], frame["t2"] = (signal > 0).astype(int), (frame["d"] > 0.2).astype(int)
    frame["r1"], frame["r2"] = 300.0 + 50.0 * signal, rng.normal(0.0, 1.0, rows)
    return frame


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("synthetic")
    synthetic(160, 0).to_csv(folder / "train.csv", index=False)
    return folder


def new_rows() -> pd.DataFrame:
    """Rows predict accepts: gaps where the rules fill them, categories never seen, rare ones."""
    frame = synthetic(60, 1)
    frame.loc[0:4, "e"] = "never"
    frame.loc[5:9, "f"] = "u5"  # one of the rare categories, in (other)
    frame.loc[10:14, "f"] = "unseen"
    frame.loc[15:19, "h"] = 4
    frame.loc[20:24, ["a", "b", "c", "e", "f", "h"]] = None
    return frame


@pytest.mark.parametrize("task, dtype", [("binary", "float32"), ("classes", "float64"), ("multilabel", "float32"), ("regression", "float32")])
def test_every_preprocessing_rule_is_in_the_graph(folder, tmp_path, task, dtype):
    targets = [t for t in ("label", "kind", "t1", "t2", "r1", "r2") if t not in TARGETS[task]]
    config = folder / f"{task}.yaml"
    config.write_text(PREPROCESSING.format(target=TARGETS[task], exclude=f"[{', '.join(targets)}]", dtype=dtype), encoding="utf-8")
    run = fit(config, tmp_path / "runs")
    session = export(run, tmp_path / "model.onnx")
    frame = new_rows()
    data = tmp_path / "new.csv"
    frame.to_csv(data, index=False)
    kind = "classification" if task in ("binary", "classes") else task
    assert_same_as_predict(session, frame, predicted(run, data, proba=kind != "regression"), kind)
    real = f"tensor({'double' if dtype == 'float64' else 'float'})"
    assert session.get_outputs()[-1].type == real
    numeric = [c for c in frame.columns if frame[c].dtype.kind == "f"]
    assert {i.type for i in session.get_inputs() if i.name in numeric} == {real}


def test_rows_predict_refuses_come_out_as_nan_with_an_empty_label(folder, tmp_path):
    config = folder / "refused.yaml"
    config.write_text(PREPROCESSING.format(target="kind", exclude="[label, t1, t2, r1, r2]", dtype="float32"), encoding="utf-8")
    run = fit(config, tmp_path / "runs")
    session = export(run, tmp_path / "model.onnx")
    frame = synthetic(6, 2)
    frame["d"] = frame["d"].astype(object)
    frame.loc[1, "d"] = None  # missing where the rule is error (numeric)
    frame.loc[2, "g"] = None  # missing where the rule is error (categorical)
    frame.loc[3, "d"] = np.inf  # predict refuses infinite numbers
    frame.loc[4, "d"] = 3e38  # finite in float32, infinite once scaled (d's spread is below 1)
    got = run_graph(session, frame)
    refused = [False, True, True, True, True, False]
    assert [label == "" for label in got["label"].tolist()] == refused
    assert np.isnan(got["probabilities"]).all(axis=1).tolist() == refused
    assert np.isfinite(got["probabilities"][[0, 5]]).all()
    for row, why in [(1, "has missing values in row 1"), (2, "has missing values in row 1"), (3, "holds infinite values"), (4, "too large")]:
        data = tmp_path / f"row{row}.csv"
        frame.iloc[[row]].to_csv(data, index=False)
        result = call_cli("predict", run, data)  # predict refuses each of them
        assert result.returncode == 3 and why in result.stderr, result.stderr


# --- the command line -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory) -> Path:
    return fit(ROOT / "configs" / "iris.yaml", tmp_path_factory.mktemp("runs"))


def test_export_writes_the_file_and_says_what_it_holds(iris_run, tmp_path):
    out = tmp_path / "iris.onnx"
    result = call_cli("export", iris_run, "--format", "onnx", "-o", out)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        f"exported   {iris_run / 'model.npz'} to {out} (onnx, {out.stat().st_size:,} bytes)\n"
        "inputs     sepal_length (float32), sepal_width (float32), petal_length (float32), petal_width (float32)\n"
        "outputs    label (string), probabilities (float32)\n"
    )
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta()
    assert meta.producer_name == "bptrain"
    assert meta.custom_metadata_map["classes"] == '["setosa", "versicolor", "virginica"]'
    assert [p.name for p in tmp_path.iterdir()] == ["iris.onnx"]  # no temp file left


def test_export_to_stdout_writes_the_same_bytes(iris_run, tmp_path):
    call_cli("export", iris_run, "-o", tmp_path / "file.onnx")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    piped = subprocess.run([sys.executable, "-m", "bptrain", "export", str(iris_run), "-o", "-"], capture_output=True, cwd=ROOT, env=env, timeout=120)
    assert (piped.returncode, piped.stderr) == (0, b"")
    assert piped.stdout == (tmp_path / "file.onnx").read_bytes()


def test_an_unknown_format_is_a_usage_error_with_a_suggestion(iris_run, tmp_path):
    result = call_cli("export", iris_run, "--format", "onxx", "-o", tmp_path / "m.onnx")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "error: --format onxx: unknown export format; choose from onnx. Did you mean 'onnx'?\n"
    assert list(tmp_path.iterdir()) == []


def test_a_run_that_is_not_a_model_gets_predicts_message(tmp_path):
    for run in (tmp_path, tmp_path / "nothing"):
        exported = call_cli("export", run, "-o", tmp_path / "m.onnx")
        predicted_ = call_cli("predict", run, ROOT / "datasets" / "iris.csv")
        assert exported.returncode == predicted_.returncode in (2, 5)
        assert exported.stderr == predicted_.stderr
        assert exported.stderr.startswith(f"error: {run}: ")
    (tmp_path / "model.npz").write_bytes(b"not a zip")
    exported, predicted_ = call_cli("export", tmp_path / "model.npz", "-o", tmp_path / "m.onnx"), call_cli("predict", tmp_path / "model.npz", "-")
    assert (exported.returncode, exported.stderr) == (predicted_.returncode, predicted_.stderr) == (5, exported.stderr)
    assert not (tmp_path / "m.onnx").exists()


def test_an_unwritable_output_exits_6_naming_it(iris_run):
    result = call_cli("export", iris_run, "-o", "/sys/model.onnx")
    assert (result.returncode, result.stdout) == (6, "")
    assert result.stderr == "error: /sys/model.onnx: cannot write (permission denied); make the folder writable or choose another one\n"


def test_a_file_size_limit_leaves_no_partial_file(iris_run, tmp_path):
    out = tmp_path / "model.onnx"
    result = run_limited("export", iris_run, "-o", out, limit=1000)
    assert (result.returncode, result.stdout) == (6, "")
    assert result.stderr == f"error: {out}: cannot write (the file-size limit was reached); raise the limit (ulimit -f)\n"
    assert list(tmp_path.iterdir()) == []


def test_an_output_folder_or_a_missing_folder_is_named(iris_run, tmp_path):
    result = call_cli("export", iris_run, "-o", tmp_path)
    assert (result.returncode, result.stderr) == (2, f"error: --output {tmp_path}: is a folder; give a file name, e.g. {tmp_path / 'model.onnx'}\n")
    result = call_cli("export", iris_run, "-o", tmp_path / "no" / "m.onnx")
    assert (result.returncode, result.stderr) == (2, f"error: --output {tmp_path / 'no' / 'm.onnx'}: the folder {tmp_path / 'no'} does not exist\n")


def test_a_folder_that_takes_no_new_files_is_not_called_missing(iris_run, tmp_path):
    if not Path("/proc/self").is_dir():
        pytest.skip("no /proc here")
    result = call_cli("export", iris_run, "-o", "/proc/self/model.onnx")
    assert (result.returncode, result.stdout) == (6, "")
    assert result.stderr == "error: --output /proc/self/model.onnx: the folder /proc/self does not take new files; choose another folder\n"
    (tmp_path / "afile").write_text("x\n")
    result = call_cli("export", iris_run, "-o", tmp_path / "afile" / "m.onnx")
    assert (result.returncode, result.stderr) == (2, f"error: --output {tmp_path / 'afile' / 'm.onnx'}: {tmp_path / 'afile'} is a file, not a folder\n")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_readme_onnxruntime_example_runs_on_an_exported_model(tmp_path, dtype):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("```python\nimport numpy as np\nimport onnxruntime as ort\n") + len("```python\n")
    code = text[start : text.index("```", start)]
    run = fit(ROOT / "configs" / "penguins.yaml", tmp_path / "runs", "--set", f"model.dtype={dtype}")
    assert call_cli("export", run, "--format", "onnx", "-o", tmp_path / "penguins.onnx").returncode == 0
    (tmp_path / "datasets").mkdir()
    rows = pd.read_csv(ROOT / "datasets" / "penguins.csv")
    rows.loc[::7, "year"] = None  # a column of whole numbers with a missing cell reads as floats (2007.0)
    rows.to_csv(tmp_path / "datasets" / "penguins.csv", index=False)
    namespace: dict = {}
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        exec(compile(code, "README.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    expected = predicted(run, tmp_path / "datasets" / "penguins.csv", proba=True)
    assert namespace["labels"].tolist() == expected["prediction"].tolist()
    assert np.abs(namespace["probabilities"] - expected.filter(like="proba_").to_numpy(np.float64)).max() <= TOLERANCE
