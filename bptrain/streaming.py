"""Streaming predict's output: predictions written as CSV or JSON lines chunk by chunk, as they come.

The input side, blocks of whole records, is bptrain.reading.frame_chunks.
"""

from __future__ import annotations

import json
from typing import IO

import numpy as np
import pandas as pd

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
