"""The fast CSV path (bptrain.data.fastcsv): taken for plain numeric files, and giving exactly the frame or the error of the ordinary reader on every file, tricky or bad."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from bptrain.data import fastcsv, reading
from bptrain.data.reading import ReadOptions, read_table
from bptrain.errors import BptrainError

BAD = Path(__file__).resolve().parent.parent / "data" / "bad"

TRICKY = {
    "plain.csv": b"a,b,label\n1.5,2,0\n-3.25,4,1\n0.001,6,0\n",
    "ints_with_gaps.csv": b"a,b\n1,2\n,3\n4,\n",
    "na_spellings.csv": b"a,b\n1,NA\nnan,2\nNULL,None\n<NA>,n/a\n#N/A,-nan\n3,4\n",
    "inf.csv": b"a,b\n1,inf\n2,3\n",
    "upper_nan.csv": b"a,b\n1,NAN\n2,3\n",
    "infinity_word.csv": b"a,b\n1,Infinity\n2,-inf\n",
    "long_digits.csv": b"a,b\n0.12345678901234567,1\n123456789012345678,2\n",
    "exponents.csv": b"a,b\n1e-05,2E+10\n3.5e300,1e-320\n",
    "huge_exponent.csv": b"a,b\n1e999,1\n2,3\n",
    "int_overflow.csv": b"a,b\n99999999999999999999,1\n2,3\n",
    "uint64.csv": b"a,b\n18446744073709551615,1\n2,3\n",
    "crlf.csv": b"a,b\r\n1,2\r\n3,4\r\n",
    "lone_cr.csv": b"a,b\r1,2\r3,4\r",
    "blank_lines.csv": b"a,b\n1,2\n\n3,4\n\n",
    "whitespace_line.csv": b"a,b\n1,2\n   \n3,4\n",
    "spaces_in_numbers.csv": b"a,b\n 1,2\n3 ,4\n",
    "signs_and_zeros.csv": b"a,b\n+1,007\n-0,-0.0\n.5,5.\n",
    "quoted.csv": b'a,b\n"1",2\n3,"4"\n',
    "booleans.csv": b"a,b\ntrue,1\nFalse,0\n",
    "zero_one.csv": b"a,b\n1,0\n0,1\n",
    "text_column.csv": b"a,b\n1,x\n2,y\n",
    "number_then_text.csv": b"a,b\n1,2\n3,four\n",
    "empty_column.csv": b"a,b\n1,\n2,\n",
    "header_only.csv": b"a,b\n",
    "empty_name.csv": b"a,,c\n1,2,3\n",
    "duplicates.csv": b"a,a\n1,2\n",
    "ragged_long.csv": b"a,b\n1,2\n3,4,5\n",
    "ragged_short.csv": b"a,b\n1,2\n3\n",
    "trailing_delimiter.csv": b"a,b\n1,2,\n3,4,\n",
    "bom.csv": b"\xef\xbb\xbfa,b\n1,2\n",
    "latin1_value.csv": b"a,b\n1,2\n3,\xe9\n",
    "latin1_name.csv": b"a,\xe9\n1,2\n",
    "utf8_name.csv": "a,größe\n1,2\n".encode(),
    "semicolons.csv": b"a;b;c\n1;2;3\n4;5;6\n",
    "tabs.csv": b"a\tb\n1\t2\n",
    "one_column.csv": b"a\n1\n2\n",
    "dates.csv": b"a,b\n2020-01-01,1\n2020-01-02,2\n",
    "no_final_newline.csv": b"a,b\n1,2\n3,4",
    "leading_blank_line.csv": b"\na,b\n1,2\n",
    "mixed_int_float.csv": b"a,b\n1,2\n2.5,3\n",
}


def _read(path: Path, fast: bool, monkeypatch, options: ReadOptions = reading.DEFAULT):
    """The frame read_table gives (or the error it raises), with the fast path allowed or not."""
    with monkeypatch.context() as m:
        if not fast:
            m.setattr(fastcsv, "available", lambda: False)
        try:
            return read_table(path, options=options)
        except BptrainError as e:
            return (type(e).__name__, str(e))


def _assert_same(fast, ordinary) -> None:
    if isinstance(ordinary, tuple) or isinstance(fast, tuple):
        assert fast == ordinary
        return
    pd.testing.assert_frame_equal(fast, ordinary, check_exact=True)
    for name in ordinary.columns:  # numbers bit for bit, the sign of zero included
        if pd.api.types.is_numeric_dtype(ordinary[name]):
            assert fast[name].to_numpy().tobytes() == ordinary[name].to_numpy().tobytes(), name


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_fast_path_reads_tricky_files_as_the_ordinary_reader(name, tmp_path, monkeypatch):
    path = tmp_path / name
    path.write_bytes(TRICKY[name])
    _assert_same(_read(path, True, monkeypatch), _read(path, False, monkeypatch))


@pytest.mark.parametrize("path", sorted(BAD.glob("*.csv")), ids=lambda p: p.name)
def test_fast_path_reads_the_bad_data_corpus_as_the_ordinary_reader(path, monkeypatch):
    _assert_same(_read(path, True, monkeypatch), _read(path, False, monkeypatch))


@pytest.mark.parametrize("options", [ReadOptions(delimiter=";"), ReadOptions(decimal=","), ReadOptions(encoding="latin-1")])
def test_fast_path_keeps_the_read_settings(options, tmp_path, monkeypatch):
    path = tmp_path / "data.csv"
    path.write_bytes(b"a;b\n1,5;2\n3;4\n")
    _assert_same(_read(path, True, monkeypatch, options), _read(path, False, monkeypatch, options))


CELLS = st.sampled_from(
    ["0", "1", "-1", "2.5", "-0.0", "1e-05", "3E+2", "", "NA", "nan", "NaN", "null", "None", "inf", "NAN", "1e999",
     "12345678901234567890", "0.30000000000000004", "007", "+4", ".5", "x", "true", " 1", "1 "]
)


@st.composite
def numeric_files(draw) -> bytes:
    """Small CSV files that are mostly plain numbers, with the odd cell, blank line, ragged row or CRLF."""
    width = draw(st.integers(1, 4))
    rows = draw(st.lists(st.lists(CELLS, min_size=width, max_size=width), min_size=0, max_size=12))
    lines = [",".join(f"c{i}" for i in range(width))] + [",".join(row) for row in rows]
    if rows and draw(st.booleans()):
        at = draw(st.integers(1, len(lines) - 1))
        lines[at] = draw(st.sampled_from(["", lines[at] + ",9", "1"]))
    end = draw(st.sampled_from(["\n", "\r\n"]))
    return (end.join(lines) + draw(st.sampled_from([end, ""]))).encode()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=numeric_files())
def test_fast_path_reads_generated_files_as_the_ordinary_reader(data, tmp_path, monkeypatch):
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    _assert_same(_read(path, True, monkeypatch), _read(path, False, monkeypatch))


def _header_and_start(path: Path) -> tuple[list[str], int]:
    first = path.read_bytes().split(b"\n", 1)[0]
    return first.decode().split(","), len(first) + 1


def test_fast_path_is_taken_for_a_plain_numeric_file(tmp_path, monkeypatch):
    path = tmp_path / "plain.csv"
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.standard_normal((500, 5)).round(6), columns=list("abcde"))
    frame["label"] = rng.integers(0, 3, 500)
    frame.to_csv(path, index=False)
    header, start = _header_and_start(path)
    direct = fastcsv.read_numeric(path, header, start, ",", reading.MAX_LINE_BYTES)
    assert direct is not None
    taken = []
    monkeypatch.setattr(fastcsv, "read_numeric", lambda *a: taken.append(a) or direct)
    assert read_table(path) is direct
    assert len(taken) == 1
    pd.testing.assert_frame_equal(direct, pd.read_csv(path, index_col=False), check_exact=True)


@pytest.mark.parametrize("name", ["quoted.csv", "inf.csv", "text_column.csv", "ragged_long.csv", "latin1_value.csv", "lone_cr.csv"])
def test_fast_path_declines_what_it_cannot_be_sure_of(name, tmp_path):
    path = tmp_path / name
    path.write_bytes(TRICKY[name])
    header, start = _header_and_start(path)
    assert fastcsv.read_numeric(path, header, start, ",", reading.MAX_LINE_BYTES) is None


def test_fast_path_declines_a_line_over_the_limit(tmp_path):
    path = tmp_path / "long.csv"
    names = [f"c{i}" for i in range(60)]
    path.write_bytes((",".join(names) + "\n" + ",".join(["1"] * 60) + "\n").encode())  # a row of 119 bytes
    header, start = _header_and_start(path)
    assert fastcsv.read_numeric(path, header, start, ",", 118) is None
    assert fastcsv.read_numeric(path, header, start, ",", 119) is not None


def test_without_pyarrow_the_ordinary_reader_reads_the_file(tmp_path, monkeypatch):
    path = tmp_path / "plain.csv"
    path.write_bytes(TRICKY["plain.csv"])
    monkeypatch.setattr(fastcsv, "available", lambda: False)
    monkeypatch.setattr(fastcsv, "read_numeric", lambda *a: pytest.fail("the fast path ran without pyarrow"))
    assert read_table(path)["a"].tolist() == [1.5, -3.25, 0.001]


def _wide_file(rows: int, seed: int = 0, crlf: bool = False) -> tuple[bytes, list[str]]:
    """A plain numeric file of 150 float columns (three groups of them) and an integer label, with
    a missing value here and there, whole numbers, negative zeros and long digits."""
    rng = np.random.default_rng(seed)
    names = [f"f{j}" for j in range(150)] + ["label"]
    lines = [",".join(names)]
    for i in range(rows):
        cells = [repr(float(v)) if j % 7 else f"{v:.6g}" for j, v in enumerate(rng.standard_normal(150) * 10.0 ** (i % 5))]
        cells[i % 150] = "" if i % 11 == 3 else cells[i % 150]
        cells[(3 * i) % 150] = "-0.0" if i % 13 == 5 else cells[(3 * i) % 150]
        lines.append(",".join(cells + [str(int(rng.integers(0, 4)))]))
    end = "\r\n" if crlf else "\n"
    return (end.join(lines) + end).encode(), names


@pytest.mark.parametrize("chunk", [300, 4099, 1 << 22])
@pytest.mark.parametrize("crlf", [False, True])
def test_both_threads_read_a_wide_file_in_chunks_as_the_ordinary_reader(chunk, crlf, tmp_path, monkeypatch):
    data, names = _wide_file(120, crlf=crlf)
    path = tmp_path / "wide.csv"
    path.write_bytes(data)
    monkeypatch.setattr(fastcsv, "CHUNK_BYTES", chunk)  # 300 bytes: shorter than a line, so the buffer grows
    monkeypatch.setattr(fastcsv, "SAMPLE_BYTES", 8_000)  # types from the first rows only, as on a big file
    header, start = names, data.index(b"\n") + 1
    direct = fastcsv.read_numeric(path, header, start, ",", reading.MAX_LINE_BYTES)
    assert direct is not None and len(direct) == 120
    _assert_same(_read(path, True, monkeypatch), _read(path, False, monkeypatch))
    _assert_same(direct, _read(path, False, monkeypatch))


def test_blank_lines_in_the_first_thread_s_share_leave_no_gap(tmp_path, monkeypatch):
    data, names = _wide_file(40)
    lines = data.split(b"\n")
    data = b"\n".join(lines[:5] + [b"", b""] + lines[5:12] + [b""] + lines[12:])  # all in the first half
    path = tmp_path / "blank.csv"
    path.write_bytes(data)
    monkeypatch.setattr(fastcsv, "CHUNK_BYTES", 1000)
    monkeypatch.setattr(fastcsv, "SAMPLE_BYTES", 8_000)
    direct = fastcsv.read_numeric(path, names, data.index(b"\n") + 1, ",", reading.MAX_LINE_BYTES)
    assert direct is not None and len(direct) == 40
    _assert_same(direct, _read(path, False, monkeypatch))


def test_an_integer_column_with_a_gap_after_the_sample_becomes_float_as_in_pandas(tmp_path, monkeypatch):
    rows = [f"{i}.5,{i % 3}" for i in range(300)]
    rows[250] = "250.5,"
    path = tmp_path / "late_gap.csv"
    path.write_bytes(("a,b\n" + "\n".join(rows) + "\n").encode())
    monkeypatch.setattr(fastcsv, "CHUNK_BYTES", 256)
    monkeypatch.setattr(fastcsv, "SAMPLE_BYTES", 256)
    direct = fastcsv.read_numeric(path, ["a", "b"], 4, ",", reading.MAX_LINE_BYTES)
    assert direct is not None and direct["b"].dtype == np.float64 and np.isnan(direct["b"][250])
    _assert_same(direct, _read(path, False, monkeypatch))


@pytest.mark.parametrize("late", ["inf", "NAN", "x", "1,2", '"3"', "4\r5"])
def test_a_value_after_the_sample_that_pandas_reads_otherwise_leaves_the_file_to_it(late, tmp_path, monkeypatch):
    rows = [f"{i}.25,{i}" for i in range(400)]
    rows[390] = f"{late},1"  # in the second thread's share
    path = tmp_path / "late.csv"
    path.write_bytes(("a,b\n" + "\n".join(rows) + "\n").encode())
    monkeypatch.setattr(fastcsv, "CHUNK_BYTES", 512)
    monkeypatch.setattr(fastcsv, "SAMPLE_BYTES", 512)
    assert fastcsv.read_numeric(path, ["a", "b"], 4, ",", reading.MAX_LINE_BYTES) is None
    _assert_same(_read(path, True, monkeypatch), _read(path, False, monkeypatch))


def test_the_threads_have_ended_when_the_frame_is_returned(tmp_path):
    import threading

    data, names = _wide_file(50)
    path = tmp_path / "wide.csv"
    path.write_bytes(data)
    before = set(threading.enumerate())
    assert fastcsv.read_numeric(path, names, data.index(b"\n") + 1, ",", reading.MAX_LINE_BYTES) is not None
    assert set(threading.enumerate()) == before


def test_every_missing_value_spelling_but_the_empty_one_holds_an_n():
    assert all("N" in v or "n" in v for v in fastcsv.NA_VALUES if v)


@pytest.mark.parametrize("chunk, spelled", [
    (b"1.5,-2,3e-05\n+4,5E+2,.5\n", False),
    (b"1.5,-2\r\n3,4\r\n", False),
    (b",2\n3,,4,\n5,", False),  # empty cells: the one spelling looked for in every chunk
    (b"1,NA\n", True),
    (b"1,nan\n", True),
    (b"1,#N/A\n", True),
    (b"1,<NA>\n", True),
    (b"1,None\n", True),
])
def test_a_chunk_that_may_spell_out_a_missing_value_is_told_from_one_that_cannot(chunk, spelled, tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(chunk)
    assert [flag for _, flag in fastcsv._whole_lines(path, 0, len(chunk))] == [spelled]


def test_chunks_with_and_without_gaps_and_spellings_read_as_the_ordinary_reader(tmp_path, monkeypatch):
    rows = [f"{i}.5,{i % 7},-{i}e-3" for i in range(600)]
    rows[150] = ",1,2"
    rows[200] = "3,,4"
    rows[260] = "5,6,"
    rows[330] = "NA,7,nan"
    rows[420] = "8,9,NULL"
    rows[599] = "9,10,"  # the last line, without its line end
    path = tmp_path / "mixed.csv"
    path.write_bytes(("a,b,c\n" + "\n".join(rows)).encode())
    monkeypatch.setattr(fastcsv, "CHUNK_BYTES", 700)
    monkeypatch.setattr(fastcsv, "SAMPLE_BYTES", 700)
    seen = []
    parse = fastcsv._parse
    monkeypatch.setattr(fastcsv, "_parse", lambda data, names, p, convert: seen.append(tuple(convert.null_values)) or parse(data, names, p, convert))
    direct = fastcsv.read_numeric(path, ["a", "b", "c"], 6, ",", reading.MAX_LINE_BYTES)
    assert direct is not None and direct["b"].dtype == np.float64 and int(direct.isna().sum().sum()) == 7
    assert set(seen) == {("",), fastcsv.NA_VALUES}  # both ways of parsing a chunk were taken
    _assert_same(direct, _read(path, False, monkeypatch))


def test_the_parse_stops_early_when_pandas_reads_the_first_rows_otherwise(tmp_path, monkeypatch):
    data, names = _wide_file(3000)
    path = tmp_path / "wide.csv"
    path.write_bytes(data)
    monkeypatch.setattr(fastcsv, "CHUNK_BYTES", 2000)
    monkeypatch.setattr(fastcsv, "SAMPLE_BYTES", 8_000)
    monkeypatch.setattr(fastcsv, "_same_in_pandas", lambda *a: False)
    parsed = []
    parse = fastcsv._parse
    monkeypatch.setattr(fastcsv, "_parse", lambda *a: parsed.append(1) or parse(*a))
    assert fastcsv.read_numeric(path, names, data.index(b"\n") + 1, ",", reading.MAX_LINE_BYTES) is None
    chunks = len(data) // 2000
    assert len(parsed) < chunks / 2  # of about 1,000 chunks, the threads parsed only the first few


@pytest.mark.parametrize("split", ["{val: 0.2, test: 0.1}", "{val: 0.0, test: 0.0}"])
def test_the_split_of_a_fast_read_file_keeps_training_rows_in_its_own_columns_with_the_same_values(split, tmp_path, monkeypatch):
    from bptrain.config.loading import load_config
    from bptrain.data.splits import read_splits

    data, names = _wide_file(400)
    (tmp_path / "d.csv").write_bytes(data)
    (tmp_path / "c.yaml").write_text(f"data:\n  train: d.csv\n  target: label\n  split: {split}\n  numeric: {{missing: mean}}\n")
    config = load_config(tmp_path / "c.yaml")
    given = []
    own = fastcsv.own_columns
    monkeypatch.setattr(fastcsv, "own_columns", lambda frame: given.append(own(frame)) or given[-1])
    fast = read_splits(config.data, seed=4)
    assert len(given) == 1 and len(given[0]) == 150  # the float columns were handed over
    for name in names[:150]:
        assert np.shares_memory(fast.frames["train"][name].to_numpy(), given[0][name])
    with monkeypatch.context() as m:
        m.setattr(fastcsv, "available", lambda: False)
        ordinary = read_splits(config.data, seed=4)
    for part in ("train", "val", "test"):
        if ordinary.frames[part] is None:
            assert fast.frames[part] is None
        else:
            _assert_same(fast.frames[part], ordinary.frames[part])


def test_columns_are_handed_over_once_and_only_for_the_frame_read_numeric_made(tmp_path):
    data, names = _wide_file(50)
    path = tmp_path / "d.csv"
    path.write_bytes(data)
    frame = fastcsv.read_numeric(path, names, data.index(b"\n") + 1, ",", reading.MAX_LINE_BYTES)
    assert fastcsv.own_columns(frame.copy()) == {}
    assert set(fastcsv.own_columns(frame)) == set(names[:150])
    assert fastcsv.own_columns(frame) == {}
    other = fastcsv.read_numeric(path, names, data.index(b"\n") + 1, ",", reading.MAX_LINE_BYTES)
    del other  # its entry goes with it
    assert all(ref() is not None for ref, _ in fastcsv._OWN.values())


def test_a_group_whose_columns_are_all_dropped_is_not_held_for_the_split(tmp_path):
    import gc

    data, names = _wide_file(50)
    path = tmp_path / "d.csv"
    path.write_bytes(data)
    frame = fastcsv.read_numeric(path, names, data.index(b"\n") + 1, ",", reading.MAX_LINE_BYTES)
    for name in names[: fastcsv.GROUP_COLUMNS]:  # every column of the first group
        del frame[name]
    gc.collect()
    assert sorted(fastcsv.own_columns(frame)) == sorted(names[fastcsv.GROUP_COLUMNS : 150])


@pytest.mark.parametrize("values", [[3, -1, 2**62], [1, None, 7, None], [None], []])
@pytest.mark.parametrize("cut", [0, 1])
def test_an_integer_column_reaches_numpy_as_pandas_gets_it_from_pyarrow(values, cut):
    import pyarrow as pa

    column = pa.chunked_array([pa.array(values, pa.int64()), pa.array([5, 6], pa.int64())]).slice(cut)
    ours, theirs = fastcsv._integers(column), column.to_numpy()
    assert ours.dtype == theirs.dtype and ours.tobytes() == theirs.tobytes()


def test_the_parsing_threads_need_no_pandas(tmp_path):
    import subprocess
    import sys

    rows = [f"{i}.5,{i % 7},{i}" for i in range(500)]
    rows[300] = "1.5,,2"  # an integer column with a gap becomes float64, the other stays int64
    path = tmp_path / "ints.csv"
    path.write_bytes(("a,b,c\n" + "\n".join(rows) + "\n").encode())
    script = f"""
import sys
from pathlib import Path
import numpy as np
from bptrain.data import fastcsv
fastcsv.CHUNK_BYTES = 1024
reader = fastcsv._Reader.open(Path({str(path)!r}), ["a", "b", "c"], 6, ",", 1 << 20)
groups, rows, ints = reader._parse_all()
b, c = (np.concatenate([p.astype(np.float64) for p in ints[n]]) for n in "bc")
assert rows == 500 and np.isnan(b[300]) and np.nansum(b) == sum(i % 7 for i in range(500) if i != 300)
assert [p.dtype for p in ints["c"]] == [np.int64] * len(ints["c"]) and c.sum() == sum(range(500)) - 298
assert "pandas" not in sys.modules
print(len(ints["b"]))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 2  # several chunks on each thread
