"""Reading tables: CSV (any delimiter, encoding, quoting, gzip) or Parquet, file or stdin, whole or in blocks.

`read_table` returns a whole file as a DataFrame; `frame_chunks` yields it in frames of about
BLOCK_BYTES of whole records (`record_chunks` cuts the blocks; a quoted field may span lines), so
streaming predict's memory stays flat. Both detect gzip and Parquet by their first bytes, detect
the delimiter when asked (`auto`), hold every record to the header's number of fields and every
line to MAX_LINE_BYTES, and raise DataError with one clear line (file, line, what to do) for
anything they cannot read. Columns keep pandas' types, each guessed from all the rows parsed at
once (pandas' low_memory parsing guesses per piece of a file: one column could hold numbers from
one piece and text from another, with a DtypeWarning), but for the columns the caller names as
text (a trained model's categorical columns, whose cells it labels one by one); nothing is preprocessed. With pyarrow
installed, `read_table` reads a plain numeric CSV or Parquet file on disk through
bptrain.data.fastcsv or bptrain.data.fast_parquet, which give the same frame or decline.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import hashlib
import io
import os
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator, Sequence

import numpy as np

from bptrain import lazy
from bptrain.data import fast_parquet, fastcsv
from bptrain.errors import ConfigError, DataError, extra_needed
from bptrain.nn.options import did_you_mean

pd = lazy.module("pandas")  # imported on first use (bptrain.lazy): predict on a plain CSV file needs none of it

STDIN = "-"
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
BLOCK_BYTES = 1 << 22  # about 4 MB of input per chunk of a streamed read
BOM = b"\xef\xbb\xbf"
SAMPLE_BYTES = 1 << 16  # read to detect the format and the delimiter
DELIMITERS = (",", ";", "\t", "|")  # auto-detection candidates, preferred in this order on a tie
SAMPLE_ROWS = 50
MAX_LINE_BYTES = 8 << 20  # the longest line (the header too) and the longest record read
MAX_COLUMNS = 100_000
READ_BYTES = 1 << 20  # read at a time, so a line over the limit is caught within a block of it
csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))  # the csv module's own limit is 128 KiB

CONFIG_PATHS = "data paths are relative to the config file"
MAPPING_PATHS = "data paths of a config given as a mapping are relative to the current folder"  # bptrain.fit(dict)
COMMAND_LINE_PATHS = "paths on the command line are relative to the current folder"


@dataclass(frozen=True)
class ReadOptions:
    """How to read a CSV file: `delimiter` is `auto` or one character; `encoding` a Python codec
    name; `decimal` the decimal mark of numbers. `trained`: these are a trained model's rules
    (predict, evaluate), which no setting changes any more; not saved with the model."""

    delimiter: str = "auto"
    encoding: str = "utf-8"
    decimal: str = "."
    trained: bool = False

    def rules(self) -> dict[str, str]:
        """The reading rules, as a model file saves them."""
        return {"delimiter": self.delimiter, "encoding": self.encoding, "decimal": self.decimal}

    def other_encoding(self) -> str:
        """What to do about a file that is not `encoding` text."""
        if self.trained:
            return f"the model reads {self.encoding} text, as its training data was read: convert the file, e.g. iconv -f latin-1 -t {self.encoding}"
        return "set data.read.encoding to the file's encoding, e.g. latin-1"


DEFAULT = ReadOptions()


def source_name(source: Path | str) -> str:
    return "<stdin>" if str(source) == STDIN else str(source)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- whole files ------------------------------------------------------------------------------


def read_table(
    source: Path | str, *, stdin: IO[bytes] | None = None, options: ReadOptions = DEFAULT, paths: str = CONFIG_PATHS,
    name: str | None = None, text: Sequence[str] = (),
) -> pd.DataFrame:
    """A whole CSV or Parquet file (or `-` for stdin) as a DataFrame; DataError on anything unusable.

    `paths` says, in the message for a missing file, what a relative path is relative to; `name`
    names the input in messages (default: the path, or <stdin>). The CSV columns named in `text`
    are read as text, the cells as written (missing-value spellings still missing), whatever
    the other cells of the column hold: a trained model's categorical columns. Parquet columns
    named there keep their integers exactly (_exact_integers).
    """
    with opened(source, stdin=stdin, paths=paths, name=name) as (name, head, rest):
        if head[:4] == PARQUET_MAGIC:
            fast = fast_parquet.read_numeric(Path(source)) if str(source) != STDIN and os.path.isfile(source) else None
            if fast is None:
                return _parquet(name, head, rest, text)
            return _exact_integers(_checked(name, fast, header=None, rows=True), Path(source), text)
        fast = _fast_frame(name, source, head, options) if not text else None  # its numeric reading has no text columns
        if fast is not None:
            return fast
        data = _read_lines(name, head, rest)
    return _frame_of(name, data, options, text)


def _fast_frame(name: str, source: Path | str, head: bytes, options: ReadOptions) -> pd.DataFrame | None:
    """The frame of a plain numeric CSV file on disk, read by bptrain.data.fastcsv; None for
    anything else (stdin, gzip, another encoding or decimal mark, an unusual header), which
    `_frame_of` then reads, with its own checks and messages."""
    if str(source) == STDIN or options.decimal != "." or codec_of(options) != "utf-8-sig" or not fastcsv.available():
        return None
    if not os.path.isfile(source) or _starts_with(source, GZIP_MAGIC):
        return None
    body_start = record_end(head)
    delimiter = delimiter_of(name, head, options)
    try:
        head[:body_start].decode(codec_of(options))
        header = _header(head, delimiter, options)
        check_header(name, header)
    except (UnicodeDecodeError, DataError):
        return None
    if not body_start or len(delimiter) != 1:
        return None
    frame = fastcsv.read_numeric(Path(source), header, body_start, delimiter, MAX_LINE_BYTES)
    return None if frame is None else _checked(name, frame, header, rows=True)


def _starts_with(path: Path | str, magic: bytes) -> bool:
    with open(path, "rb") as f:
        return f.read(len(magic)) == magic


def _read_lines(name: str, head: bytes, rest: IO[bytes]) -> bytes:
    """`head` and the rest of the stream; DataError as soon as a line runs past MAX_LINE_BYTES."""
    parts = [head]
    line = len(head) - head.rfind(b"\n") - 1  # bytes since the last line end
    for block in iter(lambda: rest.read(READ_BYTES), b""):
        end = block.find(b"\n")
        if line + (end if end >= 0 else len(block)) > MAX_LINE_BYTES:
            raise too_long(name, sum(p.count(b"\n") for p in parts) + 1, old_mac=_old_mac_lines(head))
        line = len(block) - block.rfind(b"\n") - 1 if end >= 0 else line + len(block)
        parts.append(block)
    return b"".join(parts)


def too_long(name: str, line: int, quoted: bool = False, old_mac: bool = False) -> DataError:
    """The error for a line (or, `quoted`, a record spanning lines) longer than MAX_LINE_BYTES;
    `old_mac`: the input's lines end in a lone \\r, which the line limit counts as no line end."""
    limit = f"{MAX_LINE_BYTES >> 20} MiB"
    if old_mac:
        return DataError(
            f"{name}: line {line} is longer than {limit}, the longest line bptrain reads: the lines end in \\r alone "
            "(old Mac line ends), read only in files of up to that size; convert them, e.g. tr '\\r' '\\n' < in.csv > out.csv"
        )
    if quoted:
        return DataError(
            f"{name}: the record starting on line {line} runs past {limit}, the longest bptrain reads; "
            'is a quote (") left open on that line?'
        )
    return DataError(f"{name}: line {line} is longer than {limit}, the longest line bptrain reads; is this a CSV file with line ends?")


