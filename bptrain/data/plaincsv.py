"""Small plain CSV input read without pandas, for predict and small requests to serve: taken only where it gives exactly what pandas gives.

`read` returns the model's inputs for the rows of a CSV file (or stdin) of at most SMALL_BYTES,
with the text of the `--keep` columns, when the input is plain: ASCII without quotes, carriage
returns, other control characters or blank lines; one of the delimiters `auto` detects; every
record as wide as the header; the header's names non-empty and distinct; a fill value for every
missing cell (one of pandas' missing-value spellings). A numeric feature's cells are plain
decimal numbers that both parsers read to the same float64 (see `number`). A categorical
feature's cells are text to both, labelled by the same function (bptrain.data.columns.cell_label,
by the form of the column's training values). Anything else returns None, and the caller reads
the input with pandas (bptrain.data.reading and bptrain.data.columns), whose values, checks and
messages stay the only ones: nothing here raises for a bad input (with `strict`, a category the
model never saw is left to pandas too), and pandas is never imported here. Skipping pandas
saves about 0.4 s of `bptrain predict` on a small file; tests/unit/test_plain_csv.py compares
both paths on tricky inputs.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from bptrain.data.columns import Column, Unseen, category_index, cell_label, count_filled, numeric_block, one_hot_block
from bptrain.data.fastcsv import NA_VALUES
from bptrain.data.preprocess import Preprocessor
from bptrain.data.reading import DELIMITERS, GZIP_MAGIC, MAX_COLUMNS, PARQUET_MAGIC, STDIN, ReadOptions, codec_of, delimiter_of, prefixed

SMALL_BYTES = 1 << 20  # larger inputs are streamed through pandas, block by block
MISSING = frozenset(NA_VALUES)
# A decimal number without exponent: both pandas' parser and float() round it correctly when it has
# at most 15 significant digits (an exact integer in a double) and at most 22 after the point.
NUMBER = re.compile(r"[+-]?(?:([0-9]+)(?:\.([0-9]*))?|\.([0-9]+))")
MAX_DIGITS = 15
MAX_DECIMALS = 22
CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")  # all but tab and line feed


@dataclass
class Plain:
    """The rows of a plain input: the model's inputs, and the text of each kept column."""

    x: np.ndarray
    kept: dict[str, np.ndarray]  # object arrays of str, as written in the input
    unseen: Unseen  # categories the model never saw

    def __len__(self) -> int:
        return len(self.x)


def read(
    source: Path | str, prep: Preprocessor, keep: list[str], dtype: str, *, strict: bool = False, stdin: IO[bytes] | None = None
) -> tuple[Plain | None, IO[bytes] | None]:
    """(the plain input's rows or None, the stdin to read instead of `stdin` when None): a declined
    stdin input has been read in part, and the returned stream gives those bytes again first."""
    if str(source) == STDIN:
        stream = stdin if stdin is not None else sys.stdin.buffer
        try:
            data = stream.read(SMALL_BYTES + 1)
        except OSError:  # the ordinary reader reports it
            return None, stream
        rows = parse(data, prep, keep, dtype, strict=strict) if len(data) <= SMALL_BYTES else None
        return rows, (None if rows is not None else prefixed(data, stream))
    if not os.path.isfile(source):  # not found, a folder: the ordinary reader says which; a pipe is read once, by it
        return None, stdin
    try:
        with open(source, "rb") as f:
            data = f.read(SMALL_BYTES + 1)
    except OSError:  # unreadable: the ordinary reader says why
        return None, stdin
    return (parse(data, prep, keep, dtype, strict=strict) if len(data) <= SMALL_BYTES else None), stdin


