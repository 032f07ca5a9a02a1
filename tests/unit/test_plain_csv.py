"""The pandas-free reading of small plain CSV input (bptrain.data.plaincsv): taken for plain numeric
files, declined for anything else, and where taken, the very inputs pandas' reading gives, bit for
bit; through `bptrain predict`, the same output, warnings and errors with it as without it."""

from __future__ import annotations

import io
import os
import random

import numpy as np
import pandas as pd
import pytest

from bptrain.data import plaincsv, reading
from bptrain.data.columns import Column, Unseen, labels_of, numeric_column
from bptrain.data.fastcsv import NA_VALUES
from bptrain.data.preprocess import Preprocessor
from bptrain.errors import DataError
from conftest import ROOT, call_cli, fit_shipped

IRIS = ROOT / "datasets" / "iris.csv"


def preprocessor(**rules) -> Preprocessor:
    """Two numeric features: `a` (standard scale) and `b` with `rules` (missing rule, fill, indicator)."""
    a = numeric_column("a", fill=None)
    b = numeric_column("b", **rules)
    inputs = 2 + b.indicator
    return Preprocessor(
        targets=["y"], task="classification", columns=[a, b], classes=["p", "q"],
        center=np.array([0.5, -1.25, 0.0][:inputs]), scale=np.array([3.0, 0.7, 1.0][:inputs]),
    )


FILLED = {"missing": "median", "fill": 2.5, "indicator": True}


def by_pandas(path, prep: Preprocessor, keep: list[str], dtype: str = "float32", strict: bool = False):
    """(inputs, kept text, the unseen-categories warning) as predict reads `path` with pandas, or the DataError it raises."""
    unseen = Unseen()
    try:
        chunks = list(reading.frame_chunks(path, prep.features, keep, options=prep.read, text=prep.categorical))
        x = np.concatenate([prep.features_of(frame, "f", dtype, first_row=first, strict=strict, unseen=unseen) for first, frame, _ in chunks])
        kept = {k: np.concatenate([c[2][k].to_numpy(dtype=object) for c in chunks]) for k in keep}
    except DataError as e:
        return str(e)
    return x, kept, unseen.message("f")


def compare(tmp_path, text: str | bytes, prep: Preprocessor, keep: list[str] = (), dtype: str = "float32", strict: bool = False):
    """Whether the plain reading took `text`; when it did, its result is pandas' exactly."""
    path = tmp_path / "in.csv"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    plain, stdin = plaincsv.read(path, prep, list(keep), dtype, strict=strict)
    assert stdin is None
    if plain is None:
        return False
    expected = by_pandas(path, prep, list(keep), dtype, strict)
    assert not isinstance(expected, str), expected  # taken only where pandas reads the rows without an error
    x, kept, warning = expected
    assert plain.x.dtype == x.dtype and plain.x.shape == x.shape and plain.x.tobytes() == x.tobytes()
    assert plain.x.flags.c_contiguous
    assert list(plain.kept) == list(kept) and all(plain.kept[k].tolist() == kept[k].tolist() for k in kept)
    assert plain.unseen.message("f") == warning
    return True


def categorical(**rules) -> Preprocessor:
    """A numeric feature `a`, and a categorical `c` with `rules` (fill, indicator, categories, other)."""
    a = numeric_column("a", fill=None)
    settings = {"kind": "categorical", "dtype": "str", "missing": "most_frequent", "fill_value": "", "scale": "none", "indicator": False}
    settings.update({"categories": ["2.5", "7", "Adelie", "Gentoo"], "other": [], "fill": None, **rules})
    c = Column(name="c", **settings)
    inputs = 1 + len(c.inputs())
    return Preprocessor(
        targets=["y"], task="classification", columns=[a, c], classes=["p", "q"],
        center=np.linspace(-0.5, 0.5, inputs), scale=np.linspace(0.5, 2.0, inputs),
    )


