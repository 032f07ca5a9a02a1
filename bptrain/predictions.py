"""Predict's output: the header and columns for model outputs, written as CSV or JSON lines chunk by chunk.

One target: `prediction` (a class label or a number in the target's units), then with `--proba`
one `proba_<class>` per class. Several targets: `prediction_<target>` for each (0/1 for multilabel,
numbers for regression), then with `--proba` one `proba_<label>` per label (multilabel). Kept
input columns come first and may not take one of these names. `Writer` writes each chunk as it
comes (the input side, blocks of whole records, is bptrain.data.reading.frame_chunks).
"""

from __future__ import annotations

import csv
import io
import json
from typing import IO

import numpy as np

from bptrain.data.preprocess import Preprocessor
from bptrain.errors import ConfigError
from bptrain.inference import probabilities, unscale


def header(prep: Preprocessor, proba: bool) -> list[str]:
    if prep.task == "classification":
        return ["prediction"] + ([f"proba_{c}" for c in prep.classes] if proba else [])
    if prep.task == "multilabel":
        return [f"prediction_{c}" for c in prep.classes] + ([f"proba_{c}" for c in prep.classes] if proba else [])
    return ["prediction"] if len(prep.targets) == 1 else [f"prediction_{t}" for t in prep.targets]


def output_header(prep: Preprocessor, proba: bool, keep: list[str]) -> list[str]:
    """The kept columns, then `header`; ConfigError when a kept column has the name of an output column."""
    names = header(prep, proba)
    clash = next((c for c in keep if c in names), None)
    if clash is not None:
        raise ConfigError(
            f"--keep {clash}: predict writes a column of that name itself ({', '.join(names)}); "
            "rename that column in the input to keep it"
        )
    return keep + names


def columns(prep: Preprocessor, out: np.ndarray, proba: bool, dtype: str) -> list[np.ndarray]:
    """The output columns for `out` (the model's outputs for a chunk of rows, in output space)."""
    if prep.task == "classification":
        p = probabilities(out)
        labels = np.array(prep.classes, dtype=object)[p.argmax(axis=1)]
        return [labels] + ([p[:, i] for i in range(p.shape[1])] if proba else [])
    if prep.task == "multilabel":
        chosen = (out >= 0.5).astype(np.int64)
        return [chosen[:, i] for i in range(out.shape[1])] + ([out[:, i] for i in range(out.shape[1])] if proba else [])
    values = unscale(prep, out).astype(dtype)
    return [values[:, i] for i in range(values.shape[1])]


# --- writing ------------------------------------------------------------------------------------


def json_texts(column: np.ndarray) -> list[str]:
    """Each value of a column as JSON text: a number as the CSV writes it (its shortest round-trip
    text in the column's dtype, null where it is not finite), a label as a JSON string."""
    if column.dtype.kind == "f":
        text = column.astype(str).tolist()
        for i in np.flatnonzero(~np.isfinite(column)):
            text[i] = "null"
        return text
    if column.dtype.kind in "iub":
        return column.astype(np.int64).astype(str).tolist()
    quoted = {value: json.dumps(value) for value in set(column.tolist())}
    return [quoted[value] for value in column.tolist()]


def write_csv(text: IO[str], rows, *, carriage_returns: bool = True) -> None:
    """Write `rows` to `text` as CSV: "\n" line ends and the csv module's minimal quoting, but every
    cell quoted in a row with a carriage return in a cell. Minimal quoting quotes a field for the
    delimiter, the quote and the line terminator's characters only, so a "\r" would go out bare, and
    pandas and the csv module's reader take a bare "\r" for a line end: the row would read back as
    two. `carriage_returns=False` says no cell holds one (the rows are then not looked through)."""
    minimal = csv.writer(text, lineterminator="\n")
    if not carriage_returns:
        minimal.writerows(rows)
        return
    quoted = csv.writer(text, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for row in rows:
        (quoted if any(isinstance(cell, str) and "\r" in cell for cell in row) else minimal).writerow(row)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(text: str) -> str:
    """Prefix a cell a spreadsheet would run as a formula with a quote (OWASP's CSV-injection advice)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class Writer:
    """Writes the columns of each chunk as CSV or JSON lines; the header comes with the first chunk.

    Numbers are written in the shortest form that reads back to the same value in the model's
    dtype (NumPy's shortest round-trip repr); text is written as it is, or with --escape-formulas
    made safe for spreadsheets. CSV is the csv module's minimal quoting with "\\n" line ends, as
    pandas' to_csv writes it (tests/unit/test_predictions.py compares the two).
    """

    def __init__(self, out: IO[str], header: list[str], fmt: str = "csv", escape: bool = False):
        self.out, self.header, self.fmt, self.escape = out, header, fmt, escape
        self.started = False  # an input error before the first chunk leaves the output empty

    def write(self, columns: list[np.ndarray]) -> None:
        cells = []
        for column in columns:
            if column.dtype.kind == "f":
                text = column.astype(str).tolist()  # shortest round-trip text in the column's dtype
                cells.append(text if self.fmt == "csv" else [float(v) for v in text])
            elif self.escape:
                cells.append([escape_formula(v) if isinstance(v, str) else v for v in column.tolist()])
            else:
                cells.append(column.tolist())
        # the chunk's text is made in memory and written at once: a write per row to a text stream
        # (stdout) took 6 to 7 times as long (77 against 11.5 ms for 50,000 rows of one column)
        if self.fmt == "csv":
            text = io.StringIO()
            if not self.started:
                write_csv(text, [self.header])
            text_columns = [c for c, column in zip(cells, columns) if column.dtype.kind == "O"]
            write_csv(text, zip(*cells), carriage_returns=any("\r" in "".join(map(str, c)) for c in text_columns))
            self.out.write(text.getvalue())
        else:
            self.out.write("".join(json.dumps(dict(zip(self.header, row)), allow_nan=False) + "\n" for row in zip(*cells)))
        self.started = True
        self.out.flush()
