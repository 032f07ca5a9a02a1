"""Streaming predict: input read in blocks of whole records, output written as it goes, so memory stays flat.

`record_chunks` splits a byte stream into the header and blocks of whole records (a quoted field
may span lines); each block is parsed on its own by pandas with the file's delimiter and
encoding, and the raw text of `--keep` columns is taken from the same block, so kept values are
copied exactly as they were written.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import IO, Iterator

import numpy as np
import pandas as pd

from bptrain import reading
from bptrain.errors import DataError
from bptrain.reading import DEFAULT, ReadOptions, source_name
from bptrain.registry import did_you_mean

BLOCK_BYTES = 1 << 22  # about 4 MB of input per chunk
BOM = b"\xef\xbb\xbf"


def record_chunks(handle: IO[bytes], block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[bytes, bytes]]:
    """(header line, a block of whole records of about `block_bytes`), reading `handle` lazily.

    A block ends at a line end outside quotes: a quoted field may hold line ends, and a line end
    is inside one exactly when an odd number of quote characters precede it.
    """
    header = handle.readline()
    while header.count(b'"') % 2:
        more = handle.readline()
        if not more:
            break
        header += more
    if not header:
        return
    header = header.removeprefix(BOM)
    if not header.endswith(b"\n"):
        header += b"\n"
    yield header, b""
    rest = b""
    while True:
        data = handle.read(block_bytes)
        if not data:
            break
        data = rest + data
        cut = data.rfind(b"\n") + 1
        while cut and data.count(b'"', 0, cut) % 2:
            cut = data.rfind(b"\n", 0, cut - 1) + 1
        if not cut:  # no complete record yet: read on
            rest = data
            continue
        block, rest = data[:cut], data[cut:]
        if block.strip():
            yield header, block
    if rest.strip():
        yield header, rest if rest.endswith(b"\n") else rest + b"\n"


def frame_chunks(
    source: Path | str, columns: list[str], keep: list[str], *, stdin: IO[bytes] | None = None, options: ReadOptions = DEFAULT
) -> Iterator[tuple[int, pd.DataFrame, pd.DataFrame | None]]:
    """(index of the chunk's first data row, the chunk as a frame, the `keep` columns' raw text).

    CSV (any delimiter and encoding reading.py handles, gzip too) is read in blocks; only
    `columns` are converted when the file has them all (otherwise every column is, so the caller
    can name what is missing). Parquet, a binary format, is read whole.
    """
    name = source_name(source)
    raw = stream = reading._open(name, source, stdin)
    try:
        head = stream.read(reading.SAMPLE_BYTES)
        if head[:2] == reading.GZIP_MAGIC:
            stream = gzip.GzipFile(fileobj=reading._prefixed(head, stream))
            head = reading._guarded(name, lambda: stream.read(reading.SAMPLE_BYTES))
        if not head.strip():
            raise DataError(f"{name}: the file is empty; a CSV file needs a header line and rows")
        if head[:4] == reading.PARQUET_MAGIC:
            frame = reading._checked(name, reading._parquet(name, io.BytesIO(head + stream.read())), None, rows=True)
            _check_keep(name, keep, list(frame.columns))
            text = frame[keep].astype(object).where(frame[keep].notna(), "").astype(str) if keep else None
            yield 0, frame, text
            return
        delimiter = reading._delimiter(name, head, options)
        names = reading._header(head, delimiter, options) or []
        _check_keep(name, keep, names)
        wanted = columns if set(columns) <= set(names) else None
        first = 0
        for header, body in record_chunks(reading._prefixed(head, stream)):
            if not body:
                continue
            block = io.BytesIO(header + body)
            try:
                frame = pd.read_csv(block, sep=delimiter, encoding=reading._codec(options), decimal=options.decimal, usecols=wanted)
                kept = None
                if keep:
                    block.seek(0)
                    kept = pd.read_csv(block, sep=delimiter, encoding=reading._codec(options), usecols=keep, dtype=str, keep_default_na=False)
            except DataError:
                raise
            except Exception as e:
                raise reading._read_error(name, e, options) from None
            frame.index = pd.RangeIndex(first, first + len(frame))
            yield first, reading._checked(name, frame, names if wanted is None else None, rows=False), kept
            first += len(frame)
        if first == 0:
            raise DataError(f"{name}: has a header but no rows")
    finally:
        stream.close()
        raw.close()


def _check_keep(name: str, keep: list[str], present: list[str]) -> None:
    absent = [c for c in keep if c not in present]
    if absent:
        raise DataError(
            f"{name}: --keep column {absent[0]!r} not found.{did_you_mean(absent[0], present)} Columns: {', '.join(present)}"
        )


# --- output -------------------------------------------------------------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(text: str) -> str:
    """Prefix a cell a spreadsheet would run as a formula with a quote (OWASP's CSV-injection advice)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class Writer:
    """Writes the columns of each chunk as CSV or JSON lines; the header comes with the first chunk.

    Numbers are written in the shortest form that reads back to the same value in the model's
    dtype (NumPy's shortest round-trip repr); text is written as it is, or with --escape-formulas
    made safe for spreadsheets.
    """

    def __init__(self, out: IO[str], header: list[str], fmt: str = "csv", escape: bool = False):
        self.out, self.header, self.fmt, self.escape = out, header, fmt, escape
        self.started = False  # an input error before the first chunk leaves the output empty

    def write(self, columns: list[np.ndarray]) -> None:
        cells = {}
        for name, column in zip(self.header, columns):
            if column.dtype.kind == "f":
                text = column.astype(str)  # shortest round-trip text in the column's dtype
                cells[name] = text if self.fmt == "csv" else [float(v) for v in text]
            elif self.escape:
                cells[name] = np.array([escape_formula(v) if isinstance(v, str) else v for v in column], dtype=object)
            else:
                cells[name] = column
        frame = pd.DataFrame(cells, columns=self.header)
        if self.fmt == "csv":
            frame.to_csv(self.out, index=False, header=not self.started, lineterminator="\n")
        else:
            for record in frame.to_dict(orient="records"):
                self.out.write(json.dumps(record, allow_nan=False) + "\n")
        self.started = True
        self.out.flush()
