"""Predict's output: CSV and JSON lines, numbers written exactly, formulas escaped on request."""

import csv
import io
import json

import numpy as np
import pytest

from bptrain.predictions import Writer, escape_formula


def test_csv_numbers_are_the_shortest_text_that_reads_back_exactly():
    out = io.StringIO()
    p = np.array([0.1, 1 / 3, 2.5e-8], dtype=np.float32)
    Writer(out, ["label", "p"]).write([np.array(["a,b", "c", "d"], dtype=object), p])
    lines = out.getvalue().splitlines()
    assert lines[0] == "label,p"
    assert lines[1:] == ['"a,b",0.1', "c,0.33333334", "d,2.5e-08"]
    assert np.array_equal(np.array([float(line.rsplit(",", 1)[1]) for line in lines[1:]], dtype=np.float32), p)


def test_jsonl_records_hold_numbers_and_text():
    out = io.StringIO()
    writer = Writer(out, ["prediction", "proba_x"], fmt="jsonl")
    writer.write([np.array(["x"], dtype=object), np.array([0.25], dtype=np.float32)])
    writer.write([np.array(["y"], dtype=object), np.array([0.75], dtype=np.float32)])
    assert [json.loads(line) for line in out.getvalue().splitlines()] == [
        {"prediction": "x", "proba_x": 0.25},
        {"prediction": "y", "proba_x": 0.75},
    ]


@pytest.mark.parametrize("text, safe", [("=1+1", "'=1+1"), ("+x", "'+x"), ("-2", "'-2"), ("@A", "'@A"), ("\tx", "'\tx"), ("ok", "ok"), ("", "")])
def test_formula_escaping(text, safe):
    assert escape_formula(text) == safe


def test_escaping_applies_to_text_only_when_asked():
    out = io.StringIO()
    Writer(out, ["id"], escape=True).write([np.array(["=cmd()"], dtype=object)])
    assert out.getvalue() == "id\n'=cmd()\n"
    raw = io.StringIO()
    Writer(raw, ["id"]).write([np.array(["=cmd()"], dtype=object)])
    assert raw.getvalue() == "id\n=cmd()\n"


TRICKY_TEXT = ["", "a,b", 'q"x', "line\nbreak", "cr\rx", " sp ", "=1+1", "nan", "é", "\t", "semi;colon", '"quoted"']


@pytest.mark.parametrize("escape", [False, True])
def test_csv_is_what_pandas_to_csv_writes(escape):
    # the writer used pandas' DataFrame.to_csv; it writes the same bytes without pandas
    import pandas as pd

    tricky = [t for t in TRICKY_TEXT if "\r" not in t]  # pandas leaves a "\r" unquoted; the writer quotes it (below)
    labels = np.array(tricky, dtype=object)
    p = np.linspace(0, 1, len(tricky), dtype=np.float32)
    p[3] = np.nan
    flags = (np.arange(len(tricky)) % 2).astype(np.int64)
    columns = [labels, p, flags]
    header = ["kept, with a comma", "proba_x", "prediction_y"]
    out = io.StringIO()
    writer = Writer(out, header, escape=escape)
    writer.write(columns)
    writer.write([c[:3] for c in columns])
    expected = io.StringIO()
    for i, chunk in enumerate([columns, [c[:3] for c in columns]]):
        text = [np.array([escape_formula(v) for v in chunk[0]], dtype=object) if escape else chunk[0], chunk[1].astype(str), chunk[2]]
        pd.DataFrame(dict(zip(header, text)), columns=header).to_csv(expected, index=False, header=i == 0, lineterminator="\n")
    assert out.getvalue() == expected.getvalue()


def test_a_carriage_return_in_a_cell_quotes_its_row_so_it_reads_back_as_one():
    # the csv module's minimal quoting (and pandas' to_csv) leaves a lone "\r" bare: a line end to readers
    import pandas as pd

    out = io.StringIO()
    writer = Writer(out, ["note", "prediction", "proba_x"])
    writer.write([np.array(["a\rb", "c", "\r"], dtype=object), np.array(["x", "y\r", "x"], dtype=object), np.array([0.5, 0.25, 1], np.float32)])
    writer.write([np.array(["d"], dtype=object), np.array(["x"], dtype=object), np.array([0.75], np.float32)])
    assert out.getvalue() == 'note,prediction,proba_x\n"a\rb","x","0.5"\n"c","y\r","0.25"\n"\r","x","1.0"\nd,x,0.75\n'
    back = pd.read_csv(io.StringIO(out.getvalue()), dtype=str, keep_default_na=False)
    assert back.values.tolist() == [["a\rb", "x", "0.5"], ["c", "y\r", "0.25"], ["\r", "x", "1.0"], ["d", "x", "0.75"]]
    assert list(csv.reader(io.StringIO(out.getvalue(), newline="")))[1:] == back.values.tolist()


def test_jsonl_is_what_pandas_records_give():
    import pandas as pd

    labels = np.array(TRICKY_TEXT, dtype=object)
    p = np.linspace(0, 1, len(TRICKY_TEXT), dtype=np.float32)
    flags = (np.arange(len(TRICKY_TEXT)) % 2).astype(np.int64)
    out = io.StringIO()
    Writer(out, ["k", "p", "f"], fmt="jsonl").write([labels, p, flags])
    frame = pd.DataFrame({"k": labels, "p": [float(v) for v in p.astype(str)], "f": flags}, columns=["k", "p", "f"])
    assert out.getvalue() == "".join(json.dumps(r, allow_nan=False) + "\n" for r in frame.to_dict(orient="records"))
