"""The fast way to read a numeric Parquet file on disk: a column at a time into numpy, taken only where the frame is the one pandas.read_parquet gives.

`read_numeric(path)` returns the frame, or None for anything but a file whose columns are all
int64 or float64 (for pandas too: no nullable or other types in its pandas metadata), uniquely
named, with no index other than the default one, no infinity and no NaN other than a missing value:
the caller then reads the file the ordinary way (bptrain.data.reading), whose checks and messages
stay the only ones. Nothing here raises for a bad file. Only COLUMNS_AT_ONCE columns are ever held
twice, and each value is copied once, from pyarrow's buffers into the frame's column.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bptrain import lazy
from bptrain.data.fastcsv import available, only_gaps

pd = lazy.module("pandas")  # imported on first use (bptrain.lazy): predict on a plain CSV file needs none of it

NUMBER_TYPES = ("int64", "float64")
COLUMNS_AT_ONCE = 64  # read together: one read per column costs more than the values


def read_numeric(path: Path) -> pd.DataFrame | None:
    if not available():
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
        schema = file.schema_arrow
        rows = file.metadata.num_rows
        if not _plain(schema, rows):
            return None
        columns = {}
        for start in range(0, len(schema.names), COLUMNS_AT_ONCE):
            part = file.read(columns=schema.names[start : start + COLUMNS_AT_ONCE])
            floats = [name for name, t in zip(part.column_names, part.schema.types) if pa.types.is_float64(t)]
            # the float columns of this read in one column-major array, each copied once from
            # pyarrow's pieces (row groups) into its own column: the frame's columns are its
            # columns, and a Dropping of them lets it go (bptrain.data.columns)
            group = np.empty((rows, len(floats)), order="F")
            for name, column in zip(part.column_names, part.columns):
                if name in floats:
                    values = group[:, floats.index(name)]
                    at = 0
                    for piece in column.chunks:  # with missing values, NaN where they are, as in pandas
                        values[at : at + len(piece)] = piece.to_numpy(zero_copy_only=False)
                        at += len(piece)
                else:  # an int64 column with missing values comes as float64 with NaN, as in pandas
                    values = np.array(column.to_numpy(), copy=True)  # a copy: pyarrow's zero-copy view is read-only
                if not only_gaps(values, column.null_count):
                    return None
                columns[name] = values
            del part, column
            pa.default_memory_pool().release_unused()
    except (pa.ArrowException, OSError, ValueError):
        return None
    return pd.DataFrame(columns, copy=False)


def _plain(schema, rows: int) -> bool:
    """Whether every column is int64 or float64, named once, and pandas would add no index and
    make no column another type (its metadata, when the file was written by pandas)."""
    import pyarrow as pa

    if len(set(schema.names)) != len(schema.names) or not all(pa.types.is_int64(t) or pa.types.is_float64(t) for t in schema.types):
        return False
    meta = (schema.metadata or {}).get(b"pandas")
    if meta is None:
        return True
    try:
        pandas = json.loads(meta)
        index = pandas.get("index_columns", [])
        types = [c.get("numpy_type") for c in pandas.get("columns", []) if c.get("name") in schema.names]
    except (ValueError, AttributeError):
        return False
    default = [{"kind": "range", "name": None, "start": 0, "stop": rows, "step": 1}]
    return (index == [] or index == default) and all(t in NUMBER_TYPES for t in types)
