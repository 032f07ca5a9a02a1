"""Predict's output: CSV and JSON lines, numbers written exactly, formulas escaped on request."""

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
