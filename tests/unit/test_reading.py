"""Reading tables: delimiters, encodings, gzip, Parquet, stdin, and blocks that add up to the whole."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

from bptrain.data.reading import (
    MAX_LINE_BYTES,
    ReadOptions,
    check_widths,
    detect_delimiter,
    frame_chunks,
    line_ends,
    read_table,
    record_chunks,
    widths_agree,
)
from bptrain.data import reading
from bptrain.errors import ConfigError, DataError
from conftest import ROOT

ROWS = "".join(f"{i},{i * 0.5},{'ab'[i % 2]}\n" for i in range(10))
CSV = ("x,y,label\n" + ROWS).encode()


def read_csv_chunks(source, block_bytes, *, stdin=None, text=()):
    """The frames streaming predict reads, in blocks of about `block_bytes` (`text`: the columns read as text)."""
    return [frame for _, frame, _ in frame_chunks(source, None, [], stdin=stdin, block_bytes=block_bytes, text=text)]


@pytest.mark.parametrize(
    "text, delimiter",
    [
        ("a,b,c\n1,2,3\n", ","),
        ("a;b;c\n1;2,5;3\n", ";"),  # decimal commas inside semicolon-separated fields
        ("a\tb\n1\t2\n", "\t"),
        ("a|b\n1|2\n", "|"),
        ('a,b\n"x;y;z",2\n', ","),  # a quoted field full of semicolons
        ("single\n1\n2\n", ","),  # one column: nothing to detect, the default
        ("a;b\n1;2\n3;4;5\n", ","),  # no candidate is consistent on every line: the default
    ],
)
def test_delimiter_detection(text, delimiter):
    assert detect_delimiter(text) == delimiter


def test_gzip_stdin_and_file_read_the_same(tmp_path):
    (tmp_path / "d.csv").write_bytes(CSV)
    (tmp_path / "d.csv.gz").write_bytes(gzip.compress(CSV))
    plain = read_table(tmp_path / "d.csv")
    assert plain.shape == (10, 3) and plain["label"].tolist() == list("ab" * 5)
    pd.testing.assert_frame_equal(read_table(tmp_path / "d.csv.gz"), plain)
    pd.testing.assert_frame_equal(read_table("-", stdin=io.BytesIO(gzip.compress(CSV))), plain)


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


@pytest.mark.parametrize("gzipped", [False, True])
@pytest.mark.parametrize("block_bytes", [1, 7, 40, 1 << 20])
def test_chunks_add_up_to_the_whole_and_number_their_rows(tmp_path, block_bytes, gzipped):
    path = tmp_path / ("d.csv.gz" if gzipped else "d.csv")
    path.write_bytes(gzip.compress(CSV) if gzipped else CSV)
    chunks = read_csv_chunks(path, block_bytes)
    sizes = [len(c) for c in chunks]
    assert sum(sizes) == 10 and (len(chunks) == 1 if block_bytes > len(CSV) else len(chunks) > 1)
    assert [c.index[0] for c in chunks] == [sum(sizes[:i]) for i in range(len(sizes))]
    pd.testing.assert_frame_equal(pd.concat(chunks), read_table(tmp_path / path.name))


def test_chunks_from_stdin_with_a_sample_shorter_than_the_file(monkeypatch):
    import bptrain.data.reading as reading

    monkeypatch.setattr(reading, "SAMPLE_BYTES", 16)  # the detection sample ends mid-file
    text = ("a;b\n" + "".join(f"{i};{i % 3}\n" for i in range(100))).encode()
    chunks = read_csv_chunks("-", 7, stdin=io.BytesIO(text))
    whole = pd.concat(chunks)
    assert whole.columns.tolist() == ["a", "b"] and whole["a"].tolist() == list(range(100))


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "<stdin>: the file is empty; a CSV file needs a header line and rows"),
        (b"a,b\n", "<stdin>: has a header but no rows"),
        (b"a,b\n1,2\n3,4,5\n", "<stdin>: line 3 has 3 fields, but the header has 2; check the delimiter and the quoting on that line"),
        (b"a,b\n1,2,3\n4,5\n", "<stdin>: line 2 has 3 fields, but the header has 2; check the delimiter and the quoting on that line"),
        (b"a,b\n1,2,\n4,5,\n", "<stdin>: line 2 has 3 fields, but the header has 2; check the delimiter and the quoting on that line"),
        (b"a,b,c\n1,2,3\n\n4,5\n", "<stdin>: line 4 has 2 fields, but the header has 3; check the delimiter and the quoting on that line"),
        (b'a,b,c\n1,"x\ny",3\n4,"z"\n', "<stdin>: line 4 has 2 fields, but the header has 3; check the delimiter and the quoting on that line"),
        (b"a,b\r\n1,2\r\n3\r\n", "<stdin>: line 3 has 1 field, but the header has 2; check the delimiter and the quoting on that line"),
        (b"a,b\r1,2,3\r4,5\r", "<stdin>: line 2 has 3 fields, but the header has 2; check the delimiter and the quoting on that line"),
        (b"a,b\r1,2\r\r3\r", "<stdin>: line 4 has 1 field, but the header has 2; check the delimiter and the quoting on that line"),
        (b"a,b\n1,2\n3,4\r5,6,7\n", "<stdin>: line 4 has 3 fields, but the header has 2; check the delimiter and the quoting on that line"),
        (b"a,a\n1,2\n", "<stdin>: duplicate column names: a. Rename them so each is unique"),
        (gzip.compress(b"a,b\n1,2\n")[:-6], "<stdin>: a damaged gzip file (Compressed file ended before the end-of-stream marker was reached)"),
    ],
    ids=[
        "empty", "header-only", "ragged", "extra-first", "trailing-delimiter", "short", "short-after-quoted", "short-crlf",
        "extra-old-mac", "short-old-mac", "extra-after-a-lone-cr", "duplicates", "damaged-gzip",
    ],
)
@pytest.mark.parametrize("block_bytes", [2, 1 << 20])
def test_chunked_reading_fails_as_whole_reading_does(data, message, block_bytes):
    for read in (lambda: read_table("-", stdin=io.BytesIO(data)), lambda: read_csv_chunks("-", block_bytes, stdin=io.BytesIO(data))):
        with pytest.raises(DataError) as info:
            read()
        assert str(info.value) == message


def test_widths_agree_only_where_check_widths_finds_no_line_of_another_width():
    """The byte count is a shortcut: where it says the widths agree, the text check must agree, and
    on plain files it must say so (or the shortcut is never taken)."""
    rng = np.random.default_rng(0)
    # U+2C2C and U+0A2C: characters whose UTF-16 bytes hold a comma's and a line end's
    pieces = ["1", "2.5", "", "ab", "é", " ", "\r", ",", ";", "\t", "\n", "\n\n", '"x,y"', "\u00ff", "\ufeff", "\u2c2c", "\u0a2c"]
    agreed = 0
    for _ in range(3000):
        text = "a,b,c\n" + "".join(rng.choice(pieces, size=rng.integers(0, 30)))
        for codec, delimiter in (("utf-8", ","), ("utf-8-sig", ","), ("latin-1", ","), ("cp1252", ";"), ("utf-16", ","), ("utf-16-le", ","), ("utf-8", "\t")):
            try:
                data = text.encode(codec)
            except UnicodeEncodeError:
                continue
            if widths_agree(data, delimiter, codec):
                agreed += 1
                check_widths("x", data.decode(codec), delimiter)  # raises DataError if a line's width differs
    plain = "".join(f"{i},{i / 3},{'ab'[i % 2]}\r\n" for i in range(1000))
    for codec in ("utf-8", "utf-8-sig", "latin-1", "cp1252"):
        assert widths_agree(("a,b,c\r\n" + plain).encode(codec), ",", codec)
        assert widths_agree(("a,b,c\r\n" + plain).encode(codec)[:-2], ",", codec)  # the last line without its line end
    assert not widths_agree(("a,b,c\n" + plain).encode("utf-16"), ",", "utf-16")  # its bytes are no plain count
    assert agreed > 1000
    assert line_ends(b"a\nb\r\n\n") == 3 and line_ends(b"") == 0 and line_ends(b"a\rb\r\nc\r") == 3


@pytest.mark.parametrize("block_bytes", [2, 1 << 20])
def test_old_mac_line_ends_stream_as_the_whole_file_reads(block_bytes):
    # "\r" alone ends each line: pandas reads the rows, and the blocks, cut at "\n", had found none
    data = b'x,note\r1,"a\rb"\r2,c\r'
    for source, stdin in (("-", io.BytesIO(data)), ("-", gzip.GzipFile(fileobj=io.BytesIO(gzip.compress(data))))):
        ((first, frame, kept),) = frame_chunks(source, ["x"], ["note"], stdin=stdin, block_bytes=block_bytes)
        assert (first, frame["x"].tolist(), kept["note"].tolist()) == (0, [1, 2], ["a\rb", "c"])
    pd.testing.assert_frame_equal(read_csv_chunks("-", block_bytes, stdin=io.BytesIO(data))[0], read_table("-", stdin=io.BytesIO(data)))
    with pytest.raises(DataError, match="^<stdin>: has a header but no rows$"):
        read_csv_chunks("-", block_bytes, stdin=io.BytesIO(b"x,note\r"))


def test_old_mac_line_ends_past_the_line_limit_say_so_and_how_to_convert():
    # every line ends in "\r" alone: to the line limit, which counts "\n", the input is one line
    data = b"a,b\r" + b"1,2\r" * (MAX_LINE_BYTES // 4 + 1)
    expected = (
        "<stdin>: line 1 is longer than 8 MiB, the longest line bptrain reads: the lines end in \\r alone (old Mac line ends), "
        "read only in files of up to that size; convert them, e.g. tr '\\r' '\\n' < in.csv > out.csv"
    )
    for read in (lambda: read_table("-", stdin=io.BytesIO(data)), lambda: read_csv_chunks("-", 1 << 20, stdin=io.BytesIO(data))):
        with pytest.raises(DataError) as info:
            read()
        assert str(info.value) == expected


def test_encoding_and_decimal_mark_options():
    data = "name;price\ncafé;2,5\nthé;1,25\n".encode("cp1252")
    frame = read_table("-", stdin=io.BytesIO(data), options=ReadOptions(encoding="cp1252", decimal=","))
    assert frame.to_dict("list") == {"name": ["café", "thé"], "price": [2.5, 1.25]}
    with pytest.raises(DataError) as info:
        read_table("-", stdin=io.BytesIO(data))
    assert str(info.value) == (
        "<stdin>: not utf-8 text: byte 0xe9 on line 2 (invalid continuation byte); set data.read.encoding to the file's encoding, e.g. latin-1"
    )


@pytest.mark.parametrize("big", ["999999999999999999999999999999", "18446744073709551615", "-99999999999999999999", "12"])
@pytest.mark.parametrize("text", ["", "x"])
@pytest.mark.parametrize("block_bytes", [None, 24])
@pytest.mark.parametrize("as_text", [(), ("b", "c")], ids=["inferred", "as-text"])
def test_missing_value_spellings_are_missing_beside_a_whole_number_past_64_bits(big, text, block_bytes, as_text, tmp_path):
    path = tmp_path / "d.csv"
    path.write_text(f"a,b,c\n1,{big},x\n2,,NA\n3,NA,\n4,nan,null\n5,None,7\n6,{text},8\n", encoding="utf-8")
    frame = read_table(path, text=as_text) if block_bytes is None else pd.concat(read_csv_chunks(path, block_bytes, text=as_text))
    assert frame["b"].isna().tolist() == [False, True, True, True, True, not text]  # as pandas reads them without the big number
    assert frame["c"].isna().tolist() == [False, True, True, True, False, False]
    assert str(frame["b"].iloc[0]).removesuffix(".0") == big


def test_a_byte_order_mark_is_not_part_of_the_first_column_name():
    frame = read_table("-", stdin=io.BytesIO(b"\xef\xbb\xbf" + CSV))
    assert frame.columns.tolist() == ["x", "y", "label"]
    chunk = read_csv_chunks("-", 4, stdin=io.BytesIO(b"\xef\xbb\xbf" + CSV))[0]
    assert chunk.columns.tolist() == ["x", "y", "label"]


def test_parquet_needs_the_optional_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if pyarrow were not installed
    with pytest.raises(ConfigError) as info:
        read_table("-", stdin=io.BytesIO(b"PAR1 and the rest"))
    assert str(info.value) == "<stdin>: reading Parquet files needs pyarrow, the optional extra 'parquet': pip install 'bptrain[parquet]'"


def test_parquet_files_read_like_csv(tmp_path):
    frame = pd.DataFrame({"x": np.arange(10), "y": np.arange(10) * 0.5, "label": pd.Categorical(list("ab" * 5))})
    frame.to_parquet(tmp_path / "d.parquet")
    read = read_table(tmp_path / "d.parquet")
    assert read["x"].tolist() == list(range(10)) and read["label"].astype(str).tolist() == list("ab" * 5)
    (chunk,) = read_csv_chunks(tmp_path / "d.parquet", 4)  # Parquet is read whole
    pd.testing.assert_frame_equal(chunk, read)


def test_a_damaged_gzipped_parquet_file_is_a_damaged_gzip_file_for_both_readers():
    parquet = io.BytesIO()
    pd.DataFrame({"x": np.random.default_rng(0).random(20_000)}).to_parquet(parquet)
    data = gzip.compress(parquet.getvalue())[:-6]  # the detection sample reads; the rest does not
    for read in (lambda: read_table("-", stdin=io.BytesIO(data)), lambda: read_csv_chunks("-", 4, stdin=io.BytesIO(data))):
        with pytest.raises(DataError) as info:
            read()
        assert str(info.value) == "<stdin>: a damaged gzip file (Compressed file ended before the end-of-stream marker was reached)"


@pytest.mark.parametrize("extra, fits", [(0, True), (1, False)])
@pytest.mark.parametrize("line", [1, 2])
def test_a_line_of_the_limit_reads_and_one_byte_more_does_not(line, extra, fits):
    long = b"a" * (MAX_LINE_BYTES - 2 + extra)
    data = b"x," + long + b"\n1,2\n" if line == 1 else b"x,y\n1," + long + b"\n3,4\n"
    for read in (lambda: read_table("-", stdin=io.BytesIO(data)), lambda: pd.concat(read_csv_chunks("-", 1 << 20, stdin=io.BytesIO(data)))):
        if fits:
            assert len(read()) == (1 if line == 1 else 2)
            continue
        with pytest.raises(DataError) as info:
            read()
        assert str(info.value) == f"<stdin>: line {line} is longer than 8 MiB, the longest line bptrain reads; is this a CSV file with line ends?"


FAULTS = """
import resource, sys
from bptrain.data.columns import reuse_freed_memory
from bptrain.data.reading import frame_chunks
if sys.argv[2] == "reuse":
    reuse_freed_memory()