def _frame_of(name: str, data: bytes, options: ReadOptions, text_columns: Sequence[str] = ()) -> pd.DataFrame:
    text = _decoded(name, data, options)
    delimiter = delimiter_of(name, data, options)
    header = _header(data, delimiter, options)
    check_header(name, header)
    if not widths_agree(data, delimiter, codec_of(options)):
        check_widths(name, text, delimiter)
    dtype = as_text(text_columns, header)
    try:
        frame = pd.read_csv(
            io.BytesIO(data), sep=delimiter, encoding=codec_of(options), decimal=options.decimal, index_col=False, low_memory=False,
            dtype=dtype,
        )
    except Exception as e:  # pandas' parser errors are many types; each becomes one line
        raise _read_error(name, e, options) from None
    return _checked(name, _spelled_missing(frame, dtype), header, rows=True)


def _spelled_missing(frame: pd.DataFrame, dtype: dict[str, type] | None) -> pd.DataFrame:
    """`frame`, read by pandas from CSV with `dtype`, with every text cell that spells a missing value
    (fastcsv.NA_VALUES, the empty one included) missing. pandas makes them missing itself, except in a
    column whose type it infers that also holds a whole number past 64 bits: it then keeps every cell
    of the column as written. The columns `dtype` reads as text are left as pandas read them."""
    for name, kind in frame.dtypes.items():  # not frame[name] for every column: tens of microseconds each
        if name in (dtype or {}) or (isinstance(kind, np.dtype) and kind != object):
            continue
        if kind == object or pd.api.types.is_string_dtype(kind):
            column = frame[name]
            spelled = column.isin(fastcsv.NA_VALUES).to_numpy()
            if spelled.any():
                frame[name] = column.mask(spelled)
    return frame


