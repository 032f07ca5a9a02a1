"""Reading tables: CSV (any delimiter, encoding, quoting, gzip) or Parquet, from a file or stdin.

`read_table` returns a whole file as a DataFrame; `read_csv_chunks` yields it in DataFrames of
`chunksize` rows, for input larger than memory. Both detect gzip and Parquet by their first bytes,
detect the delimiter when asked (`auto`), and raise DataError with one clear line (file, line,
what to do) for anything they cannot read. Columns keep pandas' types; nothing is preprocessed.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

import pandas as pd

from bptrain.errors import ConfigError, DataError

STDIN = "-"
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
SAMPLE_BYTES = 1 << 16  # read to detect the format and the delimiter
DELIMITERS = (",", ";", "\t", "|")  # auto-detection candidates, preferred in this order on a tie
SAMPLE_ROWS = 50


@dataclass(frozen=True)
class ReadOptions:
    """How to read a CSV file: `delimiter` is `auto` or one character; `encoding` a Python codec
    name; `decimal` the decimal mark of numbers."""

    delimiter: str = "auto"
    encoding: str = "utf-8"
    decimal: str = "."


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


def read_table(source: Path | str, *, stdin: IO[bytes] | None = None, options: ReadOptions = DEFAULT) -> pd.DataFrame:
    """A whole CSV or Parquet file (or `-` for stdin) as a DataFrame; DataError on anything unusable."""
    name, data = _whole(source, stdin)
    return _frame_of(name, data, options)


def _whole(source: Path | str, stdin: IO[bytes] | None) -> tuple[str, bytes]:
    """The file's bytes, unzipped when they are gzip."""
    name = source_name(source)
    stream = _open(name, source, stdin)
    try:
        data = stream.read()
    except OSError as e:
        raise DataError(f"{name}: cannot read ({e.strerror})") from None
    finally:
        stream.close()
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{name}: a damaged gzip file ({e})") from None
    return name, data


def _frame_of(name: str, data: bytes, options: ReadOptions) -> pd.DataFrame:
    if data[:4] == PARQUET_MAGIC:
        return _checked(name, _parquet(name, io.BytesIO(data)), header=None, rows=True)
    _check_decodes(name, data, options.encoding)
    delimiter = _delimiter(name, data, options)
    try:
        frame = pd.read_csv(io.BytesIO(data), sep=delimiter, encoding=_codec(options), decimal=options.decimal)
    except Exception as e:  # pandas' parser errors are many types; each becomes one line
        raise _read_error(name, e, options) from None
    header = _header(data, delimiter, options)
    if len(frame.columns) > 1 and frame.iloc[:, -1].isna().any():
        _check_short_rows(name, data, delimiter, options)  # pandas fills a short row with missing values
    return _checked(name, frame, header, rows=True)


def _check_short_rows(name: str, data: bytes, delimiter: str, options: ReadOptions) -> None:
    """DataError naming the first line with fewer fields than the header."""
    lines = io.StringIO(data.decode(_codec(options)), newline="")
    reader = csv.reader(lines, delimiter=delimiter)
    width = len(next(reader, []))
    for row in reader:
        if row and len(row) < width:
            raise DataError(
                f"{name}: line {reader.line_num} has {len(row)} field{'s' if len(row) != 1 else ''}, but the header has {width}; "
                "check the delimiter and the quoting on that line"
            )


def _check_decodes(name: str, data: bytes, encoding: str) -> None:
    """DataError with the line and byte of the first byte that is not valid in `encoding`."""
    try:
        data.decode(_codec(ReadOptions(encoding=encoding)))
    except LookupError:
        raise ConfigError(f"data.read.encoding: unknown encoding {encoding!r}; use a Python codec name such as utf-8 or latin-1") from None
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(
            f"{name}: not {encoding} text: byte 0x{data[e.start]:02x} on line {line} ({e.reason}); "
            "set data.read.encoding to the file's encoding, e.g. latin-1"
        ) from None


# --- chunks -----------------------------------------------------------------------------------


