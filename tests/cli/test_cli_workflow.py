"""fit -> evaluate -> predict on iris, as real subprocesses: run folder, reports, data on stdout, pipes.

One fit of configs/iris.yaml (5 epochs) is shared by the whole module.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import ROOT, call_cli, run_cli

IRIS = ROOT / "datasets" / "iris.csv"
CLASSES = ["setosa", "versicolor", "virginica"]
CLASSIFICATION_METRICS = ["loss", "accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro", "log_loss"]
RUN_NAME = re.compile(r"iris-\d{8}-\d{6}(-\d+)?")
EPOCHS = 5
# iris: 50 rows per class; stratified split 0.15/0.15 holds out round(7.5) = 8 rows per class each.
TEST_ROWS = VAL_ROWS = 24
TRAIN_ROWS = 150 - 48
STEPS_PER_EPOCH = math.ceil(TRAIN_ROWS / 16)  # configs/iris.yaml: batch_size 16


def no_traceback(result) -> None:
    assert "Traceback" not in result.stderr, result.stderr


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    result = run_cli("fit", "configs/iris.yaml", "--set", f"stopping.max_epochs={EPOCHS}", "--runs-dir", runs)
    assert result.returncode == 0, result.stderr
    folders = list(runs.iterdir())
    assert len(folders) == 1, folders
    run = folders[0]
    report = json.loads((run / "report.json").read_text(encoding="utf-8"))
    return SimpleNamespace(result=result, runs=runs, run=run, report=report)


def read_csv_text(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def iris_rows() -> list[dict[str, str]]:
    with open(IRIS, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# --- fit: stdout, stderr, run folder -------------------------------------------------------------


def test_fit_prints_only_the_summary_on_stdout(fitted):
    lines = fitted.result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["run", "stopped", "val", "test"]
    assert lines[0] == f"run        {fitted.run}"
    report = fitted.report
    assert re.fullmatch(
        rf"stopped    max_epochs after {EPOCHS} epochs, \d+\.\d s; best epoch {report['best_epoch']}", lines[1]
    ), lines[1]
    for line, split in zip(lines[2:], ("val", "test")):
        expected = "  ".join(f"{k} {report['metrics'][split][k]:.4f}" for k in CLASSIFICATION_METRICS)
        assert line == f"{split:<10} {expected}"
    assert not re.search(r"^epoch ", fitted.result.stdout, re.M)
    assert "train_loss" not in fitted.result.stdout


def test_fit_progress_goes_to_stderr(fitted):
    lines = fitted.result.stderr.splitlines()
    assert lines[0] == (
        f"{fitted.run}: classification (3 classes), 4 features, "
        f"{TRAIN_ROWS}/{VAL_ROWS}/{TEST_ROWS} rows (train/val/test), loss cross_entropy"
    )
    epoch_lines = lines[1:]
    assert len(epoch_lines) == EPOCHS, lines
    for i, line in enumerate(epoch_lines, start=1):
        assert re.fullmatch(
            rf"epoch {i}/{EPOCHS}  train_loss \d+\.\d{{4}}  val_loss \d+\.\d{{4}}  val_accuracy \d\.\d{{4}}  \(\d+\.\d\d s\)", line
        ), line
    no_traceback(fitted.result)


def test_run_folder_name_and_contents(fitted):
    assert RUN_NAME.fullmatch(fitted.run.name), fitted.run.name
    assert fitted.run.parent == fitted.runs
    names = {p.name for p in fitted.run.iterdir()}
    required = {"config.yaml", "metrics.csv", "metrics.jsonl", "model.npz", "report.json", "report.md", "curves.svg"}
    assert required <= names, names
    assert not [n for n in names if n.endswith(".tmp")], names  # atomic writes leave no temp files


def test_curves_svg_is_a_real_svg(fitted):
    from xml.etree import ElementTree

    root = ElementTree.fromstring((fitted.run / "curves.svg").read_text(encoding="utf-8"))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert int(root.get("width")) > 100 and int(root.get("height")) > 100


def test_report_json_has_every_contract_key(fitted):
    report = fitted.report
    for key in (
        "bptrain_version", "run", "task", "seed", "stop_reason", "best_epoch", "epochs_run", "seconds",
        "metrics", "per_class", "confusion_matrix", "classes", "data", "environment",
    ):
        assert key in report, key
    assert set(report["metrics"]) == {"train", "val", "test"}
    for split in ("train", "val", "test"):
        values = report["metrics"][split]
        assert list(values) == CLASSIFICATION_METRICS, (split, list(values))
        assert all(isinstance(v, float) and math.isfinite(v) for v in values.values()), values
    assert report["run"] == fitted.run.name
    assert report["task"] == "classification"
    assert report["seed"] == 42
    assert report["stop_reason"] == "max_epochs"
    assert report["epochs_run"] == EPOCHS
    assert 1 <= report["best_epoch"] <= EPOCHS
    assert isinstance(report["seconds"], float) and report["seconds"] >= 0
    assert report["classes"] == CLASSES
    environment = report["environment"]
    for key in ("python", "numpy", "bptrain"):
        assert key in environment, key
    assert any("thread" in key for key in environment), environment
    assert environment["numpy"] == np.__version__
    assert environment["python"] == ".".join(map(str, sys.version_info[:3]))
    assert environment["bptrain"] == report["bptrain_version"]


def test_report_json_has_no_nan_or_infinity_tokens(fitted):
    text = (fitted.run / "report.json").read_text(encoding="utf-8")
    assert not re.search(r"\bNaN\b|\bInfinity\b", text)

    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")

    json.loads(text, parse_constant=refuse)


def test_report_json_data_entry_is_the_iris_file(fitted):
    (entry,) = fitted.report["data"]
    assert entry["rows"] == 150
    assert entry["sha256"] == hashlib.sha256(IRIS.read_bytes()).hexdigest()
    assert Path(entry["path"]).name == "iris.csv"
    assert (ROOT / entry["path"]).resolve() == IRIS.resolve()


def test_confusion_matrix_and_per_class_agree_with_test_metrics(fitted):
    report = fitted.report
    cm = np.array(report["confusion_matrix"])
    assert cm.shape == (3, 3)
    assert cm.sum() == TEST_ROWS
    assert cm.sum(axis=1).tolist() == [TEST_ROWS // 3] * 3  # stratified
    assert report["metrics"]["test"]["accuracy"] == pytest.approx(np.trace(cm) / cm.sum(), abs=1e-12)
    assert list(report["per_class"]) == CLASSES
    for i, name in enumerate(CLASSES):
        stats = report["per_class"][name]
        assert stats["support"] == cm[i].sum()
        assert stats["recall"] == pytest.approx(cm[i, i] / cm[i].sum(), abs=1e-12)
        predicted = cm[:, i].sum()
        assert stats["precision"] == pytest.approx(cm[i, i] / predicted if predicted else 0.0, abs=1e-12)
    recalls = [report["per_class"][c]["recall"] for c in CLASSES]
    assert report["metrics"]["test"]["balanced_accuracy"] == pytest.approx(np.mean(recalls), abs=1e-12)


def test_report_md_names_the_run(fitted):
    text = (fitted.run / "report.md").read_text(encoding="utf-8")
    assert text.splitlines()[0] == f"# Run {fitted.run.name}"
    assert "- seed: 42" in text
    chosen, engine = fitted.report["threads"], fitted.report["engine"]
    assert text.endswith(
        f"\n\nBLAS threads: {chosen['count']} ({chosen['chosen']})\n\nOptimizer engine: {engine['name']} ({engine['chosen']})\n"
    )
    assert chosen["count"] == 1 and chosen["chosen"].startswith("auto: products up to ")
    assert engine["name"] == "numpy" and engine["chosen"].endswith(" steps), under 2 s")


# --- metrics.csv / metrics.jsonl ------------------------------------------------------------------


def test_metrics_csv_header_and_one_row_per_epoch(fitted):
    rows = read_csv_text((fitted.run / "metrics.csv").read_text(encoding="utf-8"))
    header, body = rows[0], rows[1:]
    assert header == [
        "epoch", "step", "lr", "train_loss", "val_loss",
        *[f"val_{m}" for m in CLASSIFICATION_METRICS[1:]],
        "seconds",
    ]
    assert len(body) == EPOCHS
    assert [int(r[0]) for r in body] == list(range(1, EPOCHS + 1))
    assert [int(r[1]) for r in body] == [STEPS_PER_EPOCH * e for e in range(1, EPOCHS + 1)]
    assert {float(r[2]) for r in body} == {0.01}
    for row in body:
        assert all(math.isfinite(float(cell)) for cell in row), row


def test_metrics_csv_equals_metrics_jsonl(fitted):
    rows = read_csv_text((fitted.run / "metrics.csv").read_text(encoding="utf-8"))
    header, body = rows[0], rows[1:]
    records = [json.loads(line) for line in (fitted.run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(records) == len(body)
    for row, record in zip(body, records):
        assert list(record) == header
        for name, cell in zip(header, row):
            value = record[name]
            if value is None:
                assert cell == ""
            elif isinstance(value, int):
                assert int(cell) == value, name
            else:
                assert float(cell) == value, name  # written with repr: exact round trip


def test_best_epoch_and_val_metrics_match_the_log(fitted):
    records = [json.loads(line) for line in (fitted.run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    losses = [r["val_loss"] for r in records]
    best = int(np.argmin(losses)) + 1
    assert fitted.report["best_epoch"] == best
    # restore_best: the saved model is the best epoch's, so its val scores are that row's
    val = fitted.report["metrics"]["val"]
    assert val["loss"] == pytest.approx(records[best - 1]["val_loss"], abs=1e-9)
    assert val["accuracy"] == pytest.approx(records[best - 1]["val_accuracy"], abs=1e-12)


def test_model_npz_loads_without_pickle(fitted):
    with np.load(fitted.run / "model.npz", allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    assert arrays
    assert all(a.dtype != object for a in arrays.values())
    metas = []
    for a in arrays.values():
        if a.dtype.kind == "U" and a.ndim == 0:
            metas.append(json.loads(str(a)))
    assert [m.get("format_version") for m in metas] == [2], metas
    weights = [a for a in arrays.values() if a.dtype.kind == "f" and a.ndim == 2]
    assert {a.dtype for a in weights} == {np.dtype("float32")}
    shapes = sorted(a.shape for a in weights)
    assert shapes == sorted([(4, 16), (16, 16), (16, 3)]), shapes


# --- evaluate -------------------------------------------------------------------------------------


def evaluate_json(*args, **kwargs) -> dict:
    result = run_cli("evaluate", *args, "--json", **kwargs)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout)


def assert_metrics_equal(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-12, abs=1e-12), key


def test_evaluate_json_equals_report_metrics(fitted):
    results = evaluate_json(fitted.run)
    assert list(results) == ["val", "test"]
    for split in ("val", "test"):
        assert_metrics_equal(results[split], fitted.report["metrics"][split])


def test_evaluate_text_output(fitted):
    result = run_cli("evaluate", fitted.run)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    for line, split in zip(lines, ("val", "test")):
        expected = "  ".join(f"{k} {fitted.report['metrics'][split][k]:.4f}" for k in CLASSIFICATION_METRICS)
        assert line == f"{split:<6} {expected}"


def test_evaluate_accepts_the_model_file_and_another_cwd(fitted, tmp_path):
    from_model_file = evaluate_json(fitted.run / "model.npz", cwd=tmp_path)
    for split in ("val", "test"):
        assert_metrics_equal(from_model_file[split], fitted.report["metrics"][split])


def run_many(*calls: tuple) -> list:
    """Run independent CLI calls side by side (args tuple, or (args tuple, kwargs dict))."""
    def one(call):
        args, kwargs = call if len(call) == 2 and isinstance(call[1], dict) else (call, {})
        return run_cli(*args, **kwargs)

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(one, calls))


@pytest.fixture(scope="module")
def predicted(fitted):
    """predict on iris.csv: plain (path relative to the repo), --proba, and --proba --keep species."""
    plain, proba, keep = run_many(
        ("predict", fitted.run, "datasets/iris.csv"),
        ("predict", fitted.run, IRIS, "--proba"),
        ("predict", fitted.run, IRIS, "--proba", "--keep", "species"),
    )
    for result in (plain, proba, keep):
        assert result.returncode == 0, result.stderr
    return SimpleNamespace(plain=plain, proba=proba, keep=keep)


@pytest.fixture(scope="module")
def iris_predictions(predicted):
    return read_csv_text(predicted.keep.stdout)


def test_evaluate_data_file_and_stdin_agree_and_match_predictions(fitted, iris_predictions):
    results = run_many(
        ("evaluate", fitted.run, "--data", IRIS, "--json"),
        (("evaluate", fitted.run, "--data", "-", "--json"), {"input": IRIS.read_text(encoding="utf-8")}),
    )
    assert [result.returncode for result in results] == [0, 0]
    assert results[0].stderr == trained_on_warning(IRIS, fitted.run)  # the training file, known by its SHA-256
    assert results[1].stderr == ""  # stdin: nothing to compare
    on_file, on_stdin = (json.loads(r.stdout) for r in results)
    assert list(on_file) == ["data"]
    assert on_stdin == on_file
    # an independent oracle: accuracy and log loss recomputed from predict's output
    header, body = iris_predictions[0], iris_predictions[1:]
    assert header[:2] == ["species", "prediction"]
    accuracy = np.mean([row[0] == row[1] for row in body])
    assert on_file["data"]["accuracy"] == pytest.approx(accuracy, abs=1e-12)
    proba = np.array([[float(v) for v in row[2:]] for row in body])
    truth = np.array([CLASSES.index(row[0]) for row in body])
    log_loss = -np.mean(np.log(proba[np.arange(len(truth)), truth]))
    assert on_file["data"]["log_loss"] == pytest.approx(log_loss, abs=1e-4)


def trained_on_warning(data: Path, run: Path, command: str = "evaluate") -> str:
    return (
        f"warning: {data}: the file {run} trained on (its data.train, the same SHA-256), so its training rows are among "
        f"these and the metrics lean optimistic; `bptrain {command} {run}` without --data uses the rows the run held out\n"
    )


@pytest.mark.parametrize("command", ["evaluate", "explain"])
def test_scoring_the_training_file_warns_and_another_file_does_not(fitted, tmp_path, command):
    """A labelled file that is the run's data.train holds its training rows; a copy with one row
    changed is another file."""
    same, changed = tmp_path / "same.csv", tmp_path / "changed.csv"
    text = IRIS.read_text(encoding="utf-8")
    same.write_text(text, encoding="utf-8")
    changed.write_text(text.replace("5.1,3.5,1.4,0.2", "5.2,3.5,1.4,0.2", 1), encoding="utf-8")
    assert changed.read_text(encoding="utf-8") != text
    extra = ("-o", tmp_path) if command == "explain" else ()
    on_same, on_changed = (call_cli(command, fitted.run, "--data", data, "--json", *extra) for data in (same, changed))
    assert (on_same.returncode, on_changed.returncode) == (0, 0)
    assert on_same.stderr == trained_on_warning(same, fitted.run, command)
    assert on_changed.stderr == ""


# --- predict --------------------------------------------------------------------------------------


def test_predict_writes_only_the_prediction_csv_to_stdout(predicted):
    result = predicted.plain
    assert result.stderr == ""
    assert result.stdout.endswith("\n") and "\r" not in result.stdout
    rows = read_csv_text(result.stdout)
    assert rows[0] == ["prediction"]
    assert len(rows) == 151
    assert {r[0] for r in rows[1:]} <= set(CLASSES)
    assert all(len(r) == 1 for r in rows)


def test_predict_proba_columns_sum_to_one_and_argmax_is_prediction(predicted):
    assert predicted.proba.stderr == ""
    rows = read_csv_text(predicted.proba.stdout)
    assert rows[0] == ["prediction", "proba_setosa", "proba_versicolor", "proba_virginica"]
    assert len(rows) == 151
    plain = read_csv_text(predicted.plain.stdout)
    assert [r[0] for r in rows][1:] == [r[0] for r in plain[1:]]
    for row in rows[1:]:
        p = np.array([float(v) for v in row[1:]])
        assert ((p >= 0) & (p <= 1)).all(), row
        assert abs(p.sum() - 1.0) <= 1e-5, row
        assert CLASSES[int(np.argmax(p))] == row[0], row


def test_predict_keep_puts_the_kept_column_first(predicted, iris_predictions):
    header, body = iris_predictions[0], iris_predictions[1:]
    assert header == ["species", "prediction", "proba_setosa", "proba_versicolor", "proba_virginica"]
    assert [r[0] for r in body] == [r["species"] for r in iris_rows()]
    proba = read_csv_text(predicted.proba.stdout)
    assert [r[1:] for r in body] == proba[1:]


def test_predict_works_without_the_target_column(fitted, predicted, tmp_path):
    features = tmp_path / "features.csv"
    with open(features, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["petal_width", "sepal_length", "sepal_width", "petal_length"])  # another order too
        for r in iris_rows():
            writer.writerow([r["petal_width"], r["sepal_length"], r["sepal_width"], r["petal_length"]])
    without = run_cli("predict", fitted.run, features)
    assert without.returncode == 0, without.stderr
    assert without.stdout == predicted.plain.stdout


def test_predict_stdin_equals_file_byte_for_byte(fitted, predicted):
    from_dash, from_default = run_many(
        (("predict", fitted.run, "-", "--proba"), {"input": IRIS.read_bytes()}),
        (("predict", fitted.run, "--proba"), {"input": IRIS.read_bytes()}),
    )
    assert from_dash.returncode == from_default.returncode == 0
    assert from_dash.stdout == predicted.proba.stdout
    assert from_default.stdout == predicted.proba.stdout


def test_predict_shell_pipe_from_cat_equals_file(fitted, predicted, tmp_path):
    out = tmp_path / "piped.csv"
    command = 'set -o pipefail; cat "$IRIS" | "$PY" -m bptrain predict "$RUN" - > "$OUT"'
    env = {**os.environ, "PYTHONPATH": str(ROOT), "IRIS": str(IRIS), "PY": sys.executable, "RUN": str(fitted.run), "OUT": str(out)}
    env.pop("BPTRAIN_TRACEBACK", None)
    piped = subprocess.run(["bash", "-c", command], capture_output=True, env=env, cwd=tmp_path, timeout=120)
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == b""
    assert out.read_bytes() == predicted.plain.stdout.encode("utf-8")
    assert out.read_bytes().startswith(b"prediction\n")


def test_predict_output_file_gets_the_same_bytes_and_stdout_stays_empty(fitted, predicted, tmp_path):
    out = tmp_path / "out.csv"
    args = ("predict", fitted.run, IRIS, "--proba", "--keep", "species")
    to_file, dash = run_many((*args, "-o", out), (*args, "-o", "-"))
    assert to_file.returncode == 0, to_file.stderr
    assert to_file.stdout == ""
    assert to_file.stderr == ""
    assert out.read_bytes() == predicted.keep.stdout.encode("utf-8")
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]  # no temp file left behind
    assert dash.returncode == 0
    assert dash.stdout == predicted.keep.stdout


def test_predict_keep_copies_values_verbatim(fitted, tmp_path):
    write_rows = "sepal_length,sepal_width,petal_length,petal_width,id\n5.1,3.5,1.4,0.2,007\n5.1,3.5,1.4,0.2,\n6.3,3.3,6.0,2.5,3\n"
    (tmp_path / "ids.csv").write_text(write_rows, encoding="utf-8")
    result = run_cli("predict", fitted.run, tmp_path / "ids.csv", "--keep", "id")
    assert result.returncode == 0, result.stderr
    assert [row[0] for row in read_csv_text(result.stdout)] == ["id", "007", "", "3"]


# --- a closed pipe ends quietly -------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory):
    lines = IRIS.read_text(encoding="utf-8").splitlines()
    header, body = lines[0], lines[1:]
    path = tmp_path_factory.mktemp("big") / "big.csv"
    repeats = 200_000 // len(body) + 1
    path.write_text(header + "\n" + ("\n".join(body) + "\n") * repeats, encoding="utf-8")
    return path


@pytest.mark.parametrize("extra", [[], ["--proba", "--keep", "species"]], ids=["plain", "proba-keep"])
def test_predict_into_head_ends_quietly(fitted, big_csv, tmp_path, extra):
    err, status = tmp_path / "stderr.txt", tmp_path / "status.txt"
    command = (
        '"$PY" -m bptrain predict "$RUN" "$BIG" ' + " ".join(extra) + ' 2>"$ERR" | head -1; '
        'echo "${PIPESTATUS[0]} ${PIPESTATUS[1]}" > "$STATUS"'
    )
    env = {
        **os.environ, "PYTHONPATH": str(ROOT), "PY": sys.executable, "RUN": str(fitted.run),
        "BIG": str(big_csv), "ERR": str(err), "STATUS": str(status),
    }
    env.pop("BPTRAIN_TRACEBACK", None)
    result = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0
    assert result.stderr == ""
    expected_header = ",".join([*(["species"] if extra else []), "prediction", *([f"proba_{c}" for c in CLASSES] if extra else [])])
    assert result.stdout == expected_header + "\n"
    stderr = err.read_text()
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr and "Exception ignored" not in stderr
    assert stderr == ""
    assert status.read_text().split() == ["0", "0"], stderr