def as_text(text: Sequence[str], header: list[str] | None) -> dict[str, type] | None:
    """pandas' `dtype` reading the columns named in `text` that the header has as text."""
    present = set(header or [])
    return {c: str for c in text if c in present} or None


def check_widths(name: str, text: str, delimiter: str, line_offset: int = 0) -> None:
    """DataError naming the first line whose record has more or fewer fields than the header.

    `text` starts with the header; its lines are numbered from `line_offset` + 1. Blank lines are
    skipped, as pandas skips them. pandas itself takes an extra field on the first row as an index
    and fills a short row with missing values, so the fields are counted here, for every reader.
    """
    if '"' in text:
        _check_quoted_widths(name, text, delimiter, line_offset)
        return
    lines = _lines(text)
    counts = [line.count(delimiter) for line in lines]
    if counts.count(counts[0]) == len(counts):
        return
    for number, (line, count) in enumerate(zip(lines, counts), 1):
        if count != counts[0] and (count or line.strip()):
            _wrong_width(name, line_offset + number, count + 1, counts[0] + 1)


def _lines(text: str) -> list[str]:
    """The lines of `text` as pandas' parser and the csv module end them: at "\r\n", "\n", or a "\r"
    alone (old Mac line ends); no empty last line after a final line end."""
    if "\r" not in text:
        return text.removesuffix("\n").split("\n")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return lines[:-1] if len(lines) > 1 and lines[-1] == "" else lines


BYTE_SAFE_CODECS = ("utf-8", "utf-8-sig", "ascii", "iso8859-1", "cp1252")  # a line end or an ASCII delimiter is one byte that no other character holds


def widths_agree(data: bytes, delimiter: str, codec: str) -> bool:
    """Whether every line of `data` (whole lines, the header first) holds as many delimiters as the
    first, counted in the bytes by numpy (4 MB of digits rows: 16 ms, against 24 ms for
    check_widths on the text; of iris rows with a long text column: 4 against 9 ms); False when
    they differ or this cannot tell (quotes, a codec whose characters may hold the delimiter's
    byte), for check_widths to find and name the line."""
    if len(delimiter) != 1 or not delimiter.isascii() or b'"' in data or codecs.lookup(codec).name not in BYTE_SAFE_CODECS:
        return False
    if _lone_crs(data):  # a "\r" alone ends a line too: check_widths counts those
        return False
    codes = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(codes == ord("\n"))
    if not len(codes) or codes[-1] != ord("\n"):
        ends = np.append(ends, len(codes))  # a last line without its line end
    counts = np.diff(np.searchsorted(np.flatnonzero(codes == ord(delimiter)), ends), prepend=0)
    return bool((counts == counts[0]).all())


