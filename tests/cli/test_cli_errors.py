"""Exit codes and the exact messages of user mistakes (ARCHITECTURE §8): one clear line, never a traceback.

The messages are pinned through the console script's entry point in this process (call_cli); a
real `python -m bptrain` process shows each exit code (2, 3, 5), help, and stdin.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, call_cli, fit_iris, fit_shipped, run_cli, write

IRIS = ROOT / "datasets" / "iris.csv"
PENGUINS = ROOT / "datasets" / "penguins.csv"
IRIS_COLUMNS = "sepal_length, sepal_width, petal_length, petal_width, species"

USAGE, DATA, MODEL_FILE = 2, 3, 5


def expect(result, code: int, *lines: str) -> None:
    """Exit `code`, nothing on stdout, no traceback, and stderr exactly `lines` (when given)."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    if lines:
        assert result.stderr == "\n".join(lines) + "\n"


def fit(tmp_path: Path, config: str = "config.yaml", *extra: str):
    return call_cli("fit", config, *extra, "--runs-dir", tmp_path / "runs", cwd=tmp_path)


def assert_no_run(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir())


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return fit_iris(tmp_path_factory.mktemp("runs"), 1)


# --- configuration: exit 2 ------------------------------------------------------------------------


def test_missing_config_file(tmp_path):
    expect(fit(tmp_path, "nope.yaml"), USAGE, "error: nope.yaml: config file not found. Check the path, or start from one in configs/")
    expect(run_cli("check", "nope.yaml", cwd=tmp_path), USAGE, "error: nope.yaml: config file not found. Check the path, or start from one in configs/")
    assert_no_run(tmp_path)


def test_yaml_syntax_error_names_the_line(tmp_path):
    write(tmp_path, "name: a\ndata:\n  train: data.csv\n   target: y\n")
    expect(fit(tmp_path), USAGE, "error: config.yaml: line 4, column 10: YAML syntax error: mapping values are not allowed in this context")
    assert_no_run(tmp_path)


@pytest.mark.parametrize(
    "text, got",
    [("- data\n- model\n", "a list"), ("just words\n", "a string")],
    ids=["list", "string"],
)
def test_top_level_not_a_mapping(tmp_path, text, got):
    write(tmp_path, text)
    expect(fit(tmp_path), USAGE, f"error: config.yaml: the top level must be a mapping of keys (name, data, model, ...), got {got}")


def test_empty_config(tmp_path):
    write(tmp_path, "# nothing here\n")
    expect(fit(tmp_path), USAGE, "error: config.yaml: the config file is empty; it needs at least a `data:` section")


def test_unknown_key_with_did_you_mean(tmp_path):
    write(tmp_path, f"name: a\ndata: {{train: {IRIS}, target: species}}\ntraning: {{epochs: 3}}\n")
    expect(fit(tmp_path), USAGE, "error: config.yaml: 1 problem", "  traning: unknown key. Did you mean 'training'?")
    assert_no_run(tmp_path)


def test_every_problem_is_reported_at_once(tmp_path):
    write(
        tmp_path,
        f"name: a\ndata: {{train: {IRIS}, target: species}}\n"
        "optimizer: {name: adam, lrr: 0.1}\ntraining: {batsh_size: 3}\nstopping: {max_epochs: -1}\n",
    )
    expect(
        call_cli("check", "config.yaml", cwd=tmp_path),
        USAGE,
        "error: config.yaml: 3 problems",
        "  optimizer.lrr: unknown key. Did you mean 'lr'?",
        "  training.batsh_size: unknown key. Did you mean 'batch_size'?",
        "  stopping.max_epochs: must be greater than 0 (got -1)",
    )


@pytest.mark.parametrize(
    "item, lines",
    [
        ("stopping.max_epochs", ["error: --set 'stopping.max_epochs': expected KEY=VALUE, e.g. --set stopping.max_epochs=50"]),
        ("model.layers.5.units=3", ["error: --set model.layers.5.units: model.layers.5: no list item 5 (the list has 2)"]),
        (
            "stopping.max_epochs=abc",
            ["error: {config}: 1 problem", "  stopping.max_epochs: must be a valid integer, unable to parse string as an integer (got 'abc') (from --set)"],
        ),
        ("trainig.epochs=3", ["error: {config}: 1 problem", "  trainig: unknown key. Did you mean 'training'?"]),
    ],
    ids=["no-equals", "list-index", "not-an-integer", "misspelled-key"],
)
def test_bad_set(tmp_path, item, lines):
    config = ROOT / "configs" / "iris.yaml"
    result = fit(tmp_path, str(config), "--set", item)
    expect(result, USAGE, *[line.format(config=config) for line in lines])
    assert_no_run(tmp_path)


