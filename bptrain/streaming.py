"""Streaming predict: input read in blocks of whole records, output written as it goes, so memory stays flat.

`record_chunks` splits a byte stream into the header and blocks of whole records (a quoted field
may span lines); each block is parsed on its own by pandas with the file's delimiter and
encoding after its fields are counted (reading.check_widths), and the raw text of `--keep`
columns is taken from the same block, so kept values are copied exactly as they were written.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import IO, Iterator

import numpy as np
import pandas as pd

from bptrain import reading
from bptrain.errors import DataError
from bptrain.reading import DEFAULT, MAX_LINE_BYTES, ReadOptions
from bptrain.registry import did_you_mean

BLOCK_BYTES = 1 << 22  # about 4 MB of input per chunk
BOM = b"\xef\xbb\xbf"


def record_chunks(handle: IO[bytes], block_bytes: int = BLOCK_BYTES, *, name: str = "<stdin>") -> Iterator[tuple[bytes, bytes]]:
    """(header record, a block of whole records of about `block_bytes`), reading `handle` lazily.

    The first pair has an empty block; a block may hold only blank lines. A block ends at a line
    end outside quotes (a quoted field may hold line ends); a record longer than MAX_LINE_BYTES is
    a DataError naming the line it starts on.
    """
    header, rest, line = b"", b"", 1
    for data in iter(lambda: handle.read(block_bytes), b""):
        rest += data
        end = reading.record_end(rest)  # a record longer than a block starts in `rest`, if anywhere
        length = end - 1 if end else len(rest)
        if length > MAX_LINE_BYTES:
            raise reading.too_long(name, line, quoted=0 <= rest.find(b"\n") < length)
        if not end:
            continue
        cut = _last_record_end(rest)
        block, rest = rest[:cut], rest[cut:]
        if not header:
            end = reading.record_end(block)
            header, block = block[:end].removeprefix(BOM), block[end:]
            line += header.count(b"\n")
            yield header, b""
        line += block.count(b"\n")
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
) -> Iterator[tuple[int, pd.DataFrame, pd.DataFrame | None]]:
    """(index of the chunk's first data row, the chunk as a frame, the `keep` columns' raw text).

    CSV (any delimiter and encoding reading.py handles, gzip too) is read in blocks; only
    `columns` are converted when the file has them all (otherwise, or when None, every column is,
    so the caller can name what is missing). Parquet, a binary format, is read whole. Paths are
    taken as given on the command line.
    """
    with reading.opened(source, stdin=stdin, paths=reading.COMMAND_LINE_PATHS) as (name, head, rest):
        if head[:4] == reading.PARQUET_MAGIC:
            frame = reading._checked(name, reading._parquet(name, io.BytesIO(head + rest.read())), None, rows=True)
            _check_keep(name, keep, list(frame.columns))
            text = frame[keep].astype(object).where(frame[keep].notna(), "").astype(str) if keep else None
            yield 0, frame, text
            return
        delimiter = reading._delimiter(name, head, options)
        names = reading._header(head, delimiter, options) or []
        reading.check_header(name, names)
        _check_keep(name, keep, names)
        wanted = columns if columns is not None and set(columns) <= set(names) else None
        first, lines = 0, 0
        for header, body in record_chunks(reading._prefixed(head, rest), block_bytes, name=name):
            if not body.strip():
                lines += body.count(b"\n")
                continue
            frame, kept = _parse(name, header + body, delimiter, options, wanted, keep, lines)
            frame.index = pd.RangeIndex(first, first + len(frame))
            yield first, reading._checked(name, frame, names if wanted is None else None, rows=False), kept
            first += len(frame)
            lines += body.count(b"\n")
        if first == 0:
            raise DataError(f"{name}: has a header but no rows")


def _parse(name, block: bytes, delimiter: str, options: ReadOptions, wanted, keep, lines: int):
    """(the block's frame, its `keep` columns as text); the block holds the header, then records
    that start `lines` lines after the header's end."""
    codec = reading._codec(options)
    try:
        reading.check_widths(name, block.decode(codec), delimiter, line_offset=lines)
        frame = pd.read_csv(io.BytesIO(block), sep=delimiter, encoding=codec, decimal=options.decimal, usecols=wanted, index_col=False)
        kept = None
        if keep:
            kept = pd.read_csv(io.BytesIO(block), sep=delimiter, encoding=codec, usecols=keep, dtype=str, keep_default_na=False, index_col=False)
    except DataError:
        raise
    except Exception as e:
        raise reading._read_error(name, e, options) from None
    return frame, kept


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