def parse(
    data: bytes, prep: Preprocessor, keep: list[str], dtype: str, *, strict: bool = False, options: ReadOptions | None = None
) -> Plain | None:
    """The rows of the CSV text `data` when it is plain, read by `options` (default: the model's
    reading rules, prep.read); None for any other text, which the ordinary reader then reads."""
    options = options or prep.read
    if options.decimal != "." or codec_of(options) != "utf-8-sig" or not data.isascii() or data[:2] == GZIP_MAGIC or data[:4] == PARQUET_MAGIC:
        return None
    if b'"' in data or b"\r" in data or CONTROL.search(data):
        return None
    delimiter = delimiter_of("", data, options)
    if delimiter not in DELIMITERS:
        return None
    lines = data.decode("ascii").split("\n")
    if lines[-1] == "":
        lines.pop()
    if len(lines) < 2 or any(not line.strip() for line in lines):
        return None
    header = lines[0].split(delimiter)
    if len(header) > MAX_COLUMNS or not all(header) or len(set(header)) != len(header):
        return None
    where = {name: i for i, name in enumerate(header)}
    if any(c.name not in where for c in prep.columns) or any(k not in where for k in keep):
        return None
    records = [line.split(delimiter) for line in lines[1:]]
    if any(len(r) != len(header) for r in records):
        return None
    out, unseen = prep.empty_inputs(len(records), dtype), Unseen()
    at = 0
    for column in prep.columns:
        cells = [r[where[column.name]] for r in records]
        block = _numeric(column, cells) if column.kind == "numeric" else _categorical(column, cells, strict, unseen, options.decimal)
        if block is None:
            return None
        prep.scale_into(out, at, block)
        at += block.shape[1]
    if not np.isfinite(out).all():  # an error, which the ordinary reader words
        return None
    x = prep.finished_inputs(out, "", dtype, 0)
    kept = {k: np.array([r[where[k]] for r in records], dtype=object) for k in keep}
    return Plain(x, kept, unseen)


def _numeric(column: Column, cells: list[str]) -> np.ndarray | None:
    """The column's block (bptrain.data.columns.encode_column's), or None."""
    values = _numbers(cells)
    if values is None:
        return None
    missing = np.isnan(values)
    if missing.any() and column.fill is None:  # an error
        return None
    return numeric_block(column, values, missing, column.fill)


def _categorical(column: Column, cells: list[str], strict: bool, unseen: Unseen, decimal: str) -> np.ndarray | None:
    """The column's block (encode_column's), the categories it never saw added to `unseen`; or None."""
    labels = labels_of_cells(cells, column.form, decimal)
    missing = np.array([v is None for v in labels], dtype=bool)
    if missing.any():
        if column.fill is None:  # an error
            return None
        labels = [column.fill if v is None else v for v in labels]
    index = category_index(column)
    positions = np.array([index.get(v, np.nan) for v in labels], dtype=np.float64)
    new = count_filled(column, np.isnan(positions), missing, column.fill, unseen)
    if new.any():
        if strict:  # an error
            return None
        unseen.add(column.name, np.array(labels, dtype=object)[new])
    return one_hot_block(column, positions, missing)


def labels_of_cells(cells: list[str], form: str, decimal: str = ".") -> list[str | None]:
    """The cells as the labels of a categorical column whose training values had `form` (None where
    missing), as encode_column gives them for the same cells read as text: cell_label, once per
    distinct cell."""
    labels: dict[str, str | None] = dict.fromkeys(MISSING)
    for cell in cells:
        if cell not in labels:
            labels[cell] = cell_label(cell, form, decimal)
    return [labels[c] for c in cells]


def _numbers(cells: list[str]) -> np.ndarray | None:
    """The cells as float64 (NaN for a missing-value spelling), or None when one is not a `number`."""
    values = np.empty(len(cells))
    for i, cell in enumerate(cells):
        value = number(cell)
        if value is None:
            if cell not in MISSING:
                return None
            value = np.nan
        values[i] = value
    return values


def number(cell: str) -> float | None:
    """The value of `cell` when pandas certainly reads it to the same float64, else None.

    A decimal number of at most MAX_DIGITS significant digits and MAX_DECIMALS decimals is an
    exact integer scaled by one exact power of ten, so every correctly rounding parser (pandas'
    fast_float and its older precise_xstrtod alike, and float()) gives the same double, whether
    pandas takes the column as integers or as floats. A negative zero is left out: pandas reads
    `-0` as 0 in an integer column and as -0.0 in a float one.
    """
    match = NUMBER.fullmatch(cell)
    if match is None:
        return None
    whole, decimals, only_decimals = match.groups()
    decimals = decimals or only_decimals or ""
    if len(((whole or "") + decimals).lstrip("0")) > MAX_DIGITS or len(decimals) > MAX_DECIMALS:
        return None
    value = float(cell)
    if value == 0.0 and cell.startswith("-"):
        return None
    return value
