"""Streaming CSV: blocks end on record boundaries, whatever the quoting; output formats."""

import io
import json

import numpy as np
import pandas as pd
import pytest

from bptrain.streaming import Writer, escape_formula, record_chunks

TRICKY = (
    b'id,text,x\n'
    b'1,"plain",0.5\n'
    b'2,"a, comma",1.5\n'
    b'3,"two\nlines",2.5\n'
    b'4,"a ""quoted"" word",3.5\n'
    b'5,"three\n\nlines, and ""quotes""",4.5\n'
    b'6,last,5.5'  # no final line end
)


@pytest.mark.parametrize("block_bytes", [1, 2, 3, 7, 16, 64, 1 << 20])
def test_blocks_hold_whole_records_for_any_block_size(block_bytes):
    chunks = list(record_chunks(io.BytesIO(TRICKY), block_bytes))
    header = chunks[0][0]
    assert header == b"id,text,x\n" and chunks[0][1] == b""
    frames = [pd.read_csv(io.BytesIO(header + body)) for _, body in chunks[1:] if body.strip()]
    whole = pd.concat(frames, ignore_index=True)
    expected = pd.read_csv(io.BytesIO(TRICKY))
    pd.testing.assert_frame_equal(whole, expected)
    assert whole["text"].tolist() == ["plain", "a, comma", "two\nlines", 'a "quoted" word', 'three\n\nlines, and "quotes"', "last"]


def test_a_byte_order_mark_is_dropped_from_the_header():
    (header, _), (_, body) = record_chunks(io.BytesIO(b"\xef\xbb\xbfa,b\n1,2\n"))
    assert header == b"a,b\n" and body == b"1,2\n"


def test_an_empty_stream_has_no_chunks():
    assert list(record_chunks(io.BytesIO(b""))) == []


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