for _ in frame_chunks(sys.argv[1], None, []):  # a first pass: the buffers' sizes settle
    pass
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
rows = sum(len(frame) for _, frame, _ in frame_chunks(sys.argv[1], None, []))
print(rows, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_streamed_blocks_reuse_their_freed_buffers(tmp_path):
    """With reuse_freed_memory (streaming predict calls it), reading a file block by block touches
    fresh pages for a small part of the blocks, not for every block's buffers again (a 2 GiB pipe:
    1,410,000 page faults before, 28,600 after)."""
    big = tmp_path / "big.csv"
    big.write_text("x,y,note\n" + f"1.5,2,{'n' * 200}\n" * 400_000)  # 82 MB: twenty blocks, so the blocks' faults outweigh the reading's own
    faults = {}
    for how in ("default", "reuse"):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        done = subprocess.run([sys.executable, "-c", FAULTS, str(big), how], capture_output=True, text=True, check=True, env=env)
        rows, faults[how] = map(int, done.stdout.split())
        assert rows == 400_000
    assert faults["reuse"] * 5 < faults["default"], faults


def _items(count: int, fail_at: int | None = None):
    for i in range(count):
        if i == fail_at:
            raise DataError(f"item {i} unreadable")
        yield i


def test_read_ahead_works_on_the_next_item_while_the_caller_holds_the_current():
    main, started = threading.get_ident(), threading.Event()

    def work(i):
        assert threading.get_ident() != main
        if i == 1:
            started.set()
        return i * 10

    results = reading._ahead(_items(3), work)
    assert next(results) == 0
    assert started.wait(5)  # item 1's work ran while the caller held item 0's result
    assert list(results) == [10, 20]


@pytest.mark.parametrize("where", ["reading", "work"])
def test_read_ahead_gives_an_error_after_the_results_before_it(where):
    def work(i):
        if where == "work" and i == 2:
            raise DataError("item 2 unparsable")
        return i

    results = reading._ahead(_items(5, fail_at=2 if where == "reading" else None), work)
    assert [next(results), next(results)] == [0, 1]
    with pytest.raises(DataError, match="item 2 un"):
        next(results)


def test_read_ahead_stopped_early_leaves_no_thread_behind():
    before = threading.active_count()
    results = reading._ahead(_items(10), lambda i: time.sleep(0.05) or i)
    assert next(results) == 0 and threading.active_count() == before + 1
    results.close()  # the caller stops, as predict does when its reader closes the pipe
    assert threading.active_count() == before