def _check_quoted_widths(name: str, text: str, delimiter: str, line_offset: int) -> None:
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 1  # the line the next record starts on
    try:
        width = len(next(rows, []))
        start = rows.line_num + 1
        for row in rows:
            if len(row) != width and (len(row) > 1 or (row and row[0].strip())):
                _wrong_width(name, line_offset + start, len(row), width)
            start = rows.line_num + 1
    except csv.Error:  # a field over the limit: in practice, a quote left open
        raise too_long(name, line_offset + start, quoted=True) from None


def _wrong_width(name: str, line: int, fields: int, width: int) -> None:
    raise DataError(
        f"{name}: line {line} has {fields} field{'s' if fields != 1 else ''}, but the header has {width}; "
        "check the delimiter and the quoting on that line"
    )


def _decoded(name: str, data: bytes, options: ReadOptions) -> str:
    """`data` as text; DataError with the line and byte of the first byte that is not valid in the options' encoding."""
    encoding = options.encoding
    try:
        return data.decode(codec_of(options))
    except LookupError:
        raise ConfigError(f"data.read.encoding: unknown encoding {encoding!r}; use a Python codec name such as utf-8 or latin-1") from None
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(
            f"{name}: not {encoding} text: byte 0x{data[e.start]:02x} on line {line} ({e.reason}); {options.other_encoding()}"
        ) from None


# --- blocks, for streaming predict --------------------------------------------------------------


def record_chunks(handle: IO[bytes], block_bytes: int = BLOCK_BYTES, *, name: str = "<stdin>") -> Iterator[tuple[bytes, bytes]]:
    """(header record, a block of whole records of about `block_bytes`), reading `handle` lazily.

    The first pair has an empty block; a block may hold only blank lines. A block ends at a line
    end outside quotes (a quoted field may hold line ends); a record longer than MAX_LINE_BYTES is
    a DataError naming the line it starts on.
    """
    header, rest, line = b"", b"", 1
    for data in iter(lambda: handle.read(block_bytes), b""):
        rest += data
        end = record_end(rest)  # a record longer than a block starts in `rest`, if anywhere
        length = end - 1 if end else len(rest)
        if length > MAX_LINE_BYTES:
            raise too_long(name, line, quoted=0 <= rest.find(b"\n") < length, old_mac=_old_mac_lines(rest))
        if not end:
            continue
        cut = _last_record_end(rest)
        block, rest = rest[:cut], rest[cut:]
        if not header:
            end = record_end(block)
            header, block = block[:end].removeprefix(BOM), block[end:]
            line += header.count(b"\n")
            yield header, b""
        line += line_ends(block)
        if block:
            yield header, block
    if rest.strip():
        rest = rest if rest.endswith(b"\n") else rest + b"\n"
        if not header:
            yield rest.removeprefix(BOM), b""
        else:
            yield header, rest


def _last_record_end(data: bytes) -> int:
    """The offset just after the last line end in `data` outside quotes; 0 if there is none."""
    cut = data.rfind(b"\n") + 1
    if data.find(b'"', 0, cut) < 0:  # found at memchr's speed, where counting goes byte by byte
        return cut
    quotes = data.count(b'"', 0, cut)
    while cut and quotes % 2:
        before = data.rfind(b"\n", 0, cut - 1) + 1
        quotes -= data.count(b'"', before, cut)  # counted once per line: linear in the block
        cut = before
    return cut


