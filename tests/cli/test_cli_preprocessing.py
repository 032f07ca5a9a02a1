"""Real-world tables through the CLI: penguins (text columns, missing values, unseen categories),
k-fold cross-validation, several targets, a split column."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ROOT, call_cli, run_cli, write

PENGUINS = ROOT / "datasets" / "penguins.csv"
OK, USAGE, DATA = 0, 2, 3


def fitted_run(runs: Path, *args: str) -> Path:
    """A run made in this process, for predict and evaluate (real processes) to read."""
    result = call_cli("fit", *args, "-q", "--runs-dir", runs)
    assert result.returncode == 0, result.stderr
    (run,) = runs.iterdir()
    return run


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


# --- penguins: the schema contract at predict and evaluate time -------------------------------------


@pytest.fixture(scope="module")
def penguins(tmp_path_factory) -> SimpleNamespace:
    folder = tmp_path_factory.mktemp("penguins")
    run = fitted_run(folder / "runs", ROOT / "configs" / "penguins.yaml", "--set", "stopping.max_epochs=5")
    lines = PENGUINS.read_text(encoding="utf-8").splitlines()
    # rows 1-3 from an island and row 5 from a year never seen in training; row 4 has no measurements and no sex
    novel = [lines[0]] + [line.replace("Torgersen", "Atlantis") for line in lines[1:4]] + [lines[4], lines[5].replace(",2007", ",2031")]
    (folder / "novel.csv").write_text("\n".join(novel) + "\n", encoding="utf-8")
    (folder / "known.csv").write_text("\n".join(lines[:6]) + "\n", encoding="utf-8")
    return SimpleNamespace(run=run, folder=folder)


def test_unseen_categories_are_one_warning_and_exit_0(penguins):
    result = call_cli("predict", penguins.run, "novel.csv", "--keep", "island", "--keep", "year", cwd=penguins.folder)
    assert result.returncode == OK, result.stderr
    assert result.stderr == (
        "warning: novel.csv: 4 values in categorical columns the model never saw, encoded as unknown (no category): "
        "island 'Atlantis' (3 rows); year '2031' (1 row). Use --strict to make this an error\n"
    )
    table = rows(result.stdout)
    assert table[0] == ["island", "year", "prediction"]
    assert [r[:2] for r in table[1:]] == [["Atlantis", "2007"]] * 3 + [["Torgersen", "2007"], ["Torgersen", "2031"]]
    assert {r[2] for r in table[1:]} <= {"Adelie", "Chinstrap", "Gentoo"}
    known = rows(call_cli("predict", penguins.run, "known.csv", cwd=penguins.folder).stdout)
    assert table[4][2] == known[4][0]  # the row with every measurement missing is filled as in training


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_strict_makes_unseen_categories_an_error(penguins, command):
    args = ["novel.csv"] if command == "predict" else ["--data", "novel.csv"]
    result = call_cli(command, penguins.run, *args, "--strict", cwd=penguins.folder)
    assert (result.returncode, result.stdout) == (DATA, "")
    assert result.stderr == (
        "error: novel.csv: column 'island' holds categories the model never saw in rows 1, 2, 3: 'Atlantis'; "
        "it knows Biscoe, Dream, Torgersen (--strict)\n"
    )


def test_evaluate_reads_stdin_and_warns_about_unseen_categories(penguins):
    result = run_cli("evaluate", penguins.run, "--data", "-", "--json", input=(penguins.folder / "novel.csv").read_text(), cwd=penguins.folder)
    assert result.returncode == OK, result.stderr
    assert result.stderr.startswith("warning: <stdin>: 4 values in categorical columns the model never saw")
    assert list(json.loads(result.stdout)["data"]) == ["loss", "accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro", "log_loss"]


def test_text_in_a_numeric_column_names_column_and_rows(penguins):
    lines = PENGUINS.read_text(encoding="utf-8").splitlines()[:8]
    lines[3] = lines[3].replace("40.3", "forty")
    lines[7] = lines[7].replace("38.9", "n/k")
    write(penguins.folder, "\n".join(lines) + "\n", "typos.csv")
    result = call_cli("predict", penguins.run, "typos.csv", cwd=penguins.folder)
    assert (result.returncode, result.stdout) == (DATA, "")
    assert result.stderr == (
        "error: typos.csv: column 'bill_length_mm' must be numeric, but rows 3, 7 hold text: 'forty', 'n/k'. "
        "The model reads this column as numbers.\n"
    )


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_a_big_file_with_one_text_value_in_an_integer_column_prints_no_library_warning(penguins, command):
    lines = PENGUINS.read_text(encoding="utf-8").splitlines()
    body = lines[1:] * 200  # 3 MB: pandas' low-memory parser would guess the type of `year` piece by piece
    body[-1] = body[-1].rsplit(",", 1)[0] + ",2008x"
    write(penguins.folder, "\n".join([lines[0], *body]) + "\n", "mixed.csv")
    args = ("--data", "mixed.csv", "--json") if command == "evaluate" else ("mixed.csv",)
    result = run_cli(command, penguins.run, *args, cwd=penguins.folder)
    assert result.returncode == OK, result.stderr
    assert result.stderr == (
        "warning: mixed.csv: 1 value in categorical columns the model never saw, encoded as unknown (no category): "
        "year '2008x' (1 row). Use --strict to make this an error\n"
    )


def test_the_model_file_holds_the_training_schema(penguins):
    report = json.loads((penguins.run / "report.json").read_text())
    assert report["targets"] == ["species"]
    schema = report["features"]
    assert list(schema) == ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex", "year"]
    assert schema["island"] == {
        "kind": "categorical", "dtype": str(pd.read_csv(PENGUINS)["island"].dtype), "missing": "most_frequent", "fill": "Biscoe", "scale": "none",
        "categories": ["Biscoe", "Dream", "Torgersen"], "other": [],
    }
    assert schema["year"]["categories"] == ["2007", "2008", "2009"] and schema["year"]["dtype"] == "int64"
    assert schema["bill_length_mm"]["kind"] == "numeric" and schema["bill_length_mm"]["missing"] == "median"
    with np.load(penguins.run / "model.npz", allow_pickle=False) as archive:
        meta = json.loads(str(archive["__meta__"]))
        assert archive["prep.center"].shape == archive["prep.scale"].shape == (12,)
    assert meta["preprocessing"]["inputs"][:4] == ["island=Biscoe", "island=Dream", "island=Torgersen", "bill_length_mm"]


@pytest.mark.parametrize("form", ["csv", "parquet"])
def test_integer_ids_past_2_53_with_missing_values_stay_distinct_categories(tmp_path, form):
    """pandas reads whole numbers with a gap as float64, which rounds ...993 to ...992: a declared
    categorical column of such IDs kept two of its four, and predict (which reads a CSV file's cells
    as text) called the other two unseen."""
    ids = [9007199254740993, 9007199254740992, 9007199254740995, 9007199254740997]
    lines = ["x,code,y"] + [f"{i / 100},{'' if i in (7, 60) else ids[i % 4]},{'ab'[ids[i % 4] % 2]}" for i in range(120)]
    write(tmp_path, "\n".join(lines) + "\n", "train.csv")
    write(tmp_path, "\n".join(lines[:1] + lines[1:40]) + "\n", "val.csv")  # a separate file, with a gap too
    if form == "parquet":  # as other tools write it: int64 with nulls, no pandas metadata (whose Int64 pandas would keep)
        import pyarrow as pa
        import pyarrow.parquet as pq

        for name in ("train", "val"):
            frame = pd.read_csv(tmp_path / f"{name}.csv", dtype={"code": "Int64"})
            codes = [None if pd.isna(v) else int(v) for v in frame["code"]]
            columns = {"x": frame["x"].to_list(), "code": pa.array(codes, pa.int64()), "y": frame["y"].to_list()}
            pq.write_table(pa.table(columns), tmp_path / f"{name}.parquet")
    config = write(tmp_path, f"data: {{train: train.{form}, val: val.{form}, target: y, split: {{test: 0.0}},"
                   " columns: {code: {kind: categorical, missing: most_frequent}}}\nstopping: {max_epochs: 2}\n")
    fitted = call_cli("fit", config, "-q", "--runs-dir", tmp_path / "runs")
    assert (fitted.returncode, fitted.stderr) == (OK, "")  # no category of the validation file unseen either
    (run,) = (tmp_path / "runs").iterdir()
    with np.load(run / "model.npz", allow_pickle=False) as archive:
        (code,) = [c for c in json.loads(str(archive["__meta__"]))["preprocessing"]["columns"] if c["name"] == "code"]
    assert code["categories"] == sorted(str(i) for i in ids) and code["form"] == "number"
    for data in {tmp_path / "train.csv", tmp_path / f"train.{form}"}:
        predicted = call_cli("predict", run, data)
        assert (predicted.returncode, predicted.stderr) == (OK, ""), data


# --- k-fold cross-validation ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def folds(tmp_path_factory) -> SimpleNamespace:
    runs = tmp_path_factory.mktemp("cv") / "runs"
    result = call_cli("fit", "configs/iris.yaml", "--folds", "3", "--set", "stopping.max_epochs=3", "-q", "--runs-dir", runs)
    assert result.returncode == OK, result.stderr
    (parent,) = runs.iterdir()
    return SimpleNamespace(result=result, parent=parent, summary=json.loads((parent / "cv.json").read_text()))


def test_each_fold_is_an_ordinary_run_in_one_folder(folds):
    assert sorted(p.name for p in folds.parent.iterdir()) == [".lock", "cv.json", "cv.yaml", "fold-1", "fold-2", "fold-3"]
    plan = yaml.safe_load((folds.parent / "cv.yaml").read_text())
    assert (plan["data"]["split"]["folds"], plan["data"]["split"]["fold"], plan["seed"]) == (3, None, 42)
    for i in (1, 2, 3):
        config = yaml.safe_load((folds.parent / f"fold-{i}" / "config.yaml").read_text())
        assert (config["data"]["split"]["folds"], config["data"]["split"]["fold"], config["seed"]) == (3, i, 42)
        assert (folds.parent / f"fold-{i}" / "model.npz").is_file()


def test_the_summary_is_the_folds_mean_and_standard_deviation(folds):
    reports = [json.loads((folds.parent / f"fold-{i}" / "report.json").read_text()) for i in (1, 2, 3)]
    for split in ("val", "test"):
        table = folds.summary[split]
        assert table["folds"] == [r["metrics"][split] for r in reports]
        for name in table["mean"]:
            values = np.array([r["metrics"][split][name] for r in reports])
            assert table["mean"][name] == pytest.approx(values.mean(), abs=1e-15)
            assert table["std"][name] == pytest.approx(values.std(ddof=1), abs=1e-15)


def test_the_cv_summary_table_on_stdout(folds):
    lines = folds.result.stdout.splitlines()
    assert lines[0] == f"run        {folds.parent} (3 folds)"
    names = ["loss", "accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro", "log_loss"]
    for start, split in ((1, "val"), (7, "test")):
        assert lines[start].split() == [split, *names]
        table = folds.summary[split]
        expected = [(f"fold {i + 1}", m) for i, m in enumerate(table["folds"])] + [("mean", table["mean"]), ("std", table["std"])]
        for line, (label, values) in zip(lines[start + 1 : start + 6], expected):
            assert line.split() == label.split() + [f"{values[n]:.4f}" for n in names]
    assert len(lines) == 13


def test_evaluate_a_fold_repeats_its_report(folds):
    result = call_cli("evaluate", folds.parent / "fold-2", "--json")
    assert result.returncode == OK, result.stderr
    report = json.loads((folds.parent / "fold-2" / "report.json").read_text())
    for split in ("val", "test"):
        assert json.loads(result.stdout)[split] == pytest.approx(report["metrics"][split], rel=1e-12)


def test_the_cross_validation_folder_points_to_its_folds(folds):
    result = call_cli("predict", folds.parent, PENGUINS)
    assert (result.returncode, result.stdout) == (USAGE, "")
    assert result.stderr == f"error: {folds.parent}: a cross-validation folder, with one run per fold; give one of them, e.g. {folds.parent / 'fold-1'}\n"


def test_folds_cannot_be_combined_with_resume(tmp_path):
    (tmp_path / "config.yaml").write_text("data: {train: x.csv, target: y}\n")
    result = call_cli("fit", "--resume", tmp_path, "--folds", "3")
    assert (result.returncode, result.stdout) == (USAGE, "")
    assert result.stderr == "error: --folds cannot be combined with --resume: a cross-validation continues from its folder, e.g. --resume RUN (it records its folds)\n"


# --- several targets and a split column ------------------------------------------------------------


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("targets")
    rng = np.random.default_rng(0)
    n = 240
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], n)
    frame = pd.DataFrame({
        "x1": x1, "x2": x2, "color": color,
        "warm": (x1 > 0).astype(int), "bright": ((x2 > 0) | (color == "red")).astype(int),
        "u": 2 * x1 + 100, "v": -50 * x2 + 20 * (color == "green"),
        "part": np.array(["train", "train", "train", "val", "test"])[np.arange(n) % 5],
    })
    frame.to_csv(folder / "t.csv", index=False)
    return folder


def test_multilabel_targets_predict_one_column_per_label(table, tmp_path):
    write(table, "seed: 1\ndata: {train: t.csv, target: [warm, bright], exclude: [u, v, part]}\nstopping: {max_epochs: 3}\n", "ml.yaml")
    run = fitted_run(tmp_path, table / "ml.yaml")
    report = json.loads((run / "report.json").read_text())
    assert (report["task"], report["loss"], report["classes"]) == ("multilabel", "binary_cross_entropy", ["warm", "bright"])
    assert list(report["metrics"]["test"]) == ["loss", "accuracy", "hamming_loss", "precision_macro", "recall_macro", "f1_macro", "log_loss"]
    assert list(report["per_class"]) == ["warm", "bright"] and report["confusion_matrix"] is None
    result = call_cli("predict", run, table / "t.csv", "--proba")
    assert result.returncode == OK, result.stderr
    out = rows(result.stdout)
    assert out[0] == ["prediction_warm", "prediction_bright", "proba_warm", "proba_bright"]
    for line in out[1:]:
        assert [int(line[0]), int(line[1])] == [int(float(p) >= 0.5) for p in line[2:]]


def test_several_regression_targets_with_a_split_column(table, tmp_path):
    write(table, "seed: 1\ndata: {train: t.csv, target: [u, v], exclude: [warm, bright], split: {column: part}}\nstopping: {max_epochs: 3}\n", "mo.yaml")
    check = call_cli("check", table / "mo.yaml")
    assert check.returncode == OK, check.stderr
    assert check.stdout.splitlines()[1:5] == [
        "task       regression (targets 'u', 'v', loss mse)",
        "features   3 (5 network inputs): x1, x2, color",
        "categories color 3: blue, green, red",
        "rows       train 144, val 48, test 48",
    ]
    run = fitted_run(tmp_path, table / "mo.yaml")
    result = call_cli("predict", run, table / "t.csv")
    assert result.returncode == OK, result.stderr
    out = rows(result.stdout)
    assert out[0] == ["prediction_u", "prediction_v"] and len(out) == 241
    evaluated = call_cli("evaluate", run, "--json")
    report = json.loads((run / "report.json").read_text())
    assert json.loads(evaluated.stdout)["test"] == pytest.approx(report["metrics"]["test"], rel=1e-12)
    assert re.fullmatch(r"-?\d+(\.\d+)?(e[+-]\d+)?", out[1][0])


def test_check_shows_kinds_categories_and_missing_values(tmp_path):
    result = call_cli("check", ROOT / "configs" / "penguins.yaml", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (OK, "")
    assert result.stdout.splitlines()[1:7] == [
        "task       classification (target 'species', loss cross_entropy)",
        "features   7 (12 network inputs): island, bill_length_mm, bill_depth_mm, flipper_length_mm, body_mass_g, sex, year",
        "categories island 3: Biscoe, Dream, Torgersen; sex 2: female, male; year 3: 2007, 2008, 2009",
        "missing    in training rows: bill_length_mm 1 (median), bill_depth_mm 1 (median), flipper_length_mm 1 (median), "
        "body_mass_g 1 (median), sex 8 (most_frequent)",
        "rows       train 206, val 69, test 69",
        "classes    3: Adelie, Chinstrap, Gentoo",
    ]
