"""Reading input for predict and evaluate --data: field counts, limits, output names, paths; through the CLI's
entry point (in this process; the endless inputs, from a device, a file and a pipe, in a real one)."""

import os

import pytest

from conftest import ROOT, call_cli, fit_iris, run_cli

DATA, USAGE = 3, 2
IRIS = ROOT / "datasets" / "iris.csv"
HEADER = "sepal_length,sepal_width,petal_length,petal_width,species"
WIDTH_HINT = "check the delimiter and the quoting on that line"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return fit_iris(tmp_path_factory.mktemp("runs"), 2)


def predict(run, *args, input=None, process=False, **kwargs):
    """`bptrain predict RUN ARGS`, in a real process when `process`."""
    return (run_cli if process else call_cli)("predict", run, *args, input=input, **kwargs)


def evaluate(run, *args, input=None, process=False, **kwargs):
    return (run_cli if process else call_cli)("evaluate", run, "--data", *args, input=input, **kwargs)


def assert_error(result, code, message, stdout=""):
    assert result.returncode == code, result.stderr
    assert result.stderr == f"error: {message}\n"
    assert result.stdout == stdout


# --- 1: a record with more or fewer fields than the header ----------------------------------------


@pytest.mark.parametrize(
    "rows, message",
    [
        ("5.1,3.5,5.9,5.9,2.0,setosa\n", f"<stdin>: line 2 has 6 fields, but the header has 5; {WIDTH_HINT}"),
        ("5.1,3.5,1.4,0.2,setosa\n5.1,3.5,5.9,5.9,2.0,setosa\n", f"<stdin>: line 3 has 6 fields, but the header has 5; {WIDTH_HINT}"),
        ("5.1,3.5,1.4,0.2,setosa\n5.1,3.5,5.9\n", f"<stdin>: line 3 has 3 fields, but the header has 5; {WIDTH_HINT}"),
        ('5.1,3.5,1.4,0.2,"set\nosa"\n5.1,3.5,5.9,0.2\n', f"<stdin>: line 4 has 4 fields, but the header has 5; {WIDTH_HINT}"),
    ],
    ids=["extra-on-the-first-row", "extra-on-a-later-row", "short", "short-after-a-quoted-line-end"],
)
def test_a_row_of_the_wrong_width_is_refused_by_predict_and_evaluate_alike(run, rows, message):
    text = HEADER + "\n" + rows
    assert_error(predict(run, "-", "--keep", "species", input=text), DATA, message)
    assert_error(evaluate(run, "-", input=text), DATA, message)


# --- 2: kept columns never collide with the output's own names --------------------------------------


@pytest.mark.parametrize(
    "keep, proba, message",
    [
        ("prediction", [], "--keep prediction: predict writes a column of that name itself (prediction); rename that column in the input to keep it"),
        (
            "proba_setosa",
            ["--proba"],
            "--keep proba_setosa: predict writes a column of that name itself "
            "(prediction, proba_setosa, proba_versicolor, proba_virginica); rename that column in the input to keep it",
        ),
    ],
)
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_keeping_a_column_named_like_an_output_column_is_refused(run, tmp_path, keep, proba, message, fmt):
    data = tmp_path / "in.csv"
    data.write_text(f"{HEADER},{keep}\n5.1,3.5,1.4,0.2,setosa,mine\n")
    assert_error(predict(run, data, "--keep", keep, *proba, "--format", fmt), USAGE, message)


def test_a_kept_column_named_like_an_unwritten_probability_is_kept(run, tmp_path):
    data = tmp_path / "in.csv"
    data.write_text(f"{HEADER},proba_setosa\n5.1,3.5,1.4,0.2,setosa,mine\n")
    result = predict(run, data, "--keep", "proba_setosa")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "proba_setosa,prediction\nmine,setosa\n"


# --- 8: limits on what is read ----------------------------------------------------------------------

TOO_LONG = "line {line} is longer than 8 MiB, the longest line bptrain reads; is this a CSV file with line ends?"


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_dev_zero_ends_quickly_with_the_line_limit(run):
    assert_error(predict(run, "/dev/zero", process=True, timeout=60), DATA, "/dev/zero: " + TOO_LONG.format(line=1))
    assert_error(evaluate(run, "/dev/zero", process=True, timeout=60), DATA, "/dev/zero: " + TOO_LONG.format(line=1))


def test_a_file_without_line_ends_ends_with_the_line_limit(run, tmp_path):
    endless = tmp_path / "one-line.csv"
    endless.write_bytes(f"{HEADER}\n5.1,3.5,1.4,0.2,setosa\n".encode() + b"1," * (5 << 20))
    streamed = predict(run, endless, process=True)  # predicts the row before the long line as it streams
    assert_error(streamed, DATA, f"{endless}: " + TOO_LONG.format(line=3), stdout="prediction\nsetosa\n")
    assert_error(evaluate(run, endless), DATA, f"{endless}: " + TOO_LONG.format(line=3))
    assert_error(predict(run, "-", input=b"1," * (5 << 20), process=True), DATA, "<stdin>: " + TOO_LONG.format(line=1))