def frame_chunks(
    source: Path | str,
    columns: list[str] | None,
    keep: list[str],
    *,
    stdin: IO[bytes] | None = None,
    options: ReadOptions = DEFAULT,
    block_bytes: int = BLOCK_BYTES,
    text: Sequence[str] = (),
) -> Iterator[tuple[int, pd.DataFrame, pd.DataFrame | None]]:
    """(index of the chunk's first data row, the chunk as a frame, the `keep` columns' raw text).

    CSV (any delimiter and encoding read_table reads, gzip too) is read in blocks; only
    `columns` are converted when the file has them all (otherwise, or when None, every column is,
    so the caller can name what is missing); those in `text` are read as text, as read_table reads them. Parquet, a binary format, is read whole. Paths are
    taken as given on the command line.
    """
    with opened(source, stdin=stdin, paths=COMMAND_LINE_PATHS) as (name, head, rest):
        if head[:4] == PARQUET_MAGIC:
            frame = _parquet(name, head, rest, text)
            _check_keep(name, keep, list(frame.columns))
            text = frame[keep].astype(object).where(frame[keep].notna(), "").astype(str) if keep else None
            yield 0, frame, text
            return
        delimiter = delimiter_of(name, head, options)
        names = _header(head, delimiter, options) or []
        check_header(name, names)
        _check_keep(name, keep, names)
        wanted = columns if columns is not None and set(columns) <= set(names) else None
        dtype = as_text(text, names)
        if not record_end(head):  # no "\n" outside quotes in the whole input (opened read it all): old Mac
            # line ends ("\r"), which pandas reads as line ends, as read_table gives them; or a header alone
            frame, kept = _parse(name, _read_lines(name, head, rest), delimiter, options, wanted, keep, 0, dtype)
            yield 0, _checked(name, frame, names if wanted is None else None, rows=True), kept
            return

        def blocks() -> Iterator[tuple[bytes, int]]:  # (the header and a block of records, the lines before the block)
            lines = 0
            for header, body in record_chunks(prefixed(head, rest), block_bytes, name=name):
                if body.strip():
                    yield header + body, lines
                lines += line_ends(body)

        def parse(block: tuple[bytes, int]):
            return _parse(name, block[0], delimiter, options, wanted, keep, block[1], dtype)

        first = 0
        for frame, kept in _ahead(blocks(), parse):
            frame.index = pd.RangeIndex(first, first + len(frame))
            yield first, _checked(name, frame, names if wanted is None else None, rows=False), kept
            first += len(frame)
        if first == 0:
            raise DataError(f"{name}: has a header but no rows")


def _ahead(items: Iterator, work) -> Iterator:
    """work(item) for each of `items`, in order, each next item's work done on a second thread while
    the caller handles the result before it: pandas parses a block of records with the GIL let go
    for most of the time, so reading and predicting overlap (benchmarks/README.md, "Streaming
    predict"). The items are read on the caller's thread, and the worker only ever parses bytes in
    memory, so it never waits on a pipe. An error reading an item comes after the results before it."""
    with ThreadPoolExecutor(1) as pool:  # its thread has ended when the with-block does, even if the caller stops early
        pending = None
        while True:
            try:
                item = next(items)
            except StopIteration:
                break
            except Exception:
                if pending is not None:
                    yield pending.result()
                raise
            submitted = pool.submit(work, item)
            if pending is not None:
                yield pending.result()
            pending = submitted
        if pending is not None:
            yield pending.result()


def _parse(name, block: bytes, delimiter: str, options: ReadOptions, wanted, keep, lines: int, dtype=None):
    """(the block's frame, its `keep` columns as text); the block holds the header, then records
    that start `lines` lines after the header's end; `dtype` as pandas takes it."""
    codec = codec_of(options)
    try:
        text = block.decode(codec)  # also where a byte that is not valid in the codec is found
        if not widths_agree(block, delimiter, codec):
            check_widths(name, text, delimiter, line_offset=lines)
        frame = pd.read_csv(
            io.BytesIO(block), sep=delimiter, encoding=codec, decimal=options.decimal, usecols=wanted, index_col=False, low_memory=False,
            dtype=dtype,
        )
        frame = _spelled_missing(frame, dtype)
        kept = None
        if keep:
            kept = pd.read_csv(io.BytesIO(block), sep=delimiter, encoding=codec, usecols=keep, dtype=str, keep_default_na=False, index_col=False)
    except DataError:
        raise
    except Exception as e:
        raise _read_error(name, e, options) from None
    return frame, kept