def test_bad_run_name(tmp_path):
    result = fit(tmp_path, str(ROOT / "configs" / "iris.yaml"), "--name", "../evil")
    expect(result, USAGE, "error: run name '../evil' may hold only letters, digits, '.', '_' and '-'")
    assert_no_run(tmp_path)
    assert not list(tmp_path.glob("evil*"))


def test_a_run_name_of_only_dots(tmp_path):
    result = fit(tmp_path, str(ROOT / "configs" / "iris.yaml"), "--name", "...")
    expect(result, USAGE, "error: run name '...' must hold a letter or digit, not only dots; e.g. --name iris")
    assert_no_run(tmp_path)


def test_missing_command_argument_and_unknown_command(tmp_path):
    missing = run_cli("fit", cwd=tmp_path)
    assert missing.returncode == USAGE
    assert missing.stderr == "error: fit needs a CONFIG file, or --resume RUN to continue a run\n"
    assert "Traceback" not in missing.stderr
    expect(run_cli("frobnicate", cwd=tmp_path), USAGE, "error: bptrain: no such command 'frobnicate'; see 'bptrain --help'")


# --- data: exit 3 ---------------------------------------------------------------------------------


def test_missing_data_file_relative_to_the_config(tmp_path):
    (tmp_path / "cfg").mkdir()
    write(tmp_path / "cfg", "name: a\ndata: {train: ../data/missing.csv, target: species}\n")
    expect(
        run_cli("fit", "cfg/config.yaml", "--runs-dir", tmp_path / "runs", cwd=tmp_path),  # a real process's exit code
        DATA,
        "error: data/missing.csv: data file not found. Check the path (data paths are relative to the config file)",
    )
    assert_no_run(tmp_path)


def test_missing_target_column_with_did_you_mean(tmp_path):
    shutil.copy(IRIS, tmp_path / "data.csv")
    write(tmp_path, "name: a\ndata: {train: data.csv, target: specie}\n")
    expect(fit(tmp_path), DATA, f"error: data.csv: target column 'specie' not found. Did you mean 'species'? Columns: {IRIS_COLUMNS}")
    assert_no_run(tmp_path)


MISSING_HINT = (
    "Choose how to handle them with data.numeric.missing, data.categorical.missing or data.columns.<name>.missing "
    "(drop, mean, median, most_frequent, constant), or leave the columns out with data.exclude"
)


def test_missing_values_are_an_error_by_default_naming_columns_and_counts(tmp_path):
    write(tmp_path, f"name: p\ndata: {{train: {PENGUINS}, target: species}}\n")
    expect(
        fit(tmp_path),
        DATA,
        f"error: {PENGUINS}: missing values in feature columns: bill_length_mm (2 rows), bill_depth_mm (2 rows), "
        f"flipper_length_mm (2 rows), body_mass_g (2 rows), sex (11 rows). {MISSING_HINT}",
    )
    assert_no_run(tmp_path)


def test_missing_feature_values(tmp_path):
    write(tmp_path, f"name: p\ndata: {{train: {PENGUINS}, target: species, exclude: [island, sex]}}\n")
    expect(
        fit(tmp_path),
        DATA,
        f"error: {PENGUINS}: missing values in feature columns: bill_length_mm (2 rows), bill_depth_mm (2 rows), "
        f"flipper_length_mm (2 rows), body_mass_g (2 rows). {MISSING_HINT}",
    )
    assert_no_run(tmp_path)


def test_target_with_one_class(tmp_path):
    write(tmp_path, "a,b,y\n1,2,x\n3,4,x\n5,6,x\n7,8,x\n", "one.csv")
    write(tmp_path, "name: a\ndata: {train: one.csv, target: y}\n")
    expect(
        fit(tmp_path),
        DATA,
        "error: one.csv: target column 'y' has only one class ('x') in the training rows; classification needs at least two",
    )
    assert_no_run(tmp_path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "error: data.csv: the file is empty; a CSV file needs a header line and rows"),
        ("a,b,y\n", "error: data.csv: has a header but no rows"),
    ],
    ids=["empty", "header-only"],
)
def test_empty_and_header_only_csv(tmp_path, text, message):
    write(tmp_path, text, "data.csv")
    write(tmp_path, "name: a\ndata: {train: data.csv, target: y}\n")
    expect(fit(tmp_path), DATA, message)
    assert_no_run(tmp_path)