@pytest.mark.parametrize(
    "text, rules, keep",
    [
        ("a,b\n1,2\n3,4\n", {}, []),
        ("a,b\n1,2\n3,4", {}, []),  # no line end at the end
        ("b,a,c\n1.5,2,x y\n-3.25,+4,\n.5,5.,NA\n", {}, ["c"]),  # reordered, extra column, kept text as written
        ("a;b\n1;2\n3;4\n", {}, []),
        ("a\tb\tname\n1\t2\t=x\n", {}, ["name"]),
        ("a|b\n007|0.000001\n", {}, []),
        ("a,b\n1,\n2,NA\n3,nan\n4,NULL\n5,#N/A\n6,7\n", FILLED, []),  # missing-value spellings, filled, with the indicator
        ("a,b\n1,\n2,\n", FILLED, []),  # a column that is all missing
        ("a,b\n123456789012345,0.123456789012345\n", {}, []),  # 15 significant digits
        ("a,b\n0,0.0000000000000000000001\n", {}, []),  # 22 decimals
        ("a,b\n-1,-0.5\n", {}, []),
    ],
)
def test_plain_input_is_taken_and_reads_as_pandas_reads_it(tmp_path, text, rules, keep):
    assert compare(tmp_path, text, preprocessor(**rules), keep)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_iris_is_taken_in_either_dtype(tmp_path, dtype):
    prep = Preprocessor(
        targets=["species"], task="classification", classes=["a", "b", "c"],
        columns=[numeric_column(n, fill=None) for n in ["sepal_length", "sepal_width", "petal_length", "petal_width"]],
        center=np.array([5.8, 3.05, 3.76, 1.2]), scale=np.array([0.83, 0.43, 1.76, 0.76]),
    )
    assert compare(tmp_path, IRIS.read_bytes(), prep, ["species"], dtype)


@pytest.mark.parametrize(
    "text, rules, keep, why",
    [
        ('a,b\n"1",2\n', {}, [], "a quoted field"),
        ("a,b\r\n1,2\r\n", {}, [], "CRLF line ends"),
        ("a,b\n1,2\n\n3,4\n", {}, [], "a blank line"),
        ("a,b\n1,2\n  \n", {}, [], "a line of spaces"),
        ("a,b\n 1,2\n", {}, [], "a space before a number"),
        ("a,b\n1,2 \n", {}, [], "a space after a number"),
        ("a,b\n1,1e3\n", {}, [], "an exponent"),
        ("a,b\n1,inf\n", {}, [], "an infinity"),
        ("a,b\n1,-0\n", {}, [], "a negative zero"),
        ("a,b\n1,-0.0\n", {}, [], "a negative zero"),
        ("a,b\n1,1234567890123456\n", {}, [], "16 significant digits"),
        ("a,b\n1,0.00000000000000000000001\n", {}, [], "23 decimals"),
        ("a,b\n1,true\n", {}, [], "a true/false value"),
        ("a,b\n1,x\n", {}, [], "text in a numeric column: pandas' error"),
        ("a,b\n1,\n", {}, [], "a missing value without a fill: pandas' error"),
        ("a,b\n1,2,3\n", {}, [], "a record wider than the header"),
        ("a,b\n1\n", {}, [], "a record narrower than the header"),
        ("a,b,a\n1,2,3\n", {}, [], "duplicate names"),
        ("a,b,\n1,2,3\n", {}, [], "an empty name"),
        ("a,c\n1,2\n", {}, [], "a missing feature column"),
        ("a,b\n1,2\n", {}, ["z"], "a missing kept column"),
        ("a,b\n", {}, [], "no rows"),
        ("a,b\n1,٣\n", {}, [], "not ASCII"),
        ("a,b,c\n1,2,x\x00y\n", {}, [], "a NUL byte"),
        ("a b\n1 2\n", {}, [], "a delimiter auto does not detect"),
        ("a,b\n1,2\n" * 1, {"missing": "drop"}, [], None),  # taken: nothing is missing
    ],
)
def test_anything_else_is_declined(tmp_path, text, rules, keep, why):
    assert compare(tmp_path, text, preprocessor(**rules), keep) == (why is None)