def _check_keep(name: str, keep: list[str], present: list[str]) -> None:
    absent = [c for c in keep if c not in present]
    if absent:
        raise DataError(
            f"{name}: --keep column {absent[0]!r} not found.{did_you_mean(absent[0], present)} Columns: {', '.join(present)}"
        )


# --- opening ----------------------------------------------------------------------------------


@contextlib.contextmanager
def opened(
    source: Path | str, *, stdin: IO[bytes] | None = None, paths: str = CONFIG_PATHS, name: str | None = None
) -> Iterator[tuple[str, bytes, IO[bytes]]]:
    """(name, head, rest) of a data file or `-` (stdin), unzipped when it is gzip.

    `head` holds the first SAMPLE_BYTES and, for CSV, at least the whole header record (DataError
    past MAX_LINE_BYTES); `rest` reads what follows, read errors becoming DataError. An empty
    input is a DataError.
    """
    name = name or source_name(source)
    raw = _open(name, source, stdin, paths)
    stream: IO[bytes] = _Checked(name, raw, "cannot read")
    try:
        head = stream.read(SAMPLE_BYTES)
        if head[:2] == GZIP_MAGIC:
            stream = _Checked(name, gzip.GzipFile(fileobj=prefixed(head, raw)), "a damaged gzip file")
            head = stream.read(SAMPLE_BYTES)
        if not head.strip():
            raise DataError(f"{name}: the file is empty; a CSV file needs a header line and rows")
        if head[:4] != PARQUET_MAGIC:
            head = _with_header(name, head, stream)
        yield name, head, stream
    finally:
        stream.close()
        raw.close()


def _with_header(name: str, head: bytes, stream) -> bytes:
    """`head`, read on until it holds the whole header record; DataError past MAX_LINE_BYTES."""
    while not record_end(head) and len(head) <= MAX_LINE_BYTES:
        more = stream.read(READ_BYTES)
        if not more:
            break
        head += more
    if (record_end(head) or len(head)) > MAX_LINE_BYTES + 1:
        raise too_long(name, 1, quoted=0 <= head.find(b"\n") < MAX_LINE_BYTES, old_mac=_old_mac_lines(head))
    return head


def _old_mac_lines(data: bytes) -> bool:
    """Whether the lines of `data` end in \\r alone (old Mac line ends): it holds \\r and no \\n."""
    return b"\r" in data and b"\n" not in data


def line_ends(data: bytes) -> int:
    """How many line ends `data` holds: \\n bytes, and a \\r alone as pandas reads it. numpy compares
    many bytes at once, where bytes.count goes byte by byte (4 MB: 0.5 against 2.6 ms)."""
    return int(np.count_nonzero(np.frombuffer(data, np.uint8) == ord("\n"))) + _lone_crs(data)


def _lone_crs(data: bytes) -> int:
    """How many \\r bytes of `data` no \\n follows: line ends to pandas and the csv module."""
    return data.count(b"\r") - data.count(b"\r\n") if b"\r" in data else 0  # `in` at memchr's speed


def record_end(data: bytes, start: int = 0) -> int:
    """The offset just after the first line end in `data[start:]` outside quotes (a line end is
    inside a quoted field exactly when an odd number of quotes precede it); 0 if there is none."""
    quotes = 0
    end = data.find(b"\n", start)
    while end >= 0:
        quotes += data.count(b'"', start, end)
        if quotes % 2 == 0:
            return end + 1
        start, end = end, data.find(b"\n", end + 1)
    return 0