# --- predict and evaluate on bad input: exit 3 ------------------------------------------------------


def test_predict_with_a_misspelled_feature_column(run, tmp_path):
    write(tmp_path, IRIS.read_text().replace("petal_width", "petal_widht"), "typo.csv")
    expect(
        call_cli("predict", run, "typo.csv", cwd=tmp_path),
        DATA,
        "error: typo.csv: missing 1 feature column the model was trained with: petal_width. Did you mean 'petal_widht'? "
        "Columns: sepal_length, sepal_width, petal_length, petal_widht, species",
    )


def test_a_file_without_any_of_the_features_is_asked_about_not_matched_to_a_similar_name(run, tmp_path):
    # "bill_length_mm" is close enough to "sepal_length" for difflib, but no column of the file is a feature:
    # it is another data set, not a misspelling
    write(tmp_path, (IRIS.parent / "penguins.csv").read_text(), "penguins.csv")
    expect(
        call_cli("predict", run, "penguins.csv", cwd=tmp_path),
        DATA,
        "error: penguins.csv: has none of the 4 feature columns the model was trained with: sepal_length, sepal_width, "
        "petal_length, petal_width. Is it the data for this model? "
        "Columns: species, island, bill_length_mm, bill_depth_mm, flipper_length_mm, body_mass_g, sex, year",
    )
    header, rest = IRIS.read_text().split("\n", 1)
    write(tmp_path, header.upper() + "\n" + rest, "upper.csv")  # every feature renamed: a hint for the first
    expect(
        call_cli("predict", run, "upper.csv", cwd=tmp_path),
        DATA,
        "error: upper.csv: missing 4 feature columns the model was trained with: sepal_length, sepal_width, "
        "petal_length, petal_width. Did you mean 'SEPAL_LENGTH'? Columns: SEPAL_LENGTH, SEPAL_WIDTH, PETAL_LENGTH, PETAL_WIDTH, SPECIES",
    )


def drop_column(text: str, name: str) -> str:
    rows = [line.split(",") for line in text.splitlines()]
    i = rows[0].index(name)
    return "\n".join(",".join(r[:i] + r[i + 1 :]) for r in rows) + "\n"


def test_predict_with_a_missing_feature_column(run, tmp_path):
    write(tmp_path, drop_column(IRIS.read_text(), "petal_width"), "nofeat.csv")
    result = call_cli("predict", run, "nofeat.csv", cwd=tmp_path)
    expect(result, DATA)
    assert result.stderr.startswith("error: nofeat.csv: missing 1 feature column the model was trained with: petal_width.")
    assert result.stderr.endswith(" Columns: sepal_length, sepal_width, petal_length, species\n")
    assert result.stderr.count("\n") == 1


def test_missing_feature_hint_does_not_suggest_a_column_already_used(run, tmp_path):
    write(tmp_path, drop_column(IRIS.read_text(), "petal_width"), "nofeat.csv")
    result = call_cli("predict", run, "nofeat.csv", cwd=tmp_path)
    assert result.returncode == DATA
    assert "Did you mean 'sepal_width'" not in result.stderr


def test_predict_keep_of_an_unknown_column(run, tmp_path):
    shutil.copy(IRIS, tmp_path / "data.csv")
    expect(
        call_cli("predict", run, "data.csv", "--keep", "specie", cwd=tmp_path),
        DATA,
        f"error: data.csv: --keep column 'specie' not found. Did you mean 'species'? Columns: {IRIS_COLUMNS}",
    )


def test_predict_empty_stdin(run, tmp_path):
    expect(
        run_cli("predict", run, "-", input="", cwd=tmp_path),
        DATA,
        "error: <stdin>: the file is empty; a CSV file needs a header line and rows",
    )


def test_evaluate_data_without_the_target(run, tmp_path):
    write(tmp_path, drop_column(IRIS.read_text(), "species"), "features.csv")
    expect(
        call_cli("evaluate", run, "--data", "features.csv", cwd=tmp_path),
        DATA,
        "error: features.csv: target column 'species' not found; evaluate needs labelled rows "
        "(use bptrain predict for unlabelled ones).",
    )


