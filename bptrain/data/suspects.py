"""Feature columns that are probably a mistake to train on: one warning line per column, naming the key that fixes it.

On the whole training file: a column named like an identifier, or of integers that are all
different and run without gaps (a row number), is ID-like; a text column with more than
FREE_TEXT_MIN_DISTINCT distinct values, over half as many as it has values, is free text or an
identifier; a text column whose values are numbers written with a decimal comma is misread.
"""

from __future__ import annotations

import re

from bptrain import lazy
from bptrain.data.columns import NUMERIC_SHARE_OF_TEXT, Column, distinct_counts, is_number_dtype

pd = lazy.module("pandas")  # imported on first use (bptrain.lazy): predict on a plain CSV file needs none of it

FREE_TEXT_MIN_DISTINCT = 20
FREE_TEXT_SHARE = 0.5
ID_NAME = re.compile(r"(^|[_\-\s.])(id|uuid|guid)$", re.IGNORECASE)
CAMEL_ID = re.compile(r"[a-z0-9]I[dD]$")
DECIMAL_COMMA = re.compile(r"^\s*[+-]?(\d+|\d{1,3}(\.\d{3})+),\d+\s*$")


def warnings(frame: pd.DataFrame, columns: list[Column], decimal: str) -> list[str]:
    """At most one warning per column of `columns` in `frame`, in column order."""
    out = []
    for column in columns:
        values = frame[column.name]  # once: each look-up of a column costs pandas tens of microseconds
        note = _decimal_comma(values, column, decimal) or _id_like(values, column) or _free_text(values, column)
        if note:
            out.append(note)
    return out


def _exclude(name: str) -> str:
    return f"leave it out with data.exclude: [{name}]"


def _id_like(values: pd.Series, column: Column) -> str | None:
    name = column.name
    if pd.api.types.is_integer_dtype(values) and len(values) > FREE_TEXT_MIN_DISTINCT:
        low, high = int(values.min()), int(values.max())
        if high - low == len(values) - 1 and values.is_unique:
            return (
                f"column {name!r} looks like a row number (the values {low} to {high}, each once); a model can learn the order "
                f"of the rows from it instead of the data: {_exclude(name)}"
            )
    if ID_NAME.search(name) or CAMEL_ID.search(name):
        return f"column {name!r} is named like an identifier; if it is one, {_exclude(name)}, since a model only learns noise from it"
    return None


def _free_text(values: pd.Series, column: Column) -> str | None:
    if column.kind != "categorical" or pd.api.types.is_bool_dtype(values):
        return None
    present = values.dropna()
    distinct = present.nunique()
    if distinct <= FREE_TEXT_MIN_DISTINCT or distinct <= FREE_TEXT_SHARE * len(present):
        return None
    return (
        f"column {column.name!r} looks like free text or an identifier ({distinct} different values in {len(present)} rows), "
        f"so its one-hot inputs stand for arbitrary values: {_exclude(column.name)}"
    )


def _decimal_comma(values: pd.Series, column: Column, decimal: str) -> str | None:
    if decimal == "," or column.kind != "categorical" or is_number_dtype(values):
        return None
    present = values.dropna().astype(str)
    if len(present) == 0:
        return None
    distinct, counts = distinct_counts(present)
    matches = distinct.str.match(DECIMAL_COMMA).to_numpy(dtype=bool)
    if counts[matches].sum() / len(present) < NUMERIC_SHARE_OF_TEXT:
        return None
    example = distinct[matches].iloc[0]  # the first row's that matches
    return (
        f"column {column.name!r} holds numbers with a decimal comma (e.g. {example!r}), read as categories; "
        'set data.read.decimal: "," to read them as numbers'
    )