def _open(name: str, source: Path | str, stdin: IO[bytes] | None, paths: str) -> IO[bytes]:
    if str(source) == STDIN:
        return _Unclosed(stdin if stdin is not None else sys.stdin.buffer)
    try:
        return open(source, "rb")
    except FileNotFoundError:
        where = f"{paths}, {os.getcwd()}" if paths in (COMMAND_LINE_PATHS, MAPPING_PATHS) else paths
        raise DataError(f"{name}: data file not found. Check the path ({where})") from None
    except IsADirectoryError:
        raise DataError(f"{name}: is a folder, not a data file") from None
    except OSError as e:
        raise DataError(f"{name}: cannot read ({e.strerror})") from None


class _Checked:
    """A byte stream whose read errors are DataErrors: `what` (plus the reason) names the problem."""

    def __init__(self, name: str, stream, what: str):
        self._name, self._stream, self._what = name, stream, what

    def read(self, n: int = -1) -> bytes:
        try:
            return self._stream.read(n)
        except (OSError, EOFError, zlib.error) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else e
            raise DataError(f"{self._name}: {self._what} ({reason})") from None

    def close(self) -> None:
        self._stream.close()


class _Unclosed:
    """stdin for reading, without closing it afterwards."""

    def __init__(self, stream: IO[bytes]):
        self._stream = stream

    def read(self, n: int = -1) -> bytes:
        return self._stream.read(n)

    def close(self) -> None:
        pass


class _Prefix(io.RawIOBase):
    """`head` followed by the rest of `stream`: lets the detection sample be read again."""

    def __init__(self, head: bytes, stream):
        self._head = memoryview(head)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if len(self._head):
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def prefixed(head: bytes, stream) -> io.BufferedReader:
    """The bytes `head`, already read from `stream`, followed by the rest of `stream`, as one reader."""
    return io.BufferedReader(_Prefix(head, stream), buffer_size=SAMPLE_BYTES)


# --- formats, delimiters, headers ---------------------------------------------------------------


def codec_of(options: ReadOptions) -> str:
    """The codec to decode with: UTF-8 drops a leading byte-order mark."""
    return "utf-8-sig" if options.encoding.lower().replace("_", "-") in ("utf-8", "utf8") else options.encoding


def _sample_text(data: bytes, options: ReadOptions) -> str:
    """The first SAMPLE_BYTES of `data` as text, or more to hold the whole header record."""
    return data[: max(SAMPLE_BYTES, record_end(data))].decode(codec_of(options), errors="ignore")


def delimiter_of(name: str, data: bytes, options: ReadOptions) -> str:
    """The delimiter `options` set, or the one the first rows of `data` show."""
    if options.delimiter != "auto":
        return options.delimiter
    return detect_delimiter(_sample_text(data, options))


def detect_delimiter(sample: str) -> str:
    """The delimiter of CSV text `sample`: of `,` `;` tab `|`, the one that splits the header into the
    most fields while every sampled row has as many fields as the header; `,` when none does."""
    lines = sample.splitlines(keepends=True)
    if len(sample) >= SAMPLE_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut short
    best, best_fields = ",", 1
    for candidate in DELIMITERS:
        rows = [row for row in csv.reader(lines[: SAMPLE_ROWS + 1], delimiter=candidate) if row]
        if not rows or len(rows[0]) <= best_fields:
            continue
        if all(len(row) == len(rows[0]) for row in rows):
            best, best_fields = candidate, len(rows[0])
    return best


def _header(data: bytes, delimiter: str, options: ReadOptions) -> list[str] | None:
    """The column names of the first record, as written (pandas renames duplicates, so look first)."""
    return next(csv.reader(io.StringIO(_sample_text(data, options), newline=""), delimiter=delimiter), None)