@pytest.mark.parametrize(
    "cells, rules, taken",
    [
        (["Adelie", "Gentoo", "Adelie"], {}, True),
        (["Adelie", "7", "2.5", "Gentoo"], {}, True),  # numbers in a text column: labels as written
        (["Adelie", "7.0", "2.50", "007"], {}, True),  # ...so these are no known category (unseen)
        (["7", "007", "7.0", "+7", "2.5", "2.50"], {}, True),  # ...in whichever block
        (["7", "007", "7.0", "+7", "2.5", "2.50", " 7 ", "7e0", "Adelie"], {"form": "number"}, True),  # labels are the numbers'
        (["7", "1_000", "0x7", "inf", "-Infinity", "-0", "7-"], {"form": "number"}, True),  # ...and text that is none stays
        (["true", "TRUE", "True", "false", "FALSE", "False", "yes", "tRUE"], {"form": "bool"}, True),  # pandas' spellings
        (["7", "", "NA", "2.5"], {"fill": "Adelie"}, True),  # missing, filled
        (["7", "", "NA", "2.5"], {"fill": "Adelie", "indicator": True}, True),
        (["Adelie", "", "Chinstrap"], {"fill": "Gentoo", "indicator": True}, True),  # an unseen category
        (["Adelie", "Chinstrap", "Chinstrap", "Macaroni"], {"other": ["Chinstrap"]}, True),  # a rare one, in (other)
        (["", "", ""], {"fill": "Gentoo"}, True),  # all missing
        (["Adelie", "", "Chinstrap", ""], {"fill": "unk"}, True),  # missing, filled with a value the model never saw
        (["Adelie", " Gentoo", "Gentoo "], {}, True),  # spaces kept in text: unseen
        (["x-1", "Adelie"], {}, True),
        (["Adelie", ""], {}, False),  # missing without a fill: an error
        (["Adelie", "true"], {}, True),  # a truth value in a text column: as written
        (["True", "False"], {}, True),
        (["Adelie", "inf"], {}, True),
        (["7", "-Infinity", "1e3", " 5", "-0", "1_000"], {}, True),
    ],
)
def test_categorical_features_read_as_pandas_reads_them(tmp_path, cells, rules, taken):
    text = "a,c\n" + "".join(f"{i},{cell}\n" for i, cell in enumerate(cells))
    assert compare(tmp_path, text, categorical(**rules)) == taken


def test_with_strict_an_unseen_category_is_left_to_pandas(tmp_path):
    assert compare(tmp_path, "a,c\n1,Adelie\n", categorical(), strict=True)
    assert not compare(tmp_path, "a,c\n1,Chinstrap\n", categorical(), strict=True)


def test_category_labels_of_numbers_are_pandas_own():
    rng = random.Random(11)
    cells = [f"{rng.choice(['', '-', '+'])}{rng.randrange(10 ** rng.randrange(1, 8))}" + rng.choice(["", ".", ".0", f".{rng.randrange(10 ** 6)}"])
             for _ in range(2000)] + ["0.0000001", "123456789012345", "0.1", "100000000000000.5", "1.10", ".5"]
    cells += [" 7", "7 ", "1e3", "-0", "-0.0", "5.", "+.5", "1E-2", "-inf", "Infinity"]
    integers = [c for c in cells if "." not in c and "e" not in c.lower() and "inf" not in c.lower()] + ["99999999999999999999"]
    for rows in (cells, integers):  # a column of floats, and one of integers (exact past float64's 2**53, as pandas reads them)
        column = pd.read_csv(io.StringIO("v\n" + "\n".join(rows)))["v"]
        assert plaincsv.labels_of_cells(rows, "number") == labels_of(column).tolist()


def test_other_read_settings_are_declined(tmp_path):
    for read in (reading.ReadOptions(decimal=","), reading.ReadOptions(encoding="latin-1")):
        prep = preprocessor()
        prep.read = read
        assert not compare(tmp_path, "a;b\n1;2\n", prep)


