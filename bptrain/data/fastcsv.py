"""The fast way to read a plain numeric CSV file on disk: pyarrow's parser, taken only where it gives the frame pandas' parser gives.

`read_numeric` returns the frame, or None for anything but a file that is ASCII, unquoted, with
every row as wide as the header, every column int64 or float64 (the types, and the values, of its
first rows as pandas reads them) and no infinity or spelled-out NaN: the caller then reads the
file the ordinary way (bptrain.data.reading), whose checks and messages stay the only ones.
Nothing here raises for a bad file. The file is never held whole, and pyarrow's blocks of rows are
let go as they are copied into the frame's columns, so the values are held about once.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from bptrain import lazy

pd = lazy.module("pandas")  # imported on first use (bptrain.lazy): predict on a plain CSV file needs none of it

BLOCK_BYTES = 1 << 20  # read at a time to check the bytes
SAMPLE_BYTES = 1 << 20  # of rows, to take the column types from
PARSE_BLOCK_BYTES = 1 << 20  # parsed at a time by one of pyarrow's threads
NA_VALUES = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
             "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")  # pandas' default missing-value spellings


def available() -> bool:
    try:
        import pyarrow.csv  # noqa: F401
    except ImportError:
        return False
    return True


def read_numeric(path: Path, header: list[str], body_start: int, delimiter: str, max_line: int) -> pd.DataFrame | None:
    """The file's rows as pandas would read them, or None when that is not certain.

    `header` holds the column names as written, the header record ending at byte `body_start`;
    a line longer than `max_line` bytes leaves the file to the ordinary reader (which names it).
    """
    if not available() or not header or not all(header):
        return None
    lines = _plain(path, body_start, max_line)
    if lines is None:
        return None
    import pyarrow as pa

    try:
        opened = _open(path, header, body_start, delimiter)
        columns = None if opened is None else numpy_columns(opened[0], lines, opened[1])
    except (pa.ArrowException, OSError, ValueError):  # a row of the wrong width, a value that does not fit its column's type
        return None
    return None if columns is None else pd.DataFrame(columns, copy=False)


def _plain(path: Path, body_start: int, max_line: int) -> int | None:
    """The number of lines of the file from byte `body_start` if they are ASCII, without quotes,
    with \\r only in \\r\\n and of at most `max_line` bytes each; else None."""
    line, lines = 0, 0  # bytes since the last line end; line ends
    carried = False  # carried: the last block ended in \r, so this one must start with \n
    size = min(BLOCK_BYTES, max_line)  # a line wholly inside a block is then never too long
    with open(path, "rb") as f:
        f.seek(body_start)
        for block in iter(lambda: f.read(size), b""):
            lone = b"\r" in block and block.count(b"\r") - block.count(b"\r\n") - block.endswith(b"\r")
            if not block.isascii() or b'"' in block or lone or (carried and not block.startswith(b"\n")):
                return None
            carried = block.endswith(b"\r")
            end = block.find(b"\n")
            if line + (end if end >= 0 else len(block)) > max_line:
                return None
            line = len(block) - block.rfind(b"\n") - 1 if end >= 0 else line + len(block)
            lines += block.count(b"\n")
    return None if carried else lines + (line > 0)  # a last line without a line end counts too


def _open(path: Path, header: list[str], body_start: int, delimiter: str):
    """(pyarrow's reader of the file's blocks of rows, the column types), or None. The types are
    those of the first SAMPLE_BYTES of rows, where both parsers must agree on every type and value
    (inferring them over the whole file would hold it whole); a later value that does not fit its
    column's type is an error while reading, and pandas' reading then decides."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    parse = pacsv.ParseOptions(delimiter=delimiter, quote_char=False, double_quote=False, newlines_in_values=False)
    convert = {"null_values": list(NA_VALUES), "strings_can_be_null": False, "true_values": [], "false_values": []}
    with open(path, "rb") as f:
        f.seek(body_start)
        sample = f.read(SAMPLE_BYTES)
    sample = sample[: sample.rfind(b"\n") + 1]
    # no pyarrow threads: a process that exits while pyarrow's thread pool is alive may abort in
    # its teardown ("terminate called without an active exception"), seen here once in 40 runs
    names = pacsv.ReadOptions(column_names=header, use_threads=False)
    table = pacsv.read_csv(pa.BufferReader(sample), read_options=names, parse_options=parse, convert_options=pacsv.ConvertOptions(**convert))
    if not sample or not _same_in_pandas(table, sample, header, delimiter):
        return None
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=header, skip_rows=1, block_size=PARSE_BLOCK_BYTES, use_threads=False),
        parse_options=parse,
        convert_options=pacsv.ConvertOptions(column_types=dict(zip(table.column_names, table.schema.types)), **convert),
    )
    return reader, table.schema


def _same_in_pandas(table, sample: bytes, header: list[str], delimiter: str) -> bool:
    """Whether every column of `table` (pyarrow's reading of the rows `sample`) is int64 or float64,
    and pandas reads `sample` to the same types and the same values."""
    import pyarrow as pa

    if not all(pa.types.is_int64(t) or pa.types.is_float64(t) for t in table.schema.types):
        return False
    try:
        theirs = pd.read_csv(io.BytesIO(sample), sep=delimiter, header=None, names=header, index_col=False)
    except Exception:  # pandas' parser errors are many types: any of them means "not sure"
        return False
    ours = numpy_columns(table.to_batches(), table.num_rows, table.schema)
    return ours is not None and all(_identical(ours[name], theirs[name].to_numpy()) for name in header)


def _identical(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True) and np.array_equal(np.signbit(a), np.signbit(b))


def numpy_columns(batches, rows: int, schema) -> dict[str, np.ndarray] | None:
    """The pyarrow blocks of rows `batches` (at most `rows` rows, of `schema`, whose columns are all
    int64 or float64) as one numpy array per column, as pandas reads them; None when a float column
    holds an infinity or a NaN that is not a missing value (pyarrow reads spellings of them, "inf"
    or "NAN", that pandas reads as text). Each block is copied as it comes and let go: the values
    are held about once."""
    import pyarrow as pa

    out = {name: np.empty(rows, dtype=np.float64 if pa.types.is_floating(t) else np.int64) for name, t in zip(schema.names, schema.types)}
    missing = dict.fromkeys(schema.names, 0)
    at = 0
    for batch in batches:
        for name, column in zip(schema.names, batch.columns):
            values = column.to_numpy(zero_copy_only=False)  # an integer column with missing values comes as float64 with NaN
            if values.dtype != out[name].dtype:
                out[name] = out[name].astype(values.dtype)  # ...and pandas makes the whole column float64
            out[name][at : at + len(values)] = values
            missing[name] += column.null_count
        at += batch.num_rows
    if at < rows:  # blank lines
        for name in out:
            out[name] = out[name][:at].copy()
    pa.default_memory_pool().release_unused()  # pyarrow's allocator keeps what the blocks took
    return out if all(only_gaps(out[name], missing[name]) for name in out) else None


def only_gaps(values: np.ndarray, missing: int) -> bool:
    """Whether every value that is not finite is a missing one (NaN)."""
    if values.dtype != np.float64:
        return True
    finite = np.isfinite(values)
    return bool(finite.all()) or (not np.isinf(values).any() and len(values) - int(finite.sum()) == missing)