def check_header(name: str, header: list[str] | None) -> None:
    """DataError for more than MAX_COLUMNS names, or for duplicate names (checked before pandas,
    whose renaming of duplicates takes time quadratic in their number)."""
    names = header or []
    if len(names) > MAX_COLUMNS:
        raise DataError(f"{name}: the header has {len(names):,} columns; bptrain reads at most {MAX_COLUMNS:,}")
    seen: set[str] = set()
    duplicated = sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
    if duplicated:
        raise DataError(f"{name}: duplicate column names: {', '.join(duplicated)}. Rename them so each is unique")


def _checked(name: str, frame: pd.DataFrame, header: list[str] | None, rows: bool) -> pd.DataFrame:
    """The frame with string column names; DataError for duplicate names, or (`rows`) no rows."""
    check_header(name, header if header is not None else [str(c) for c in frame.columns])
    if rows and len(frame) == 0:
        raise DataError(f"{name}: has a header but no rows")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _parquet(name: str, head: bytes, rest: IO[bytes], text: Sequence[str] = ()) -> pd.DataFrame:
    """The whole Parquet file whose first bytes are `head`, checked as every table is; the columns
    named in `text` with their integers exact (_exact_integers)."""
    data = head + rest.read()  # first, and outside the try below: a damaged stream keeps its own error
    try:
        import pyarrow  # noqa: F401  (pandas needs it for Parquet)
    except ImportError:
        raise extra_needed(f"{name}: reading Parquet files needs pyarrow", "parquet") from None
    try:
        frame = pd.read_parquet(io.BytesIO(data))
    except Exception as e:  # pyarrow raises its own error types
        raise DataError(f"{name}: cannot read as Parquet: {_first_line(e)}") from None
    return _exact_integers(_checked(name, frame, header=None, rows=True), data, text)


def _exact_integers(frame: pd.DataFrame, parquet: bytes | Path, text: Sequence[str]) -> pd.DataFrame:
    """`frame` (read from the Parquet file `parquet`, its bytes or path) with the columns named in
    `text` that the file holds as integers with missing values, which pandas makes float64 (rounding
    past 2**53), as those integers exactly: Python ints, NaN where missing, as a CSV file's cells
    read as text label them (columns.cell_label)."""
    names = [n for n in text if n in frame.columns and frame[n].dtype == np.float64]
    if not names:
        return frame
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(parquet) if isinstance(parquet, bytes) else parquet, columns=names)
    for name in names:
        column = table.column(name)
        if pa.types.is_integer(column.type):
            values = np.array([np.nan if v is None else v for v in column.to_pylist()], dtype=object)
            frame[name] = pd.Series(values, index=frame.index, name=name, dtype=object)
    return frame


def _read_error(name: str, exc: Exception, options: ReadOptions) -> DataError:
    if isinstance(exc, pd.errors.EmptyDataError):
        return DataError(f"{name}: the file is empty; a CSV file needs a header line and rows")
    if isinstance(exc, UnicodeDecodeError):
        return DataError(
            f"{name}: not {options.encoding} text ({exc.reason}); {options.other_encoding()}"
        )
    if isinstance(exc, pd.errors.ParserError):
        return DataError(f"{name}: cannot parse as CSV: {_first_line(exc).removeprefix('Error tokenizing data. C error: ')}")
    if isinstance(exc, (OSError, EOFError, zlib.error)):
        return DataError(f"{name}: a damaged gzip file ({exc})")
    return DataError(f"{name}: cannot read as CSV ({type(exc).__name__}: {_first_line(exc)})")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def delimiter_hint(frame: pd.DataFrame) -> str:
    """A hint when a frame has a single column whose name looks like several joined by a delimiter."""
    if len(frame.columns) != 1:
        return ""
    found = [d for d in DELIMITERS if d in str(frame.columns[0])]
    if not found:
        return ""
    shown = "tab" if found[0] == "\t" else repr(found[0])
    return f". That is a single column: is the delimiter {shown}? Set data.read.delimiter to it, or to auto"