def test_a_large_input_is_left_to_pandas_and_a_read_stdin_is_given_back_whole(tmp_path):
    big = b"a,b\n" + b"1,2\n" * (plaincsv.SMALL_BYTES // 4)
    assert len(big) > plaincsv.SMALL_BYTES
    path = tmp_path / "big.csv"
    path.write_bytes(big)
    assert plaincsv.read(path, preprocessor(), [], "float32") == (None, None)
    plain, rest = plaincsv.read("-", preprocessor(), [], "float32", stdin=io.BytesIO(big))
    assert plain is None and rest.read() == big
    plain, rest = plaincsv.read("-", preprocessor(), [], "float32", stdin=io.BytesIO(b"a,b\n1,2\n"))
    assert plain is not None and rest is None


def test_the_missing_value_spellings_are_pandas_own():
    from pandas._libs.parsers import STR_NA_VALUES

    assert set(NA_VALUES) == STR_NA_VALUES


def test_numbers_read_as_pandas_reads_them_in_integer_and_float_columns():
    rng = random.Random(7)
    cells = ["0", "+0", "00", "5.", ".5", "+.5", "-.5", "1.0", "0.1", "0.3", "2.675", "9007199254740993", "999999999999999"]
    for _ in range(3000):
        whole = str(rng.randrange(10 ** rng.randrange(1, 9)))
        decimals = "".join(rng.choice("0123456789") for _ in range(rng.randrange(0, 8)))  # at most 15 digits in all
        cells.append(rng.choice(["", "-", "+"]) + whole + ("." + decimals if decimals or rng.random() < 0.1 else ""))
    taken = [c for c in cells if plaincsv.number(c) is not None]
    assert len(taken) > 2950 and "9007199254740993" not in taken  # 16 digits: declined
    as_floats = pd.read_csv(io.StringIO("v\n" + "\n".join(taken + ["0.5"])))["v"].to_numpy()[:-1]
    assert as_floats.dtype == np.float64
    ours = np.array([plaincsv.number(c) for c in taken])
    assert ours.tobytes() == as_floats.tobytes()
    integers = [c for c in taken if "." not in c]
    as_integers = pd.read_csv(io.StringIO("v\n" + "\n".join(integers)))["v"]
    assert as_integers.dtype == np.int64
    assert np.array([plaincsv.number(c) for c in integers]).tobytes() == as_integers.to_numpy(dtype=np.float64).tobytes()


# --- through the command line: the same output, warnings and errors with and without the plain path ---


@pytest.fixture(scope="module")
def filled_run(tmp_path_factory):
    """An iris model whose features have a fill (the median) and a was-missing input each."""
    return fit_shipped(tmp_path_factory.mktemp("runs"), "iris", 3, "data.numeric.missing=median", "data.numeric.indicator=true")


IRIS_LINES = IRIS.read_text().splitlines()
CASES = {
    "plain": "\n".join(IRIS_LINES[:40]) + "\n",
    "reordered-extra": "id,petal_width,petal_length,sepal_width,sepal_length\n"
    + "".join(f"r{i},{line.split(',')[3]},{line.split(',')[2]},{line.split(',')[1]},{line.split(',')[0]}\n" for i, line in enumerate(IRIS_LINES[1:30])),
    "missing": IRIS_LINES[0] + "\n5.1,,1.4,0.2,setosa\nNA,3.0,1.4,0.2,setosa\n6.0,3.1,nan,1.8,virginica\n",
    "quoted": IRIS_LINES[0] + '\n"5.1","3.5","1.4","0.2","setosa"\n',
    "whitespace": IRIS_LINES[0] + "\n5.1, 3.5,1.4,0.2,setosa\n",
    "text": IRIS_LINES[0] + "\n5.1,big,1.4,0.2,setosa\n",
    "infinite": IRIS_LINES[0] + "\n5.1,inf,1.4,0.2,setosa\n",
    "integers": IRIS_LINES[0] + "\n5,3,1,0,setosa\n7,3,5,2,x\n",
    "crlf": "\r\n".join(IRIS_LINES[:5]) + "\r\n",
    "semicolons": "\n".join(line.replace(",", ";") for line in IRIS_LINES[:6]) + "\n",
    "missing-column": "sepal_length,sepal_width,petal_length\n5.1,3.5,1.4\n",
    "exponent": IRIS_LINES[0] + "\n5.1e0,3.5,1.4,2E-1,setosa\n",
    "empty": IRIS_LINES[0] + "\n",
    "empty-record": IRIS_LINES[0] + "\n5.1,3.5,1.4,0.2,setosa\n,,,,\n",  # a row of missing values, not a blank line
}


def predict_both(monkeypatch, tmp_path, run, text: str, *options: str):
    """The command's (exit code, stdout, stderr) with the plain path, and forced through pandas."""
    path = tmp_path / "input.csv"
    path.write_text(text)
    taken = []
    original = plaincsv.read

    def spy(*args, **kwargs):
        result = original(*args, **kwargs)
        taken.append(result[0] is not None)
        return result

    monkeypatch.setattr(plaincsv, "read", spy)
    with_plain = call_cli("predict", run, path, *options)
    monkeypatch.setattr(plaincsv, "read", lambda source, prep, keep, dtype, strict=False, stdin=None: (None, stdin))
    with_pandas = call_cli("predict", run, path, *options)
    return taken, [(r.returncode, r.stdout, r.stderr) for r in (with_plain, with_pandas)]


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("options", [(), ("--proba", "--keep", "species")], ids=["plain", "proba-keep"])
def test_predict_gives_the_same_with_and_without_the_plain_path(monkeypatch, tmp_path, filled_run, case, options):
    text = CASES[case]
    if "species" not in text.splitlines()[0]:
        options = tuple(o for o in options if o not in ("--keep", "species"))
    taken, (plain, pandas_only) = predict_both(monkeypatch, tmp_path, filled_run, text, *options)
    assert plain == pandas_only
    assert taken == [case in ("plain", "reordered-extra", "missing", "integers", "semicolons", "empty-record")]
    if case in ("plain", "missing", "empty-record"):
        assert plain[0] == 0 and len(plain[1].splitlines()) == len(text.splitlines())
    if case == "text":
        assert plain[0] == 3 and "'sepal_width' must be numeric" in plain[2]


def test_a_named_pipe_is_left_to_pandas_unread(tmp_path):
    # reading it here would take rows the ordinary reader, opening it again, would never see
    fifo = tmp_path / "rows"
    os.mkfifo(fifo)
    assert plaincsv.read(fifo, preprocessor(), [], "float32") == (None, None)


@pytest.fixture(scope="module")
def penguins_run(tmp_path_factory):
    """Text columns one-hot encoded, year declared categorical (integer-looking labels), missing values filled."""
    return fit_shipped(tmp_path_factory.mktemp("runs"), "penguins", 3)


PENGUINS_LINES = (ROOT / "datasets" / "penguins.csv").read_text().splitlines()
PENGUINS = {
    "whole": "\n".join(PENGUINS_LINES) + "\n",  # with its rows of missing measurements and sex
    "unseen": "\n".join(line.replace("Torgersen", "Atlantis").replace(",2009", ",2010") for line in PENGUINS_LINES[:60]) + "\n",
    "year-as-float": "\n".join(line.replace(",2007", ",2007.0") for line in PENGUINS_LINES[:30]) + "\n",
    "year-as-text": "\n".join(PENGUINS_LINES[:30]) + "\nAdelie,Biscoe,39,18,190,3500,male,recent\n",
    "sex-spelled": PENGUINS_LINES[0] + "\nAdelie,Dream,39,18,190,3500,MALE,2008\nAdelie,Dream,39,18,190,3500,true,2008\n",
    "quoted": PENGUINS_LINES[0] + '\nAdelie,"Dream",39,18,190,3500,male,2008\n',
    "numbers-in-text": PENGUINS_LINES[0] + "\nAdelie,7,39,18,190,3500,female,2008\nAdelie,Dream,39,18,190,3500,1,2008\n",
}


@pytest.mark.parametrize("case", list(PENGUINS))
@pytest.mark.parametrize("options", [(), ("--strict",), ("--proba", "--keep", "island", "--format", "jsonl")], ids=["plain", "strict", "proba-jsonl"])
def test_categorical_predictions_are_the_same_with_and_without_the_plain_path(monkeypatch, tmp_path, penguins_run, case, options):
    taken, (plain, pandas_only) = predict_both(monkeypatch, tmp_path, penguins_run, PENGUINS[case], *options)
    assert plain == pandas_only
    unseen = case in ("unseen", "year-as-text", "sex-spelled", "numbers-in-text")  # 2007.0 is 2007: a number
    assert taken == [case != "quoted" and not (unseen and options == ("--strict",))]
    if case == "unseen" and not options:
        assert plain[0] == 0 and "values in categorical columns the model never saw" in plain[2] and "'Atlantis'" in plain[2]