def test_evaluate_data_with_an_unseen_class(run, tmp_path):
    write(tmp_path, IRIS.read_text().replace(",virginica", ",virginia"), "data.csv")
    expect(
        call_cli("evaluate", run, "--data", "data.csv", cwd=tmp_path),
        DATA,
        "error: data.csv: target column 'species' has values the model never saw: 'virginia'; "
        "the model knows setosa, versicolor, virginica",
    )


def test_predict_output_into_a_missing_folder(run, tmp_path):
    expect(
        call_cli("predict", run, IRIS, "-o", "nowhere/out.csv", cwd=tmp_path),
        USAGE,
        "error: --output nowhere/out.csv: the folder nowhere does not exist",
    )
    assert list(tmp_path.iterdir()) == []


def test_predict_output_into_a_folder_that_takes_no_new_files(run, tmp_path):
    if not Path("/proc/self").is_dir():
        pytest.skip("no /proc here")
    expect(
        call_cli("predict", run, IRIS, "-o", "/proc/self/out.csv", cwd=tmp_path),
        6,
        "error: --output /proc/self/out.csv: the folder /proc/self does not take new files; choose another folder",
    )


@pytest.mark.parametrize("target", ["adir", "afile/out.csv"], ids=["folder", "under-a-file"])
def test_predict_output_that_cannot_be_a_file(run, tmp_path, target):
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x\n")
    result = call_cli("predict", run, IRIS, "-o", target, cwd=tmp_path)
    assert "internal error" not in result.stderr, result.stderr
    expect(result, USAGE)
    assert result.stderr.startswith(f"error: --output {target}: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "afile"]


# --- model files: exit 5; unknown run: exit 2 -------------------------------------------------------


NOT_A_MODEL = "not a bptrain model file (format_version missing); was it written by bptrain fit?"


@pytest.mark.parametrize(
    "command, target, shown",
    [("evaluate", "plain.npz", "plain.npz"), ("predict", "run", "run/model.npz")],
    ids=["evaluate-file", "predict-folder"],
)
def test_npz_without_metadata_is_not_a_model(tmp_path, command, target, shown):
    np.savez(tmp_path / "plain.npz", w=np.ones((4, 3)))
    (tmp_path / "run").mkdir()
    np.savez(tmp_path / "run" / "model.npz", w=np.ones((4, 3)))
    args = [IRIS] if command == "predict" else []
    expect(run_cli(command, target, *args, cwd=tmp_path), MODEL_FILE, f"error: {shown}: {NOT_A_MODEL}")


@pytest.mark.parametrize(
    "command, target", [("evaluate", "fake"), ("predict", "fake/model.npz")], ids=["evaluate-folder", "predict-file"]
)
def test_text_file_named_model_npz(tmp_path, command, target):
    (tmp_path / "fake").mkdir()
    write(tmp_path / "fake", "hello, I am not a model\n", "model.npz")
    args = [IRIS] if command == "predict" else []
    result = call_cli(command, target, *args, cwd=tmp_path)
    expect(result, MODEL_FILE)
    assert result.stderr.startswith("error: fake/model.npz: not a bptrain model file")
    assert result.stderr.rstrip().endswith("was it written by bptrain fit?")
    assert result.stderr.count("\n") == 1


def test_text_model_file_message_does_not_suggest_unpickling(tmp_path):
    (tmp_path / "fake").mkdir()
    write(tmp_path / "fake", "hello, I am not a model\n", "model.npz")
    result = call_cli("evaluate", "fake", cwd=tmp_path)
    assert result.returncode == MODEL_FILE
    assert "pickle" not in result.stderr


def test_folder_without_a_model(tmp_path):
    (tmp_path / "empty").mkdir()
    expect(
        call_cli("evaluate", "empty", cwd=tmp_path),
        MODEL_FILE,
        "error: empty: no model.npz in this folder; is it a run folder written by bptrain fit?",
    )


def test_evaluate_of_a_model_file_alone_names_the_file(run, tmp_path):
    shutil.copy(run / "model.npz", tmp_path / "lonely.npz")
    expect(
        call_cli("evaluate", "lonely.npz", cwd=tmp_path),
        MODEL_FILE,
        "error: lonely.npz: no config.yaml beside the model, so its validation and test rows are unknown; use --data FILE",
    )


@pytest.mark.parametrize("command", ["evaluate", "explain"])
def test_a_config_yaml_edited_to_split_the_data_otherwise_is_refused_where_the_rows_are_split_again(run, tmp_path, command):
    """Without --data, the validation and test rows come from splitting the data again by the run's
    config.yaml; edited, it would score other rows (some of them training rows) as if they were
    held out. Its checkpoint records the config the run split the data with."""
    copy = tmp_path / run.name
    shutil.copytree(run, copy)
    text = (copy / "config.yaml").read_text(encoding="utf-8")
    assert "seed: 42\n" in text and "    val: 0.15\n" in text and "    decimal: .\n" in text
    edited = text.replace("seed: 42\n", "seed: 7\n").replace("    val: 0.15\n", "    val: 0.5\n").replace("    decimal: .\n", "    decimal: ','\n")
    (copy / "config.yaml").write_text(edited, encoding="utf-8")
    expect(
        call_cli(command, copy),
        USAGE,
        f"error: {copy / 'config.yaml'}: these settings no longer split the data as the run did (its checkpoint records how it did):",
        "  data.read.decimal: . -> ,",
        "  data.split.val: 0.15 -> 0.5",
        "  seed: 42 -> 7",
        "The validation and test rows are found by splitting the data again as in training; put these settings back, "
        "or give the rows to score with --data FILE",
    )


def test_a_run_whose_data_file_moved_still_evaluates_once_config_yaml_names_the_new_place(run, tmp_path):
    copy, moved = tmp_path / run.name, tmp_path / "elsewhere" / "flowers.csv"
    shutil.copytree(run, copy)
    moved.parent.mkdir()
    shutil.copy(IRIS, moved)
    text = (copy / "config.yaml").read_text(encoding="utf-8")
    (copy / "config.yaml").write_text(re.sub(r"(?m)^  train: .*$", f"  train: {moved}", text, count=1), encoding="utf-8")
    assert f"\n  train: {moved}\n" in (copy / "config.yaml").read_text(encoding="utf-8")
    moved_result, result = call_cli("evaluate", copy, "--json"), call_cli("evaluate", run, "--json")
    assert (moved_result.returncode, moved_result.stderr) == (0, "")
    assert moved_result.stdout == result.stdout


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_evaluate_of_a_run_without_held_out_rows_asks_for_data(tmp_path, as_json):
    settings = ("data.split.val=0", "data.split.test=0", "stopping.early_stopping=null")
    run = fit_shipped(tmp_path / "runs", "iris", 2, *settings)
    expect(
        call_cli("evaluate", run, *(["--json"] if as_json else [])),
        USAGE,
        f"error: {run}: the run has no validation or test rows to evaluate; give labelled rows with --data FILE",
    )


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_unknown_run_folder(tmp_path, command):
    args = [IRIS] if command == "predict" else []
    expect(
        call_cli(command, "no-such-run", *args, cwd=tmp_path),
        USAGE,
        "error: no-such-run: no such run folder or model file; there are no runs under runs; train one with: bptrain fit CONFIG",
    )


# --- help -----------------------------------------------------------------------------------------


def test_help_lists_the_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    assert result.stderr == ""
    assert "Usage:" in result.stdout
    for command in ("fit", "evaluate", "predict", "check"):
        assert re.search(rf"^\W*{command}\s+\S", result.stdout, re.M), command
    assert run_cli("-h").stdout == result.stdout


def test_check_prints_a_summary_and_trains_nothing(tmp_path):
    result = call_cli("check", ROOT / "configs" / "iris.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        f"ok: {ROOT / 'configs' / 'iris.yaml'}",
        "task       classification (target 'species', loss cross_entropy)",
        "features   4: sepal_length, sepal_width, petal_length, petal_width",
        "rows       train 102, val 24, test 24",
        "classes    3: setosa, versicolor, virginica",
        "logged     train_loss, val_loss, val_accuracy, val_balanced_accuracy, val_precision_macro, "
        "val_recall_macro, val_f1_macro, val_log_loss",
        "engine     numpy (auto: about 0.0011 s saved at most (403 parameters x 2,100 steps), under 2 s)",
        "tune       6 keys: optimizer.lr, training.batch_size, model.layers.count, model.layers.units, model.layers.dropout, "
        "regularization.l2; minimize val_loss (tpe sampler, median pruner)",
    ]
    assert list(tmp_path.iterdir()) == []