def read_csv_chunks(
    source: Path | str, chunksize: int, *, stdin: IO[bytes] | None = None, read_options: ReadOptions = DEFAULT
) -> Iterator[pd.DataFrame]:
    """DataFrames of at most `chunksize` rows each, in file order (CSV, gzip, Parquet, or `-` for stdin).

    The index of each chunk continues from the previous one, so `chunk.index[0]` is the 0-based
    number of its first row in the file. DataError as `read_table` raises it.
    """
    name = source_name(source)
    raw = stream = _open(name, source, stdin)
    try:
        head = stream.read(SAMPLE_BYTES)
        if head[:2] == GZIP_MAGIC:
            stream = gzip.GzipFile(fileobj=_prefixed(head, stream))
            head = _guarded(name, lambda: stream.read(SAMPLE_BYTES))
        if head[:4] == PARQUET_MAGIC:
            frame = _checked(name, _parquet(name, io.BytesIO(head + stream.read())), header=None, rows=True)
            for start in range(0, len(frame), chunksize):
                yield frame.iloc[start : start + chunksize]
            return
        delimiter = _delimiter(name, head, read_options)
        header = _header(head, delimiter, read_options)
        body = _prefixed(head, stream)
        try:
            reader = pd.read_csv(
                body, sep=delimiter, encoding=_codec(read_options), decimal=read_options.decimal, chunksize=chunksize
            )
            rows = 0
            for chunk in reader:
                rows += len(chunk)
                yield _checked(name, chunk, header, rows=False)
        except (DataError, GeneratorExit):
            raise
        except Exception as e:
            raise _read_error(name, e, read_options) from None
        if rows == 0:
            raise DataError(f"{name}: has a header but no rows")
    finally:
        stream.close()
        raw.close()


def _open(name: str, source: Path | str, stdin: IO[bytes] | None) -> IO[bytes]:
    if str(source) == STDIN:
        return _Unclosed(stdin if stdin is not None else sys.stdin.buffer)
    try:
        return open(source, "rb")
    except FileNotFoundError:
        raise DataError(f"{name}: data file not found. Check the path (data paths are relative to the config file)") from None
    except IsADirectoryError:
        raise DataError(f"{name}: is a folder, not a data file") from None
    except OSError as e:
        raise DataError(f"{name}: cannot read ({e.strerror})") from None


def _guarded(name: str, read):
    try:
        return read()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{name}: a damaged gzip file ({e})") from None


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


def _prefixed(head: bytes, stream) -> io.BufferedReader:
    return io.BufferedReader(_Prefix(head, stream), buffer_size=SAMPLE_BYTES)


# --- formats, delimiters, headers ---------------------------------------------------------------


def _codec(options: ReadOptions) -> str:
    """The codec to decode with: UTF-8 drops a leading byte-order mark."""
    return "utf-8-sig" if options.encoding.lower().replace("_", "-") in ("utf-8", "utf8") else options.encoding


def _sample_text(data: bytes, options: ReadOptions) -> str:
    return data[:SAMPLE_BYTES].decode(_codec(options), errors="ignore")


def _delimiter(name: str, data: bytes, options: ReadOptions) -> str:
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
    """The column names of the first line, as written (pandas renames duplicates, so look first)."""
    for row in csv.reader(_sample_text(data, options).splitlines()[:1], delimiter=delimiter):
        return row
    return None


def _checked(name: str, frame: pd.DataFrame, header: list[str] | None, rows: bool) -> pd.DataFrame:
    """The frame with string column names; DataError for duplicate names, or (`rows`) no rows."""
    names = header if header is not None else [str(c) for c in frame.columns]
    seen: set[str] = set()
    duplicated = sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
    if duplicated:
        raise DataError(f"{name}: duplicate column names: {', '.join(duplicated)}. Rename them so each is unique")
    if rows and len(frame) == 0:
        raise DataError(f"{name}: has a header but no rows")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _parquet(name: str, stream: IO[bytes]) -> pd.DataFrame:
    try:
        import pyarrow  # noqa: F401  (pandas needs it for Parquet)
    except ImportError:
        raise ConfigError(
            f"{name}: reading Parquet files needs pyarrow, the optional extra 'parquet': pip install 'bptrain[parquet]'"
        ) from None
    try:
        return pd.read_parquet(stream)
    except Exception as e:  # pyarrow raises its own error types
        raise DataError(f"{name}: cannot read as Parquet: {_first_line(e)}") from None


def _read_error(name: str, exc: Exception, options: ReadOptions) -> DataError:
    if isinstance(exc, pd.errors.EmptyDataError):
        return DataError(f"{name}: the file is empty; a CSV file needs a header line and rows")
    if isinstance(exc, UnicodeDecodeError):
        return DataError(
            f"{name}: not {options.encoding} text ({exc.reason}); set data.read.encoding to the file's encoding, e.g. latin-1"
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