def test_a_quote_left_open_in_a_streamed_input_ends_with_the_record_limit(run):
    text = f'{HEADER}\n5.1,3.5,1.4,0.2,setosa\n"5.1,3.5,1.4,0.2,setosa\n' + "5.1,3.5,1.4,0.2,setosa\n" * 400_000  # 9.2 MB
    message = '<stdin>: the record starting on line 3 runs past 8 MiB, the longest bptrain reads; is a quote (") left open on that line?'
    result = predict(run, "-", input=text, process=True)
    assert result.returncode == DATA and result.stderr == f"error: {message}\n"
    assert result.stdout == "prediction\nsetosa\n"  # the rows before it were predicted, as they were read


def wide_file(tmp_path):
    """A valid file of 9,002 columns whose header (about 80 KB) the first 64 KiB would cut inside a
    name, `col_739` of `col_7390`, which would then look like a duplicate of the real `col_739`."""
    names = HEADER.split(",") + ["padxxxx"] + [f"col_{i}" for i in range(8996)]
    header = ",".join(names)
    assert len(names) == 9002 and len(header) > 1 << 16 and header[: 1 << 16].rsplit(",", 1)[1] == "col_739"
    path = tmp_path / "wide.csv"
    rows = IRIS.read_text().splitlines()[1:4]
    path.write_text(header + "\n" + "".join(row + ",0" * 8997 + "\n" for row in rows))
    return path


def test_a_header_longer_than_the_detection_sample_reads(run, tmp_path):
    path = wide_file(tmp_path)
    streamed = predict(run, path, "--keep", "col_8995")
    assert streamed.returncode == 0, streamed.stderr
    assert streamed.stdout == "col_8995,prediction\n0,setosa\n0,setosa\n0,setosa\n"
    whole = evaluate(run, path)
    assert whole.returncode == 0, whole.stderr
    assert "accuracy 1.0000" in whole.stdout


def test_many_duplicate_names_are_reported_at_once(run, tmp_path):
    path = tmp_path / "dups.csv"
    path.write_text(",".join(["a"] * 50_000) + "\n" + ",".join(["1"] * 50_000) + "\n")  # 100 KB of one name
    message = f"{path}: duplicate column names: a. Rename them so each is unique"
    assert_error(predict(run, path), DATA, message)
    assert_error(evaluate(run, path), DATA, message)


def test_more_columns_than_the_limit_are_refused(run, tmp_path):
    path = tmp_path / "many.csv"
    path.write_text(",".join(f"c{i}" for i in range(100_001)) + "\n" + ",".join(["1"] * 100_001) + "\n")
    message = f"{path}: the header has 100,001 columns; bptrain reads at most 100,000"
    assert_error(predict(run, path), DATA, message)
    assert_error(evaluate(run, path), DATA, message)


# --- 18: paths on the command line ----------------------------------------------------------------


def test_a_missing_input_names_the_current_folder(run, tmp_path):
    hint = f"data file not found. Check the path (paths on the command line are relative to the current folder, {tmp_path})"
    assert_error(predict(run, "nope.csv", cwd=tmp_path), DATA, f"nope.csv: {hint}")
    assert_error(evaluate(run, "nope.csv", cwd=tmp_path), DATA, f"nope.csv: {hint}")


# --- true or false where the model reads numbers ------------------------------------------------------


@pytest.mark.parametrize("rows", ["5.1,True,1.4,0.2\n", "5.1,True,1.4,0.2\n5.1,3.5,1.4,0.2\n"], ids=["alone", "among-numbers"])
def test_true_in_a_numeric_column_is_text_whatever_the_other_rows_hold(run, rows):
    text = "sepal_length,sepal_width,petal_length,petal_width\n" + rows
    message = "<stdin>: column 'sepal_width' must be numeric, but row 1 holds text: 'True'. The model reads this column as numbers."
    assert_error(predict(run, "-", input=text, process=True), DATA, message)


# --- a file in another encoding than the model reads ----------------------------------------------


@pytest.mark.parametrize("streamed", [False, True], ids=["file", "stdin"])
def test_a_latin_1_file_is_told_to_be_converted_since_the_model_fixes_its_encoding(run, tmp_path, streamed):
    data = "sepal_length,sepal_width,petal_length,petal_width,species\n5.1,3.5,1.4,0.2,s\u00e9tosa\n".encode("latin-1")
    path = tmp_path / "latin1.csv"
    path.write_bytes(data)
    result = predict(run, "-", input=data) if streamed else predict(run, path, process=True)
    name = "<stdin>" if streamed else str(path)
    assert result.returncode == DATA, result.stderr
    assert result.stderr.startswith(f"error: {name}: not utf-8 text")
    assert result.stderr.endswith(
        "; the model reads utf-8 text, as its training data was read: convert the file, e.g. iconv -f latin-1 -t utf-8\n"
    )
